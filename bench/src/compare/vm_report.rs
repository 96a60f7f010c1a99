//! Reading `vclab vm run --json` (DESIGN.md, "CLI output": the last stdout
//! line) with the VMM's own report type, and putting its phases on the
//! harness's clock: the VMM stamps its phases from its own origin and gives
//! that origin as a CLOCK_MONOTONIC reading, so launch → phase is
//! `origin + phase − launch`, the exec of `vclab` included.

use vclab_vmm::VmReport;

/// The report: the last stdout line, when it is a VMM report.
pub fn parse(last_line: Option<&str>) -> Option<VmReport> {
    serde_json::from_str(last_line?).ok()
}

/// Milliseconds from the harness's launch (`launch_monotonic_ns`, taken
/// before spawning) to a phase stamped `phase_ns` after the VMM's origin.
/// Falls back to the VMM-relative time when the report has no origin.
pub fn since_launch_ms(
    report: &VmReport,
    phase_ns: Option<u64>,
    launch_monotonic_ns: u64,
) -> Option<f64> {
    let phase = phase_ns?;
    match report.origin_monotonic_ns {
        Some(origin) => (origin + phase)
            .checked_sub(launch_monotonic_ns)
            .map(|ns| ns as f64 / 1e6),
        None => Some(phase as f64 / 1e6),
    }
}

/// A one-line account of how a VM run ended, for a row's reason.
pub fn describe_end(report: &VmReport, exit_code: i32) -> String {
    let secs =
        |ns: Option<u64>| ns.map_or("-".to_string(), |ns| format!("{:.1} s", ns as f64 / 1e9));
    let mut out = format!(
        "the VMM (vclab-vmm) ended with '{}' (exit {exit_code}) after {}; kernel's first console byte at {}",
        report.exit_reason,
        secs(report.exit_ns),
        secs(report.kernel_start_ns)
    );
    if let Some(d) = &report.exit_detail {
        out += &format!("; {}", d.lines().last().unwrap_or(d));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vclab_vmm::{ExitReason, KernelFormat};

    #[test]
    fn phases_land_on_the_launch_clock() {
        let line = r#"{"guest_ready_ns":2000000,"exit_reason":"guest-exit","vcpu_rips":[],"vm_exits":{},"unclaimed_accesses":0,"guest_lines":[],"bad_line_records":0,"guest_ram_kib":131072,"vcpus":1,"kernel_format":"elf","linux":false,"cmdline":"","time_origin":"x","origin_monotonic_ns":10000000}"#;
        let r = parse(Some(line)).expect("a VMM report");
        assert_eq!(r.exit_reason, ExitReason::GuestExit);
        assert_eq!(r.kernel_format, KernelFormat::Elf);
        // Launched 1 ms before the VMM's origin: ready 3 ms after launch.
        assert_eq!(since_launch_ms(&r, r.guest_ready_ns, 9_000_000), Some(3.0));
        // A launch after the origin cannot be: no figure rather than a negative one.
        assert_eq!(since_launch_ms(&r, r.guest_ready_ns, 13_000_000), None);
        assert_eq!(since_launch_ms(&r, None, 9_000_000), None);
        let no_origin = VmReport {
            guest_ready_ns: Some(2_500_000),
            ..VmReport::new(ExitReason::Timeout, KernelFormat::Elf)
        };
        assert_eq!(
            since_launch_ms(&no_origin, no_origin.guest_ready_ns, 1),
            Some(2.5)
        );
        assert!(describe_end(&r, 0).contains("'guest-exit' (exit 0)"));
        assert!(parse(Some("not json")).is_none());
        assert!(parse(None).is_none());
    }
}
