//! Reading an observed run: the parts every row shares (the measured
//! figures, the workload's result line and its checks, the VMM's report).

use vclab_contract::{Failure, FailureReport};

use super::fail;
use crate::compare::record::{Sample, WorkloadSpec};
use crate::compare::vm_report;
use crate::compare::workload_line::WorkloadLine;
use crate::spawn::Observed;

/// A sample with what every run has: times, memory, CPU, leftovers.
pub fn base_sample(obs: &Observed) -> Sample {
    Sample {
        total_ms: obs.total.as_secs_f64() * 1e3,
        peak_rss_kib: obs.peak_rss_kib,
        peak_pss_kib: obs.peak_pss_kib,
        leftover_processes: obs.leftover,
        cpu_user_ms: obs.cpu_user.as_secs_f64() * 1e3,
        cpu_sys_ms: obs.cpu_sys.as_secs_f64() * 1e3,
        ..Sample::default()
    }
}

/// The workload's result line (stdout, else the VMM report's guest lines),
/// checked against `spec`; the sample gets its checksum and score.
pub fn result_line(
    obs: &Observed,
    report: Option<&vclab_vmm::VmReport>,
    spec: &WorkloadSpec,
    s: &mut Sample,
) -> Result<WorkloadLine, FailureReport> {
    let report_lines = report.iter().flat_map(|r| r.guest_lines.iter());
    let line = WorkloadLine::find(obs.lines.iter().map(|(_, l)| l.as_str()))
        .or_else(|| WorkloadLine::find(report_lines.map(String::as_str)))
        .ok_or_else(|| {
            let kind = report
                .and_then(|r| r.exit_reason.failure())
                .unwrap_or(Failure::NoResultLine);
            fail(
                kind,
                format!(
                    "no workload result line in the output: {}",
                    vm_failure(report, obs)
                ),
            )
        })?;
    line.check(spec)
        .map_err(|e| fail(Failure::NoResultLine, e))?;
    s.checksum = Some(line.checksum.clone());
    s.score_ops_per_s = line.score();
    s.workload_cpu_ms = (line.cpu_ns > 0).then(|| line.cpu_ns as f64 / 1e6);
    s.io = line.io;
    Ok(line)
}

/// Fails unless `ok`: the run exited with an unexpected status after its result.
pub fn expect_exit(ok: bool, obs: &Observed) -> Result<(), FailureReport> {
    if ok {
        return Ok(());
    }
    let kind = if obs.exit_code > 128 {
        Failure::Killed
    } else {
        Failure::BadExitStatus
    };
    Err(fail(
        kind,
        format!(
            "exited with status {} after printing its result: {}",
            obs.exit_code,
            obs.tail()
        ),
    ))
}

/// The start latency, or the failure of not having one.
pub fn need_start(ms: Option<f64>, obs: &Observed) -> Result<f64, FailureReport> {
    ms.ok_or_else(|| {
        fail(
            Failure::NoStartTime,
            format!("no start time could be read from the run: {}", obs.tail()),
        )
    })
}

/// Launch → the workload's process entry, from its result line's CLOCK_MONOTONIC stamp.
pub fn entry_latency_ms(line: &WorkloadLine, obs: &Observed) -> Option<f64> {
    line.start_monotonic_ns
        .checked_sub(obs.launch_monotonic_ns)
        .map(|ns| ns as f64 / 1e6)
}

/// A short account of a failed VM run: the VMM's end reason and phase times,
/// else the last output lines.
pub fn vm_failure(report: Option<&vclab_vmm::VmReport>, obs: &Observed) -> String {
    match report {
        Some(r) => vm_report::describe_end(r, obs.exit_code),
        None => format!("exit {}; output ended: {}", obs.exit_code, obs.tail()),
    }
}
