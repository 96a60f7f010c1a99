//! Timing with the TSC (readable at CPL 3: the shim leaves CR4.TSD clear).

use core::arch::asm;

/// CPUID leaf of the hypervisor range's maximum leaf.
const CPUID_HYPERVISOR_MAX: u32 = 0x4000_0000;
/// CPUID leaf where KVM (and VMware) report the TSC frequency in kHz in EAX.
const CPUID_TSC_KHZ: u32 = 0x4000_0010;

/// Reads the time-stamp counter, after earlier instructions finished (`lfence; rdtsc`).
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: lfence and rdtsc only read the TSC; allowed at CPL 3 with CR4.TSD clear.
    unsafe {
        asm!("lfence", "rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    }
    u64::from(hi) << 32 | u64::from(lo)
}

/// The TSC frequency in kHz: `from_cmdline` (`vclab.tsc_khz=`, the VMM's figure) if given,
/// else the hypervisor CPUID leaf 0x40000010, else `None`.
pub fn tsc_khz(from_cmdline: Option<u64>) -> Option<u64> {
    if let Some(khz) = from_cmdline.filter(|&k| k > 0) {
        return Some(khz);
    }
    if cpuid_eax(CPUID_HYPERVISOR_MAX) < CPUID_TSC_KHZ {
        return None;
    }
    Some(u64::from(cpuid_eax(CPUID_TSC_KHZ))).filter(|&k| k > 0)
}

/// Nanoseconds in `ticks` TSC ticks at `khz`; 0 when the frequency is unknown.
pub fn ticks_to_ns(ticks: u64, khz: Option<u64>) -> u64 {
    match khz {
        Some(khz) if khz > 0 => {
            let ns = u128::from(ticks) * 1_000_000 / u128::from(khz);
            u64::try_from(ns).unwrap_or(u64::MAX)
        }
        _ => 0,
    }
}

/// EAX of CPUID `leaf` (subleaf 0).
fn cpuid_eax(leaf: u32) -> u32 {
    let eax: u32;
    // SAFETY: cpuid has no side effects; rbx, which the compiler reserves, is saved and restored.
    unsafe {
        asm!(
            "mov {saved}, rbx",
            "cpuid",
            "mov rbx, {saved}",
            saved = out(reg) _,
            inout("eax") leaf => eax,
            inout("ecx") 0u32 => _,
            out("edx") _,
            options(nomem, nostack, preserves_flags)
        )
    }
    eax
}
