//! The one results table, as cells of text: the terminal, Markdown and HTML
//! renderers all draw it from here, so they always agree.

use super::export::fmt_opt;
use super::record::{Case, CaseSummary, Status};
use super::stats::{Ratio, Summary};
use crate::runtime::{RuntimeId, StartClock};
use vclab_contract::container::Placement;

/// Column titles. Every figure says what it is: a median with its bootstrap
/// 95 % confidence interval in brackets, the run range in parentheses, a
/// ratio with its 95 % CI and whether it is paired per round ([`LEGEND`]).
pub const HEADERS: &[&str] = &[
    "runtime",
    "kernel",
    "start ms: median [95 % CI] (min–max)",
    "total ms: median",
    "score Mops/s: median [95 % CI]",
    "score vs bare [95 % CI]",
    "peak RSS MiB: median",
    "mem overhead MiB: median",
    "CPU overhead ms: median",
    "start vs peer [95 % CI]",
    "note",
];

/// What the figures in the table are, printed under it in every report.
pub const LEGEND: &[(&str, &str)] = &[
    (
        "median [95 % CI]",
        "the median of the measured runs and, in brackets, its 95 % confidence interval: a percentile \
         bootstrap (2000 resamples, fixed seed, so a re-render gives the same interval)",
    ),
    ("(min–max)", "the fastest and the slowest run"),
    (
        "ratio, paired",
        "the median of the per-round ratios (this row's run divided by the other row's run of the same \
         interleaved round, so the round's noise cancels), with the bootstrap 95 % CI of that median",
    ),
    (
        "ratio, unpaired",
        "the ratio of the two rows' medians, with a 95 % CI from resampling each row on its own (runs \
         that do not say their round)",
    ),
    (
        "score vs bare",
        "the workload's score divided by bare's on the same kernel: 1.000 = no CPU overhead; bare \
         against itself is 1 by definition",
    ),
    (
        "start vs peer",
        "start latency divided by the peer's named in the cell: below 1 = this row starts faster",
    ),
    (
        "overheads",
        "the median over the runs of the run's figure minus bare's median on the same kernel",
    ),
];

/// `m [lo, hi]`: a median and its 95 % CI.
fn med_ci(s: Summary, decimals: usize, scale: f64) -> String {
    format!(
        "{:.d$} [{:.d$}, {:.d$}]",
        s.median / scale,
        s.ci_low / scale,
        s.ci_high / scale,
        d = decimals
    )
}

fn med_ci_range(s: Option<Summary>, decimals: usize) -> String {
    match s {
        Some(s) => format!(
            "{} ({:.d$}–{:.d$})",
            med_ci(s, decimals, 1.0),
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

/// `value [lo, hi] paired` (or `unpaired`); a ratio read from a version-1
/// file says what its old `±` was.
pub fn ratio_cell(r: &Ratio) -> String {
    match r.v1_error {
        Some(e) => format!(
            "{:.2} ± {:.2} (version-1 file: stddevs propagated around the medians, not a CI)",
            r.value, e
        ),
        None => format!(
            "{:.3} [{:.3}, {:.3}] {}",
            r.value,
            r.ci_low,
            r.ci_high,
            if r.paired { "paired" } else { "unpaired" }
        ),
    }
}

fn ratio(r: Option<Ratio>) -> String {
    r.as_ref().map_or_else(String::new, ratio_cell)
}

/// Where the vclab launcher's start went on cgroups, for the row's note: the
/// migration time when its runs were moved into their cgroup (`runs`: the
/// case's run count), or that they were born there.
pub fn cgroup_note(s: &CaseSummary, runs: usize) -> Option<String> {
    if let Some(a) = s.cgroup_attach_ms {
        let of = if a.n < runs {
            format!(" in {} of {runs} runs", a.n)
        } else {
            String::new()
        };
        return Some(format!(
            "cgroup attach {:.1} ms ({:.1}–{:.1}) of the start{of}: writing the pid to cgroup.procs \
             is a cgroup migration (it waits for an RCU grace period); crun also migrates on cgroup v1 \
             but does not report it, and on cgroup v2 vclab starts the process inside its cgroup \
             (clone3 CLONE_INTO_CGROUP)",
            a.median, a.min, a.max
        ));
    }
    (s.cgroup_placement.as_deref() == Some(Placement::CloneInto.as_str())).then(|| {
        "born in its cgroup (clone3 CLONE_INTO_CGROUP): no cgroup migration in the start".into()
    })
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
        note.extend(cgroup_note(s, c.samples.len()));
    }
    let peer = s.and_then(|s| {
        let p = s.peer?;
        s.start_vs_peer?;
        // Say which clocks the ratio divides when they differ (lab device vs UART line).
        let (own, theirs) = (c.runtime.start_clock(), p.start_clock());
        let clocks = if own == theirs || c.start_marker.is_some() {
            String::new()
        } else {
            format!(" ({} vs {})", own.label(), theirs.label())
        };
        Some(format!("{} vs {p}{clocks}", ratio(s.start_vs_peer)))
    });
    vec![
        c.runtime.name().to_string(),
        c.kernel.clone(),
        med_ci_range(s.and_then(|s| s.start_latency_ms), 2),
        med(s.and_then(|s| s.total_ms), 1),
        s.and_then(|s| s.score_ops_per_s)
            .map_or_else(String::new, |x| med_ci(x, 2, 1e6)),
        ratio(s.and_then(|s| s.score_vs_bare)),
        med(s.and_then(|s| s.peak_rss_mib), 1),
        med(s.and_then(|s| s.memory_overhead_mib), 1),
        med(s.and_then(|s| s.cpu_overhead_ms), 1),
        peer.unwrap_or_default(),
        note.join("; "),
    ]
}

/// The method line of the reports: runs, interleaving and what the intervals are.
pub fn method(r: &super::record::Results) -> String {
    let mut m = format!(
        "{} warm-up + {} measured runs per case, runtimes interleaved (one run of each row per round); \
         medians with a percentile-bootstrap 95 % CI [in brackets], min–max in parentheses; ratios with \
         a 95 % CI, paired per round where the runs say their round; outliers flagged by MAD \
         (|modified z| > 3.5)",
        r.config.warmup, r.config.runs
    );
    if r.config.pinned {
        m += "; the harness and every instance pinned to separate CPUs";
    }
    if r.config.vm_hugepages {
        m += "; the vclab unikernel VMs run mem-bw and mem-lat with guest RAM on transparent huge \
              pages (--hugepages on), as QEMU madvises its guest RAM";
    }
    if let Some(p) = r.config.precision {
        m += &format!("; {}", precision_verdict(r, p));
    }
    m
}

/// Which cases reached `--precision` (every ratio's 95 % CI half-width within it) and which did not.
pub fn precision_verdict(r: &super::record::Results, target: f64) -> String {
    let (mut ok, mut not) = (Vec::new(), Vec::new());
    for (rt, k, w) in super::summarise::widest_ratio_half_width(r) {
        if w <= target {
            ok.push(format!("{rt} {k}"));
        } else if w.is_finite() {
            not.push(format!("{rt} {k} (±{:.1} %)", w * 100.0));
        } else {
            not.push(format!("{rt} {k} (too few pairs)"));
        }
    }
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    format!(
        "--precision ±{:.1} % (up to {} s): reached by {}; not reached by {}",
        target * 100.0,
        r.config.max_time_s.unwrap_or(0),
        list(&ok),
        list(&not)
    )
}

/// What "start latency" means for each kind of row (printed under the
/// table): the rows of each of the registry's clocks, then the boot lines.
pub fn start_meaning() -> Vec<(String, &'static str)> {
    StartClock::ALL
        .iter()
        .map(|clock| {
            let rows = if *clock == StartClock::InitHandoff {
                "boot lines".to_string()
            } else {
                RuntimeId::ALL
                    .iter()
                    .filter(|r| r.start_clock() == *clock)
                    .map(|r| r.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            (rows, clock.meaning())
        })
        .collect()
}

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
            .find(|(rt, _, why)| *rt == c.runtime.name() && *why == reason)
        {
            Some((_, kernels, _)) => kernels.push(c.kernel.clone()),
            None => out.push((c.runtime.name().to_string(), vec![c.kernel.clone()], reason)),
        }
    }
    out.into_iter()
        .map(|(rt, k, why)| (rt, k.join(", "), why))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(placement: Option<&str>, attach: &[f64]) -> CaseSummary {
        CaseSummary {
            start_latency_ms: None,
            total_ms: None,
            score_ops_per_s: None,
            peak_rss_mib: None,
            peak_pss_mib: None,
            memory_overhead_mib: None,
            cpu_time_ms: None,
            cpu_overhead_ms: None,
            cgroup_placement: placement.map(str::to_string),
            cgroup_attach_ms: Summary::of(attach),
            outlier_runs: vec![],
            score_vs_bare: None,
            start_vs_peer: None,
            peer: None,
        }
    }

    #[test]
    fn cgroup_note_gives_the_attach_time_or_the_placement() {
        let migrated = summary(Some("migrated"), &[12.34, 4.06, 15.0]);
        assert_eq!(
            cgroup_note(&migrated, 3).as_deref(),
            Some(
                "cgroup attach 12.3 ms (4.1–15.0) of the start: writing the pid to cgroup.procs \
                 is a cgroup migration (it waits for an RCU grace period); crun also migrates on \
                 cgroup v1 but does not report it, and on cgroup v2 vclab starts the process inside \
                 its cgroup (clone3 CLONE_INTO_CGROUP)"
            )
        );
        let mixed = summary(Some("mixed"), &[9.0]);
        assert!(cgroup_note(&mixed, 2)
            .unwrap()
            .starts_with("cgroup attach 9.0 ms (9.0–9.0) of the start in 1 of 2 runs:"));
        assert_eq!(
            cgroup_note(&summary(Some("clone-into"), &[]), 3).as_deref(),
            Some("born in its cgroup (clone3 CLONE_INTO_CGROUP): no cgroup migration in the start")
        );
        assert_eq!(cgroup_note(&summary(Some("none"), &[]), 3), None);
        assert_eq!(cgroup_note(&summary(None, &[]), 3), None);
    }

    #[test]
    fn the_note_cell_carries_the_cgroup_attach() {
        let c = Case {
            runtime: crate::runtime::RuntimeId::Container,
            kernel: "cpu".into(),
            status: Status::Measured,
            reason: None,
            start_marker: None,
            samples: vec![Default::default(); 3],
            summary: Some(CaseSummary {
                outlier_runs: vec![1],
                ..summary(Some("migrated"), &[7.0, 8.0, 9.0])
            }),
            failure: None,
        };
        let note = cells(&c).pop().unwrap();
        assert!(
            note.starts_with("1 outlier run(s); cgroup attach 8.0 ms (7.0–9.0) of the start:"),
            "{note}"
        );
    }
}
