//! The summarise step: raw samples → per-case summaries, overheads over the
//! bare host and ratios to bare and to the matching peer. Pure: it reads and
//! writes only the [`Results`] record.

use super::outliers::outlier_indices;
use super::record::{CaseSummary, Results, Sample, Status, PLACEMENT_MIGRATED, PLACEMENT_MIXED};
use super::stats::{ratio, summary_ratio, Summary};

const KIB_PER_MIB: f64 = 1024.0;

/// The peers a row is compared with, best first.
pub fn peers_of(runtime: &str) -> &'static [&'static str] {
    match runtime {
        "container" => &["crun", "runc"],
        "microvm-unikernel" => &["firecracker", "qemu-microvm", "cloud-hypervisor"],
        "microvm-linux" | "vm-distro" => &["qemu-microvm-linux"],
        _ => &[],
    }
}

fn col(samples: &[Sample], f: impl Fn(&Sample) -> Option<f64>) -> Option<Summary> {
    let xs: Vec<f64> = samples.iter().filter_map(f).collect();
    Summary::of(&xs)
}

fn cpu_ms(s: &Sample) -> f64 {
    s.cpu_user_ms + s.cpu_sys_ms
}

/// The placement every run that reported one reported, else `mixed`.
fn placement(samples: &[Sample]) -> Option<String> {
    let mut seen = samples.iter().filter_map(|s| s.cgroup_placement.as_deref());
    let first = seen.next()?;
    Some(if seen.all(|p| p == first) {
        first.to_string()
    } else {
        PLACEMENT_MIXED.to_string()
    })
}

/// The cgroup migration time of a run that migrated (or did not say how it was placed).
fn attach_ms(s: &Sample) -> Option<f64> {
    match s.cgroup_placement.as_deref() {
        None | Some(PLACEMENT_MIGRATED) => s.cgroup_attach_ms,
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

/// Fills `summary` of every measured case, then the ratios (bare first, since
/// overheads are relative to it).
pub fn summarise(results: &mut Results) {
    for kernel in results.kernels() {
        let bare = results
            .cases
            .iter()
            .find(|c| c.runtime == "bare" && c.kernel == kernel && c.status == Status::Measured)
            .map(|c| summarise_own(&c.samples, None));
        for case in results.cases.iter_mut().filter(|c| c.kernel == kernel) {
            case.summary = match case.status {
                Status::Measured if !case.samples.is_empty() => {
                    Some(summarise_own(&case.samples, bare.as_ref()))
                }
                _ => None,
            };
            if let (Some(s), Some(b)) = (case.summary.as_mut(), bare.as_ref()) {
                s.score_vs_bare = match (s.score_ops_per_s, b.score_ops_per_s) {
                    (Some(a), Some(b)) => summary_ratio(&a, &b),
                    _ => None,
                };
            }
        }
    }
    // Each case's start latency, looked up while the cases are borrowed mutably.
    let starts: Vec<(String, String, Option<Summary>)> = results
        .cases
        .iter()
        .map(|c| {
            let start = c.summary.as_ref().and_then(|s| s.start_latency_ms);
            (c.runtime.clone(), c.kernel.clone(), start)
        })
        .collect();
    for case in results.cases.iter_mut() {
        let Some(s) = case.summary.as_mut() else {
            continue;
        };
        let Some(own) = s.start_latency_ms else {
            continue;
        };
        for peer in peers_of(&case.runtime) {
            let theirs = starts
                .iter()
                .find(|(rt, k, _)| rt == peer && *k == case.kernel)
                .and_then(|(_, _, start)| *start);
            if let Some(p) = theirs {
                s.start_vs_peer = ratio(own.median, own.stddev, p.median, p.stddev);
                s.peer = Some((*peer).to_string());
                break;
            }
        }
    }
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
            runtime: runtime.into(),
            kernel: "cpu".into(),
            status: Status::Measured,
            reason: None,
            start_marker: None,
            samples,
            summary: None,
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
            },
            artifacts: vec![],
            cases: vec![
                case("bare", vec![sample(1.0, 2048, 10.0, 100.0); 3]),
                case("container", vec![sample(4.0, 3072, 12.0, 50.0); 3]),
                case("crun", vec![sample(8.0, 4096, 14.0, 100.0); 3]),
            ],
        };
        summarise(&mut r);
        let c = r
            .case("container", "cpu")
            .unwrap()
            .summary
            .as_ref()
            .unwrap();
        assert_eq!(c.memory_overhead_mib.unwrap().median, 1.0);
        assert_eq!(c.cpu_overhead_ms.unwrap().median, 2.0);
        assert_eq!(c.score_vs_bare.unwrap().value, 0.5);
        assert_eq!(c.start_vs_peer.unwrap().value, 0.5);
        assert_eq!(c.peer.as_deref(), Some("crun"));
        let b = r.case("bare", "cpu").unwrap().summary.as_ref().unwrap();
        assert_eq!(b.memory_overhead_mib.unwrap().median, 0.0);
        assert_eq!(c.cgroup_placement, None);
        assert_eq!(c.cgroup_attach_ms, None);
    }

    fn placed(placement: Option<&str>, attach_ms: Option<f64>) -> Sample {
        Sample {
            cgroup_placement: placement.map(str::to_string),
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
}
