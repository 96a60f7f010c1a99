//! The summarise step: raw samples → per-case summaries (medians with their
//! bootstrap 95 % CI), overheads over the bare host and ratios to bare and to
//! the matching peer (paired per interleaved round where the samples say their
//! round). Pure: it reads and writes only the [`Results`] record.

use super::outliers::outlier_indices;
use super::record::{Case, CaseSummary, Results, Sample, Status, FORMAT_VERSION, PLACEMENT_MIXED};
use super::stats::{paired_ratio, ratio_of, Ratio, Summary};
use crate::runtime::RuntimeId;
use vclab_contract::container::Placement;

const KIB_PER_MIB: f64 = 1024.0;

fn col(samples: &[Sample], f: impl Fn(&Sample) -> Option<f64>) -> Option<Summary> {
    let xs: Vec<f64> = samples.iter().filter_map(f).collect();
    Summary::of(&xs)
}

fn cpu_ms(s: &Sample) -> f64 {
    s.cpu_user_ms + s.cpu_sys_ms
}

/// The placement every run that reported one reported, else `mixed`.
fn placement(samples: &[Sample]) -> Option<String> {
    let mut seen = samples.iter().filter_map(|s| s.cgroup_placement);
    let first = seen.next()?;
    Some(if seen.all(|p| p == first) {
        first.to_string()
    } else {
        PLACEMENT_MIXED.to_string()
    })
}

/// The cgroup migration time of a run that migrated (or did not say how it was placed).
fn attach_ms(s: &Sample) -> Option<f64> {
    match s.cgroup_placement {
        None | Some(Placement::Migrated) => s.cgroup_attach_ms,
        Some(_) => None,
    }
}

/// Summarises one case's own samples; `bare` is the bare case of the same kernel, if measured.
fn summarise_own(samples: &[Sample], bare: Option<&CaseSummary>) -> CaseSummary {
    let bare_rss = bare.and_then(|b| b.peak_rss_mib).map(|s| s.median);
    let bare_cpu = bare.and_then(|b| b.cpu_time_ms).map(|s| s.median);
    let start: Vec<f64> = samples.iter().filter_map(|s| s.start_latency_ms).collect();
    let outlier_runs = if start.len() == samples.len() {
        outlier_indices(&start)
    } else {
        outlier_indices(&samples.iter().map(|s| s.total_ms).collect::<Vec<_>>())
    };
    CaseSummary {
        start_latency_ms: Summary::of(&start),
        total_ms: col(samples, |s| Some(s.total_ms)),
        score_ops_per_s: col(samples, |s| s.score_ops_per_s),
        peak_rss_mib: col(samples, |s| s.peak_rss_kib.map(|k| k as f64 / KIB_PER_MIB)),
        peak_pss_mib: col(samples, |s| s.peak_pss_kib.map(|k| k as f64 / KIB_PER_MIB)),
        memory_overhead_mib: col(samples, |s| {
            Some(s.peak_rss_kib? as f64 / KIB_PER_MIB - bare_rss?)
        }),
        cpu_time_ms: col(samples, |s| Some(cpu_ms(s))),
        cpu_overhead_ms: col(samples, |s| Some(cpu_ms(s) - bare_cpu?)),
        cgroup_placement: placement(samples),
        cgroup_attach_ms: col(samples, attach_ms),
        outlier_runs,
        score_vs_bare: None,
        start_vs_peer: None,
        peer: None,
    }
}

/// One figure of each run of a case, with the run's round (for pairing).
type Column = Vec<(Option<u32>, f64)>;

fn column(samples: &[Sample], f: impl Fn(&Sample) -> Option<f64>) -> Column {
    samples
        .iter()
        .filter_map(|s| Some((s.round, f(s)?)))
        .collect()
}

/// A row's score against bare's. Bare against itself is exactly 1: its runs
/// are paired with themselves (whether or not they say their round).
fn score_ratio(case: &Case, bare: Option<&Case>) -> Option<Ratio> {
    let bare = bare?;
    let own = column(&case.samples, |s| s.score_ops_per_s);
    if std::ptr::eq(case, bare) {
        let pairs: Vec<(f64, f64)> = own.iter().map(|(_, x)| (*x, *x)).collect();
        return paired_ratio(&pairs);
    }
    ratio_of(&own, &column(&bare.samples, |s| s.score_ops_per_s))
}

/// Fills `summary` of every measured case, then the ratios (bare first, since
/// overheads are relative to it), and marks the record as the current format
/// (the summaries now are).
pub fn summarise(results: &mut Results) {
    results.version = FORMAT_VERSION;
    let measured = |c: &Case| c.status == Status::Measured && !c.samples.is_empty();
    // Bare's case and own summary per kernel, computed once.
    let bares: Vec<(String, Option<&Case>, Option<CaseSummary>)> = results
        .kernels()
        .into_iter()
        .map(|k| {
            let bare = results
                .cases
                .iter()
                .find(|c| c.runtime == RuntimeId::Bare && c.kernel == k && measured(c));
            (k, bare, bare.map(|b| summarise_own(&b.samples, None)))
        })
        .collect();
    let mut summaries: Vec<Option<CaseSummary>> = Vec::with_capacity(results.cases.len());
    for case in &results.cases {
        let (bare, bare_summary) = bares
            .iter()
            .find(|(k, _, _)| *k == case.kernel)
            .map_or((None, None), |(_, c, s)| (*c, s.as_ref()));
        summaries.push(measured(case).then(|| {
            let mut s = summarise_own(&case.samples, bare_summary);
            s.score_vs_bare = score_ratio(case, bare);
            s.start_vs_peer = None;
            for peer in case.runtime.peers() {
                let theirs = results
                    .cases
                    .iter()
                    .find(|c| c.runtime == *peer && c.kernel == case.kernel && measured(c));
                let Some(theirs) = theirs else { continue };
                let their_start = column(&theirs.samples, |s| s.start_latency_ms);
                if their_start.is_empty() {
                    continue;
                }
                let own_start = column(&case.samples, |s| s.start_latency_ms);
                s.start_vs_peer = ratio_of(&own_start, &their_start);
                s.peer = s.start_vs_peer.map(|_| *peer);
                break;
            }
            s
        }));
    }
    for (case, summary) in results.cases.iter_mut().zip(summaries) {
        case.summary = summary;
    }
}

/// Which ratio of a case a [`RatioWidth`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatioKind {
    /// [`CaseSummary::score_vs_bare`].
    ScoreVsBare,
    /// [`CaseSummary::start_vs_peer`].
    StartVsPeer,
}

/// Fewer pairs (or samples) than this and a ratio counts as not yet precise,
/// however narrow its interval: a percentile bootstrap of 2–4 values
/// under-covers.
pub const PRECISION_MIN_N: usize = 5;

/// The width of one ratio's 95 % CI, for `vclab compare --precision`.
#[derive(Debug, Clone, PartialEq)]
pub struct RatioWidth {
    /// Runtime row.
    pub runtime: RuntimeId,
    /// Workload kernel.
    pub kernel: String,
    /// Which ratio.
    pub kind: RatioKind,
    /// The ratio itself.
    pub ratio: Ratio,
    /// [`Ratio::relative_half_width`] (0.02 = ±2 %), or infinity while the
    /// ratio has fewer than [`PRECISION_MIN_N`] pairs or samples.
    pub relative_half_width: f64,
}

/// Every ratio of the summarised `results` (score vs bare, except bare's own,
/// which is 1 by definition; start vs peer) with the relative half-width of its
/// 95 % CI, in case order. `vclab compare --precision P` keeps adding rounds
/// (re-summarising after each) until every entry has
/// `relative_half_width <= P`, and names the rows that did not get there.
pub fn ratio_widths(results: &Results) -> Vec<RatioWidth> {
    let mut out = Vec::new();
    for c in &results.cases {
        let Some(s) = &c.summary else { continue };
        let score = s.score_vs_bare.filter(|_| c.runtime != RuntimeId::Bare);
        for (kind, r) in [
            (RatioKind::ScoreVsBare, score),
            (RatioKind::StartVsPeer, s.start_vs_peer),
        ] {
            let Some(ratio) = r else { continue };
            let relative_half_width = if ratio.n < PRECISION_MIN_N {
                f64::INFINITY
            } else {
                ratio.relative_half_width()
            };
            out.push(RatioWidth {
                runtime: c.runtime,
                kernel: c.kernel.clone(),
                kind,
                ratio,
                relative_half_width,
            });
        }
    }
    out
}

/// Per runtime × kernel, the widest relative CI half-width of its ratios
/// (see [`ratio_widths`]): `(runtime, kernel, width)`, in case order. A case
/// with no ratio is not listed. The `--precision` loop is done when every
/// width is ≤ the target.
pub fn widest_ratio_half_width(results: &Results) -> Vec<(RuntimeId, String, f64)> {
    let mut out: Vec<(RuntimeId, String, f64)> = Vec::new();
    for w in ratio_widths(results) {
        match out
            .iter_mut()
            .find(|(rt, k, _)| *rt == w.runtime && *k == w.kernel)
        {
            Some((_, _, width)) => *width = width.max(w.relative_half_width),
            None => out.push((w.runtime, w.kernel, w.relative_half_width)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::record::{Case, RunConfig, FORMAT_VERSION};
    use crate::host::HostRecord;

    fn sample(start: f64, rss_kib: u64, cpu: f64, score: f64) -> Sample {
        Sample {
            start_latency_ms: Some(start),
            total_ms: start + 10.0,
            score_ops_per_s: Some(score),
            checksum: Some("ab".into()),
            peak_rss_kib: Some(rss_kib),
            cpu_user_ms: cpu,
            ..Sample::default()
        }
    }

    fn case(runtime: &str, samples: Vec<Sample>) -> Case {
        Case {
            runtime: RuntimeId::from_name(runtime).unwrap(),
            kernel: "cpu".into(),
            status: Status::Measured,
            reason: None,
            start_marker: None,
            samples,
            summary: None,
            failure: None,
        }
    }

    #[test]
    fn overheads_and_ratios() {
        let mut r = Results {
            version: FORMAT_VERSION,
            started_utc: "2026-01-01T00:00:00Z".into(),
            host: HostRecord::default(),
            config: RunConfig {
                quick: true,
                warmup: 0,
                runs: 3,
                linux: false,
                workloads: vec![],
                ..RunConfig::default()
            },
            artifacts: vec![],
            cases: vec![
                case("bare", vec![sample(1.0, 2048, 10.0, 100.0); 3]),
                case("container", vec![sample(4.0, 3072, 12.0, 50.0); 3]),
                case("crun", vec![sample(8.0, 4096, 14.0, 100.0); 3]),
            ],
            isolation: None,
            vm_snapshot: None,
        };
        r.version = 1;
        summarise(&mut r);
        assert_eq!(r.version, FORMAT_VERSION);
        let c = r
            .case(RuntimeId::Container, "cpu")
            .unwrap()
            .summary
            .as_ref()
            .unwrap();
        assert_eq!(c.memory_overhead_mib.unwrap().median, 1.0);
        assert_eq!(c.cpu_overhead_ms.unwrap().median, 2.0);
        assert_eq!(c.score_vs_bare.unwrap().value, 0.5);
        assert_eq!(c.start_vs_peer.unwrap().value, 0.5);
        assert_eq!(c.peer, Some(RuntimeId::Crun));
        let b = r
            .case(RuntimeId::Bare, "cpu")
            .unwrap()
            .summary
            .as_ref()
            .unwrap();
        assert_eq!(b.memory_overhead_mib.unwrap().median, 0.0);
        assert_eq!(c.cgroup_placement, None);
        assert_eq!(c.cgroup_attach_ms, None);
    }

    fn placed(placement: Option<&str>, attach_ms: Option<f64>) -> Sample {
        Sample {
            cgroup_placement: placement.map(|p| p.parse().unwrap()),
            cgroup_attach_ms: attach_ms,
            ..sample(4.0, 3072, 12.0, 50.0)
        }
    }

    #[test]
    fn cgroup_attach_over_the_runs_that_migrated() {
        let migrated = [
            placed(Some("migrated"), Some(12.0)),
            placed(Some("migrated"), Some(4.0)),
            placed(Some("migrated"), Some(15.0)),
        ];
        let s = summarise_own(&migrated, None);
        assert_eq!(s.cgroup_placement.as_deref(), Some("migrated"));
        let a = s.cgroup_attach_ms.unwrap();
        assert_eq!((a.median, a.min, a.max, a.n), (12.0, 4.0, 15.0, 3));

        let born = vec![placed(Some("clone-into"), Some(0.0)); 2];
        let s = summarise_own(&born, None);
        assert_eq!(s.cgroup_placement.as_deref(), Some("clone-into"));
        assert_eq!(s.cgroup_attach_ms, None);

        let mixed = [
            placed(Some("clone-into"), Some(0.0)),
            placed(Some("migrated"), Some(9.0)),
        ];
        let s = summarise_own(&mixed, None);
        assert_eq!(s.cgroup_placement.as_deref(), Some("mixed"));
        assert_eq!(s.cgroup_attach_ms.unwrap().n, 1);

        // Older launchers reported neither.
        let old = vec![placed(None, None); 2];
        let s = summarise_own(&old, None);
        assert_eq!((s.cgroup_placement, s.cgroup_attach_ms), (None, None));
    }

    fn results(cases: Vec<Case>) -> Results {
        Results {
            version: FORMAT_VERSION,
            started_utc: "2026-01-01T00:00:00Z".into(),
            host: HostRecord::default(),
            config: RunConfig {
                quick: false,
                warmup: 0,
                runs: 0,
                linux: false,
                workloads: vec![],
                ..RunConfig::default()
            },
            artifacts: vec![],
            cases,
            isolation: None,
            vm_snapshot: None,
        }
    }

    /// `n` rounds in which every row is slowed by the round's own factor; the
    /// container is 2 % slower than bare at the workload and starts at 0.8×
    /// crun's time in every round.
    fn rounds(n: u32, with_round: bool) -> Results {
        let factor = |i: u32| 1.0 + 0.4 * f64::from((i * 7) % 5) / 4.0;
        let run = |i: u32, start: f64, score: f64| Sample {
            round: with_round.then_some(i),
            ..sample(start * factor(i), 2048, 10.0, score / factor(i))
        };
        let rows = [
            ("bare", 1.0, 100.0),
            ("container", 8.0, 98.0),
            ("crun", 10.0, 100.0),
        ];
        results(
            rows.iter()
                .map(|(rt, start, score)| {
                    case(rt, (0..n).map(|i| run(i, *start, *score)).collect())
                })
                .collect(),
        )
    }

    #[test]
    fn ratios_pair_runs_of_the_same_round() {
        let mut r = rounds(10, true);
        summarise(&mut r);
        let c = r
            .case(RuntimeId::Container, "cpu")
            .unwrap()
            .summary
            .clone()
            .unwrap();
        let score = c.score_vs_bare.unwrap();
        assert!(score.paired && score.n == 10);
        assert!((score.value - 0.98).abs() < 1e-9);
        assert!((score.ci_high - score.ci_low).abs() < 1e-9, "{score:?}");
        let start = c.start_vs_peer.unwrap();
        assert!(start.paired && (start.value - 0.8).abs() < 1e-9);
        // Bare against itself is exactly 1.
        let b = r
            .case(RuntimeId::Bare, "cpu")
            .unwrap()
            .summary
            .clone()
            .unwrap();
        let one = b.score_vs_bare.unwrap();
        assert_eq!((one.value, one.ci_low, one.ci_high), (1.0, 1.0, 1.0));
        // Every ratio is within 2 %; bare's own is not listed.
        let widths = ratio_widths(&r);
        assert_eq!(widths.len(), 3, "{widths:?}");
        assert!(widths.iter().all(|w| w.relative_half_width < 0.02));
        let widest = widest_ratio_half_width(&r);
        assert_eq!(
            widest
                .iter()
                .map(|(rt, _, _)| rt.name())
                .collect::<Vec<_>>(),
            ["container", "crun"]
        );

        // The same runs without their rounds: unpaired, the round-to-round
        // slowdown shows in the intervals.
        let mut r = rounds(10, false);
        summarise(&mut r);
        let c = r
            .case(RuntimeId::Container, "cpu")
            .unwrap()
            .summary
            .clone()
            .unwrap();
        let score = c.score_vs_bare.unwrap();
        assert!(
            !score.paired && score.relative_half_width() > 0.05,
            "{score:?}"
        );
        assert!(widest_ratio_half_width(&r)
            .iter()
            .all(|(_, _, w)| *w > 0.05));
        // Bare against itself stays exactly 1 without rounds too.
        let b = r
            .case(RuntimeId::Bare, "cpu")
            .unwrap()
            .summary
            .clone()
            .unwrap();
        assert_eq!(b.score_vs_bare.unwrap().ci_high, 1.0);
    }

    #[test]
    fn too_few_rounds_are_never_precise() {
        let mut r = rounds(3, true);
        summarise(&mut r);
        assert!(widest_ratio_half_width(&r)
            .iter()
            .all(|(_, _, w)| w.is_infinite()));
    }

    #[test]
    fn summarising_a_long_run_is_quick() {
        // 100 rounds of the three rows: the runner re-summarises after every round.
        let mut r = rounds(100, true);
        let t = std::time::Instant::now();
        summarise(&mut r);
        // About 1.7 s in a debug build on the 2-core lab host (the bootstrap
        // dominates); a release build is far quicker.
        assert!(t.elapsed().as_secs_f64() < 10.0, "{:?}", t.elapsed());
    }
}
