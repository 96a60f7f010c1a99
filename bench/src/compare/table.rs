//! The one results table, as cells of text: the terminal, Markdown and HTML
//! renderers all draw it from here, so they always agree.

use super::export::fmt_opt;
use super::record::{Case, Status};
use super::stats::{Ratio, Summary};

/// Column titles.
pub const HEADERS: &[&str] = &[
    "runtime",
    "kernel",
    "start ms (min–max)",
    "total ms",
    "score Mops/s",
    "score vs bare",
    "peak RSS MiB",
    "mem overhead MiB",
    "CPU overhead ms",
    "start vs peer",
    "note",
];

fn med_range(s: Option<Summary>, decimals: usize) -> String {
    match s {
        Some(s) => format!(
            "{:.d$} ({:.d$}–{:.d$})",
            s.median,
            s.min,
            s.max,
            d = decimals
        ),
        None => String::new(),
    }
}

fn med(s: Option<Summary>, decimals: usize) -> String {
    fmt_opt(s.map(|s| s.median), decimals)
}

fn ratio(r: Option<Ratio>) -> String {
    r.map_or_else(String::new, |r| format!("{:.2} ± {:.2}", r.value, r.error))
}

/// The cells of one case's line.
pub fn cells(c: &Case) -> Vec<String> {
    let s = c.summary.as_ref();
    let mut note = Vec::new();
    match c.status {
        Status::Measured => {}
        Status::Skipped => note.push("skipped".to_string()),
        Status::Failed => note.push("FAILED".to_string()),
    }
    if let Some(m) = &c.start_marker {
        note.push(m.clone());
    }
    if let Some(r) = &c.reason {
        note.push(r.clone());
    }
    if let Some(s) = s {
        if !s.outlier_runs.is_empty() {
            note.push(format!("{} outlier run(s)", s.outlier_runs.len()));
        }
    }
    let peer = s.and_then(|s| {
        s.start_vs_peer.map(|_| {
            format!(
                "{} vs {}",
                ratio(s.start_vs_peer),
                s.peer.as_deref().unwrap_or("")
            )
        })
    });
    vec![
        c.runtime.clone(),
        c.kernel.clone(),
        med_range(s.and_then(|s| s.start_latency_ms), 2),
        med(s.and_then(|s| s.total_ms), 1),
        fmt_opt(s.and_then(|s| s.score_ops_per_s).map(|x| x.median / 1e6), 2),
        ratio(s.and_then(|s| s.score_vs_bare)),
        med(s.and_then(|s| s.peak_rss_mib), 1),
        med(s.and_then(|s| s.memory_overhead_mib), 1),
        med(s.and_then(|s| s.cpu_overhead_ms), 1),
        peer.unwrap_or_default(),
        note.join("; "),
    ]
}

/// What "start latency" means for each kind of row (printed under the table).
pub const START_MEANING: &[(&str, &str)] = &[
    (
        "bare, container, runc, crun",
        "launch (CLOCK_MONOTONIC before spawn) to the workload's own start_monotonic_ns at process entry; containers share the host's clock",
    ),
    (
        "microvm-unikernel, microvm-linux, vm-distro",
        "launch (CLOCK_MONOTONIC before spawning `vclab-vmm`) to the guest's ready write to the lab device (the VMM's guest_ready_ns put on the harness's clock through its origin_monotonic_ns)",
    ),
    (
        "qemu-microvm, firecracker, cloud-hypervisor",
        "launch to the moment the unikernel's {\"ready\":true} line on the UART reached stdout",
    ),
    (
        "boot lines",
        "launch to the Linux kernel's init handoff (\"Run /init as init process\"), as far as a Linux guest gets on kvm_pvm",
    ),
];

/// The cases with figures or a failure: the lines of the main table.
pub fn shown_cases(r: &super::record::Results) -> Vec<&Case> {
    r.cases
        .iter()
        .filter(|c| c.status != Status::Skipped)
        .collect()
}

/// Skipped cases folded into one line per runtime and reason:
/// (runtime, kernels, reason).
pub fn skipped_lines(r: &super::record::Results) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, Vec<String>, String)> = Vec::new();
    for c in r.cases.iter().filter(|c| c.status == Status::Skipped) {
        let reason = c.reason.clone().unwrap_or_default();
        match out
            .iter_mut()
            .find(|(rt, _, why)| *rt == c.runtime && *why == reason)
        {
            Some((_, kernels, _)) => kernels.push(c.kernel.clone()),
            None => out.push((c.runtime.clone(), vec![c.kernel.clone()], reason)),
        }
    }
    out.into_iter()
        .map(|(rt, k, why)| (rt, k.join(", "), why))
        .collect()
}
