//! A vCPU's architectural state: what KVM needs to resume it where it stopped.
//!
//! Save order (as Firecracker documents it for x86_64): `KVM_GET_MP_STATE` first, since
//! it runs `kvm_apic_accept_events()` and may change the LAPIC and vCPU state the later
//! reads see; then registers, special registers, FPU/XSAVE, XCRs, LAPIC, MSRs and the
//! pending events last. Restore order: CPUID first (KVM checks MSRs and XSAVE against
//! it), then MSRs (TSC first), special registers, registers, FPU, XSAVE, XCRs, LAPIC,
//! events, mp_state.
//!
//! Parts a host may refuse (XSAVE, XCRs, vCPU events: kvm_pvm is one such host) are
//! probed: a refused read is recorded in [`VcpuState::degraded`] and its restore skipped.

use kvm_bindings::{
    kvm_cpuid_entry2, kvm_fpu, kvm_lapic_state, kvm_mp_state, kvm_msr_entry, kvm_regs, kvm_sregs,
    kvm_vcpu_events, kvm_xcrs, kvm_xsave, CpuId, Msrs, KVM_MAX_CPUID_ENTRIES,
};
use kvm_ioctls::{Cap, Kvm, VcpuFd, VmFd};
use serde::{Deserialize, Serialize};

/// Bytes in the legacy `struct kvm_xsave` region (`KVM_GET_XSAVE`/`KVM_SET_XSAVE`).
const XSAVE_LEGACY_BYTES: usize = 4096;

/// MSRs every snapshot must carry when KVM can read them (KVM's index list has them on
/// every host seen so far; they are added when it does not).
/// TSC, SYSENTER, EFER-related SYSCALL MSRs, KERNEL_GS_BASE, TSC_AUX, and the KVM
/// paravirtual clock MSRs (`Documentation/virt/kvm/x86/msr.rst`).
pub const REQUIRED_MSRS: [u32; 14] = [
    0x10,        // IA32_TSC
    0x174,       // IA32_SYSENTER_CS
    0x175,       // IA32_SYSENTER_ESP
    0x176,       // IA32_SYSENTER_EIP
    0xc000_0081, // STAR
    0xc000_0082, // LSTAR
    0xc000_0083, // CSTAR
    0xc000_0084, // SYSCALL_MASK (FMASK)
    0xc000_0102, // KERNEL_GS_BASE
    0xc000_0103, // TSC_AUX
    0x11,        // MSR_KVM_WALL_CLOCK
    0x12,        // MSR_KVM_SYSTEM_TIME
    0x4b56_4d00, // MSR_KVM_WALL_CLOCK_NEW
    0x4b56_4d01, // MSR_KVM_SYSTEM_TIME_NEW
];

/// `IA32_TSC`: restored first, so MSRs relative to it (TSC_DEADLINE) land right.
const MSR_IA32_TSC: u32 = 0x10;

/// Errors of saving and restoring a vCPU.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A state read failed.
    #[error("cannot read the {what} of the vCPU for a snapshot: {err} (is the vCPU paused, outside KVM_RUN?)")]
    Get {
        /// Which state.
        what: &'static str,
        /// The ioctl error.
        err: kvm_ioctls::Error,
    },
    /// A state write failed.
    #[error("cannot restore the {what} of the vCPU: {err} (was the snapshot taken on another host or kernel? take a new snapshot with --snapshot-at ready)")]
    Set {
        /// Which state.
        what: &'static str,
        /// The ioctl error.
        err: kvm_ioctls::Error,
    },
    /// KVM refused an MSR on restore.
    #[error("KVM refused MSR {index:#x} (entry {pos} of {count}) on restore: this host does not take the snapshot's MSRs; take a new snapshot on this host with --snapshot-at ready")]
    MsrRefused {
        /// The MSR index.
        index: u32,
        /// Its position in the list.
        pos: usize,
        /// MSRs in the list.
        count: usize,
    },
    /// The snapshot holds an XSAVE area this host's KVM would read past.
    #[error("the host's XSAVE area is {host} bytes, more than the {XSAVE_LEGACY_BYTES}-byte area in the snapshot; restoring it is unsafe: take a new snapshot on this host with --snapshot-at ready")]
    XsaveSize {
        /// KVM_CAP_XSAVE2's size.
        host: usize,
    },
    /// A FAM wrapper could not be built.
    #[error("cannot build the {what} list of {len} entries for KVM (too many entries?)")]
    Fam {
        /// Which list.
        what: &'static str,
        /// Entries in it.
        len: usize,
    },
    /// KVM_RUN with immediate_exit returned an exit instead of EINTR.
    #[error("the vCPU ran an exit while being paused for a snapshot (KVM_RUN ignored immediate_exit); stop it again and retry")]
    NotSettled,
    /// KVM_GET_MSR_INDEX_LIST failed.
    #[error("cannot read KVM's MSR index list (KVM_GET_MSR_INDEX_LIST): {0}")]
    MsrIndexList(kvm_ioctls::Error),
}

/// The legacy FPU state (`struct kvm_fpu`; kvm-bindings has no serde for it), used when
/// XSAVE is not available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FpuState {
    /// x87 registers ST0–ST7 (80 bits each, padded to 16 bytes).
    pub fpr: [[u8; 16]; 8],
    /// x87 control word.
    pub fcw: u16,
    /// x87 status word.
    pub fsw: u16,
    /// Abridged x87 tag word.
    pub ftwx: u8,
    /// Last x87 opcode.
    pub last_opcode: u16,
    /// Last x87 instruction pointer.
    pub last_ip: u64,
    /// Last x87 data pointer.
    pub last_dp: u64,
    /// XMM0–XMM15.
    pub xmm: [[u8; 16]; 16],
    /// SSE control and status.
    pub mxcsr: u32,
}

impl From<&kvm_fpu> for FpuState {
    fn from(f: &kvm_fpu) -> Self {
        Self {
            fpr: f.fpr,
            fcw: f.fcw,
            fsw: f.fsw,
            ftwx: f.ftwx,
            last_opcode: f.last_opcode,
            last_ip: f.last_ip,
            last_dp: f.last_dp,
            xmm: f.xmm,
            mxcsr: f.mxcsr,
        }
    }
}

impl From<&FpuState> for kvm_fpu {
    fn from(f: &FpuState) -> Self {
        kvm_fpu {
            fpr: f.fpr,
            fcw: f.fcw,
            fsw: f.fsw,
            ftwx: f.ftwx,
            last_opcode: f.last_opcode,
            last_ip: f.last_ip,
            last_dp: f.last_dp,
            xmm: f.xmm,
            mxcsr: f.mxcsr,
            ..Default::default()
        }
    }
}

/// One vCPU's saved state.
#[derive(Debug, Serialize, Deserialize)]
pub struct VcpuState {
    /// The CPUID that was set (KVM_GET_CPUID2).
    pub cpuid: Vec<kvm_cpuid_entry2>,
    /// Every MSR of KVM's index list (plus [`REQUIRED_MSRS`]) that KVM could read.
    pub msrs: Vec<kvm_msr_entry>,
    /// MSR indices KVM refused to read (not saved).
    pub msrs_unreadable: Vec<u32>,
    /// General registers.
    pub regs: kvm_regs,
    /// Segment, control and descriptor-table registers.
    pub sregs: kvm_sregs,
    /// Legacy FPU/SSE state (always saved; restored when there is no XSAVE area).
    pub fpu: FpuState,
    /// The XSAVE area, when KVM gave it.
    pub xsave: Option<kvm_xsave>,
    /// Extended control registers, when KVM gave them.
    pub xcrs: Option<kvm_xcrs>,
    /// The local APIC's registers.
    pub lapic: kvm_lapic_state,
    /// Pending exceptions, interrupts and NMIs, when KVM gave them.
    pub events: Option<kvm_vcpu_events>,
    /// Runnable, halted, waiting for SIPI...
    pub mp_state: kvm_mp_state,
    /// The vCPU's TSC rate, kHz, when KVM reported it.
    pub tsc_khz: Option<u32>,
    /// Why a part was not saved, one line each (empty on a full save).
    pub degraded: Vec<String>,
}

/// The MSRs to save: KVM's index list with [`REQUIRED_MSRS`] added, TSC first, no
/// duplicates. Read once per VMM process; [`save`] drops the ones KVM will not read.
pub fn msr_indices(kvm: &Kvm) -> Result<Vec<u32>, Error> {
    let list = kvm.get_msr_index_list().map_err(Error::MsrIndexList)?;
    Ok(merge_msr_indices(list.as_slice()))
}

/// [`msr_indices`] without KVM: `listed` plus [`REQUIRED_MSRS`], TSC first, deduplicated.
pub fn merge_msr_indices(listed: &[u32]) -> Vec<u32> {
    let mut all: Vec<u32> = Vec::with_capacity(listed.len() + REQUIRED_MSRS.len());
    all.push(MSR_IA32_TSC);
    for &i in REQUIRED_MSRS.iter().chain(listed) {
        if !all.contains(&i) {
            all.push(i);
        }
    }
    all
}

/// Reads the MSRs of `indices` that KVM accepts. KVM_GET_MSRS stops at the first MSR it
/// refuses and returns how many it read: that one is set aside and the rest read again.
fn read_msrs(fd: &VcpuFd, indices: &[u32]) -> Result<(Vec<kvm_msr_entry>, Vec<u32>), Error> {
    let mut read = Vec::with_capacity(indices.len());
    let mut refused = Vec::new();
    let mut rest = indices;
    while !rest.is_empty() {
        let entries: Vec<kvm_msr_entry> = rest
            .iter()
            .map(|&index| kvm_msr_entry {
                index,
                ..Default::default()
            })
            .collect();
        let mut msrs = Msrs::from_entries(&entries).map_err(|_| Error::Fam {
            what: "MSR",
            len: entries.len(),
        })?;
        let n = fd
            .get_msrs(&mut msrs)
            .map_err(|err| Error::Get { what: "MSRs", err })?;
        read.extend_from_slice(&msrs.as_slice()[..n.min(rest.len())]);
        if n >= rest.len() {
            break;
        }
        refused.push(rest[n]);
        rest = &rest[n + 1..];
    }
    Ok((read, refused))
}

/// The XSAVE area size KVM uses on this host (KVM_CAP_XSAVE2, else the legacy 4096).
fn host_xsave_bytes(vm: &VmFd) -> usize {
    let size = vm.check_extension_int(Cap::Xsave2);
    if size > 0 {
        size as usize
    } else {
        XSAVE_LEGACY_BYTES
    }
}

/// Lets KVM finish the exit the vCPU last took (the data of a port or MMIO read, the
/// rest of a string instruction) without entering the guest: KVM_RUN with
/// `immediate_exit` set. Call it before [`save`] when the vCPU stopped on an exit, as
/// the ready signal is one; otherwise the saved registers miss that instruction's end.
pub fn settle(fd: &mut VcpuFd) -> Result<(), Error> {
    fd.set_kvm_immediate_exit(1);
    let ran = fd.run().map(|_| ());
    fd.set_kvm_immediate_exit(0);
    match ran {
        Err(e) if e.errno() == libc::EINTR => Ok(()),
        Err(err) => Err(Error::Get {
            what: "pending exit (KVM_RUN with immediate_exit)",
            err,
        }),
        // KVM ran the guest despite immediate_exit: not a paused vCPU any more.
        Ok(()) => Err(Error::NotSettled),
    }
}

/// Saves the state of a paused vCPU (not inside KVM_RUN). `msr_indices` comes from
/// [`msr_indices`].
pub fn save(vm: &VmFd, fd: &VcpuFd, msr_indices: &[u32]) -> Result<VcpuState, Error> {
    let get = |what| move |err| Error::Get { what, err };
    let mut degraded = Vec::new();
    let mp_state = fd.get_mp_state().map_err(get("mp_state"))?;
    let regs = fd.get_regs().map_err(get("registers"))?;
    let sregs = fd.get_sregs().map_err(get("special registers"))?;
    let fpu = FpuState::from(&fd.get_fpu().map_err(get("FPU"))?);
    let xsave = if !vm.check_extension(Cap::Xsave) {
        degraded.push("XSAVE: KVM_CAP_XSAVE absent, FPU/SSE state only".to_string());
        None
    } else if host_xsave_bytes(vm) > XSAVE_LEGACY_BYTES {
        degraded.push(format!(
            "XSAVE: the host's area is {} bytes (KVM_CAP_XSAVE2), beyond the {XSAVE_LEGACY_BYTES}-byte legacy area; FPU/SSE state only",
            host_xsave_bytes(vm)
        ));
        None
    } else {
        match fd.get_xsave() {
            Ok(x) => Some(x),
            Err(e) => {
                degraded.push(format!(
                    "XSAVE: KVM_GET_XSAVE failed ({e}), FPU/SSE state only"
                ));
                None
            }
        }
    };
    let xcrs = probe(
        vm.check_extension(Cap::Xcrs),
        || fd.get_xcrs(),
        "XCRs: KVM_GET_XCRS",
        &mut degraded,
    );
    let lapic = fd.get_lapic().map_err(get("local APIC"))?;
    let (msrs, msrs_unreadable) = read_msrs(fd, msr_indices)?;
    let cpuid = fd
        .get_cpuid2(KVM_MAX_CPUID_ENTRIES)
        .map_err(get("CPUID"))?
        .as_slice()
        .to_vec();
    let tsc_khz = fd.get_tsc_khz().ok();
    let events = probe(
        vm.check_extension(Cap::VcpuEvents),
        || fd.get_vcpu_events(),
        "vCPU events: KVM_GET_VCPU_EVENTS",
        &mut degraded,
    );
    Ok(VcpuState {
        cpuid,
        msrs,
        msrs_unreadable,
        regs,
        sregs,
        fpu,
        xsave,
        xcrs,
        lapic,
        events,
        mp_state,
        tsc_khz,
        degraded,
    })
}

/// Runs an optional read when its capability is there; records why it was skipped.
fn probe<T>(
    cap: bool,
    read: impl FnOnce() -> Result<T, kvm_ioctls::Error>,
    what: &str,
    degraded: &mut Vec<String>,
) -> Option<T> {
    if !cap {
        degraded.push(format!("{what}: capability absent, not saved"));
        return None;
    }
    match read() {
        Ok(v) => Some(v),
        Err(e) => {
            degraded.push(format!("{what} failed ({e}), not saved"));
            None
        }
    }
}

/// Restores `state` into a fresh vCPU of a VM whose irqchip exists, before its first
/// KVM_RUN.
pub fn restore(vm: &VmFd, fd: &VcpuFd, state: &VcpuState) -> Result<(), Error> {
    let set = |what| move |err| Error::Set { what, err };
    let cpuid = CpuId::from_entries(&state.cpuid).map_err(|_| Error::Fam {
        what: "CPUID",
        len: state.cpuid.len(),
    })?;
    fd.set_cpuid2(&cpuid).map_err(set("CPUID"))?;
    if let Some(khz) = state.tsc_khz {
        // On a host with another TSC rate KVM scales the guest's back to the saved one.
        if fd.get_tsc_khz().ok() != Some(khz) {
            fd.set_tsc_khz(khz)
                .map_err(set("TSC rate (KVM_SET_TSC_KHZ)"))?;
        }
    }
    let msrs = Msrs::from_entries(&state.msrs).map_err(|_| Error::Fam {
        what: "MSR",
        len: state.msrs.len(),
    })?;
    let n = fd.set_msrs(&msrs).map_err(set("MSRs"))?;
    if n < state.msrs.len() {
        return Err(Error::MsrRefused {
            index: state.msrs[n].index,
            pos: n,
            count: state.msrs.len(),
        });
    }
    fd.set_sregs(&state.sregs)
        .map_err(set("special registers"))?;
    fd.set_regs(&state.regs).map_err(set("registers"))?;
    fd.set_fpu(&kvm_fpu::from(&state.fpu)).map_err(set("FPU"))?;
    if let Some(xsave) = &state.xsave {
        let host = host_xsave_bytes(vm);
        if host > XSAVE_LEGACY_BYTES {
            return Err(Error::XsaveSize { host });
        }
        // SAFETY: KVM_SET_XSAVE reads the host's XSAVE area size (KVM_CAP_XSAVE2, checked
        // just above to be at most 4096 bytes) from a `kvm_xsave`, whose region is 4096 bytes.
        unsafe { fd.set_xsave(xsave) }.map_err(set("XSAVE area"))?;
    }
    if let Some(xcrs) = &state.xcrs {
        fd.set_xcrs(xcrs).map_err(set("XCRs"))?;
    }
    fd.set_lapic(&state.lapic).map_err(set("local APIC"))?;
    if let Some(events) = &state.events {
        fd.set_vcpu_events(events).map_err(set("vCPU events"))?;
    }
    fd.set_mp_state(state.mp_state).map_err(set("mp_state"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msr_list_has_tsc_first_and_no_duplicates() {
        let merged = merge_msr_indices(&[0xc000_0080, 0x10, 0x174, 0x3b]);
        assert_eq!(merged[0], MSR_IA32_TSC);
        for r in REQUIRED_MSRS {
            assert_eq!(merged.iter().filter(|&&i| i == r).count(), 1, "{r:#x}");
        }
        assert!(merged.contains(&0x3b) && merged.contains(&0xc000_0080));
        assert_eq!(merged.len(), REQUIRED_MSRS.len() + 2);
    }

    #[test]
    fn fpu_round_trips_through_its_mirror() {
        let mut f = kvm_fpu {
            fcw: 0x37f,
            fsw: 0x1234,
            ftwx: 0x5a,
            last_opcode: 0x7ff,
            last_ip: 0xdead_beef,
            last_dp: 0xfeed_f00d,
            mxcsr: 0x1f80,
            ..Default::default()
        };
        f.xmm[3][7] = 0x42;
        f.fpr[7][9] = 0x99;
        let json = serde_json::to_string(&FpuState::from(&f)).unwrap();
        let back: FpuState = serde_json::from_str(&json).unwrap();
        assert_eq!(kvm_fpu::from(&back), f);
    }
}
