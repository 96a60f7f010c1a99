//! The report step: what a VM that ran did and cost (phases, exits by kind, the VMM's
//! memory outside guest RAM, the snapshot or restore it made), from the run's shared state
//! and the facts of its build.

use crate::config::{VmConfig, VmReport};
use crate::exit::EndReason;
use crate::memory;
use crate::seccomp;
use crate::signals;
use crate::vm::Ran;

/// CLOCK_MONOTONIC now, ns (the clock `Instant` uses on Linux).
fn monotonic_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// The report of a VM that ran (`config` is what it was asked).
pub fn report(config: &VmConfig, r: &Ran) -> VmReport {
    let f = &r.facts;
    let stats = f
        .proc_files
        .as_ref()
        .map(|p| p.read(&memory::host_ranges(&r.mem)))
        .unwrap_or_default();
    let allowed = |f: Option<&seccomp::Filter>| f.map(|f| f.allowed as u32);
    let first_run_ns = r.shared.first_run_ns.lock().ok().and_then(|f| *f);
    let vcpu_rips = r
        .shared
        .last_rip
        .lock()
        .map(|v| v.iter().map(|rip| rip.map(|x| format!("{x:#x}"))).collect())
        .unwrap_or_default();
    let mut out = VmReport {
        vm_built_ns: Some(f.vm_built_ns),
        first_run_ns,
        exit_ns: Some(r.exit_ns),
        exit_reason: r.reason.reason(),
        vcpu_rips,
        vmm_peak_rss_kib: stats.peak_rss_kib,
        vmm_pss_kib: stats.pss_kib,
        guest_ram_kib: (memory::host_ranges(&r.mem)
            .iter()
            .map(|(_, len)| *len)
            .sum::<u64>())
            / 1024,
        guest_touched_kib: stats.guest_rss_kib,
        vcpus: r.shared.last_rip.lock().map_or(0, |v| v.len() as u32),
        kernel_format: f.format,
        linux: f.linux,
        cmdline: f.cmdline.clone(),
        tsc_khz: f.tsc_khz,
        kvm_kind: Some(f.kind),
        origin_monotonic_ns: monotonic_ns()
            .and_then(|now| now.checked_sub(config.origin.elapsed().as_nanos() as u64)),
        time_origin: "VmConfig::origin (the CLI: entry of `vclab vm run`), CLOCK_MONOTONIC"
            .to_string(),
        seccomp: r.filters.mode.name().to_string(),
        seccomp_vcpu_syscalls: allowed(r.filters.vcpu.as_ref()),
        seccomp_main_syscalls: allowed(r.filters.main.as_ref()),
        jailed: config.jailed,
        restore: f.restore.clone().map(|mut x| {
            x.uffd_faults = r.uffd_faults;
            x
        }),
        ..VmReport::new(r.reason.reason(), f.format)
    };
    match &r.reason {
        EndReason::GuestExit(code) => out.guest_exit_code = Some(*code),
        EndReason::InternalError(m) => out.exit_detail = Some(m.clone()),
        EndReason::GuestPanic(lines) => out.exit_detail = Some(lines.join("\n")),
        EndReason::Signal(signo) => {
            out.stop_signal = Some(signals::name(*signo));
            out.exit_detail = Some(format!("stopped by {}", signals::name(*signo)));
        }
        _ => {}
    }
    if let Ok(mut d) = r.shared.devices.lock() {
        d.serial.writer_mut().finish();
        let m = d.serial.writer().milestones;
        out.kernel_start_ns = m.first_byte_ns;
        out.init_handoff_ns = m.init_handoff_ns;
        out.guest_ready_ns = d.labctl.ready_ns;
        out.guest_params_ns = d.labctl.params_ns;
        out.guest_lines = d.labctl.lines.clone();
        out.bad_line_records = d.labctl.bad_records;
        out.vm_exits = d.exits.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let u = &d.unclaimed;
        out.unclaimed_accesses = u.pio_reads + u.pio_writes + u.mmio_reads + u.mmio_writes;
    }
    if let Some(p) = &r.shared.snapshot {
        out.snapshot = p.lock().ok().and_then(|p| p.taken.clone());
    }
    out
}
