//! The saved results: one flat serde record per run (raw samples, units in
//! the field names), one summary per case, and the whole file written as
//! `results.json`. Measuring fills [`Sample`]s; summarising fills
//! [`CaseSummary`]; rendering reads only this file.

use serde::{Deserialize, Serialize};

use super::stats::{Ratio, Summary};
use crate::host::HostRecord;
use crate::runtime::RuntimeId;
use vclab_contract::container::Placement;

/// Format version of `results.json`.
///
/// - 2: medians carry a bootstrap 95 % CI (`ci_low`, `ci_high`); ratios carry a
///   CI and say whether they are paired per round (`ci_low`, `ci_high`,
///   `paired`, `n`) instead of version 1's propagated `error`; samples may say
///   their `round`; the host record may carry the host's `noise` during the run.
/// - 1: still read. Its ratios' `error` loads as [`Ratio::v1_error`]; the
///   summaries are recomputed from the raw samples by `vclab report`, which
///   writes the file back as version 2.
pub const FORMAT_VERSION: u32 = 2;

/// Everything one `vclab compare` run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    /// Format version ([`FORMAT_VERSION`]).
    pub version: u32,
    /// When the run started, UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub started_utc: String,
    /// The machine the figures come from.
    pub host: HostRecord,
    /// How the run was set up.
    pub config: RunConfig,
    /// Facts about the artifacts used (image sizes), by name.
    #[serde(default)]
    pub artifacts: Vec<ArtifactFact>,
    /// One entry per runtime × workload kernel, in row order.
    pub cases: Vec<Case>,
    /// The isolation probe, run once per `vclab compare` (absent with `--no-isolation` and in
    /// files written before it; additive, so format 2 is unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<super::isolation::Isolation>,
    /// The snapshot the restore row restored, and what taking it cost (absent when that row
    /// did not run, and in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_snapshot: Option<super::vm_snapshot::SnapshotFacts>,
}

/// Size of one artifact the runtimes started from (for the course table's "weight" line).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ArtifactFact {
    /// Manifest name (`rootfs`, `unikernel`, `vmlinux`, ...).
    pub name: String,
    /// Size in bytes (a directory: sum of its files).
    pub size_bytes: u64,
}

/// The parameters of a run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct RunConfig {
    /// `--quick` was given.
    pub quick: bool,
    /// Unmeasured runs per case before the measured ones.
    pub warmup: u32,
    /// Measured runs per case.
    pub runs: u32,
    /// Linux guest rows were booted.
    pub linux: bool,
    /// The workloads run in every runtime.
    pub workloads: Vec<WorkloadSpec>,
    /// `--precision`: rounds were added until every ratio's 95 % CI half-width
    /// was within this fraction (0.02 = 2 %), or `max_time_s` ran out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<f64>,
    /// `--max-time`: the time the measured rounds of all kernels could take, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_time_s: Option<u64>,
    /// `--pin`: the harness ran on one CPU and every instance on another.
    #[serde(default)]
    pub pinned: bool,
    /// The vclab unikernel VMs ran mem-bw and mem-lat with guest RAM on
    /// transparent huge pages (`vclab-vmm --hugepages on`).
    #[serde(default)]
    pub vm_hugepages: bool,
    /// The density report the course table's "weight" line quotes: its
    /// marginal costs per idle instance and where it was read (`--density DIR`,
    /// else the newest `results/*-density`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub density: Option<String>,
}

/// One workload kernel with its parameters (the same everywhere, so checksums must agree).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkloadSpec {
    /// `cpu`, `mem-bw` or `mem-lat`.
    pub kernel: String,
    /// Working-set size in bytes.
    pub size: u64,
    /// Iterations.
    pub iterations: u64,
    /// Seed.
    pub seed: u64,
}

/// Whether a case has figures.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Measured; `samples` and `summary` hold the figures.
    Measured,
    /// Not run on this host; `reason` says why.
    Skipped,
    /// Tried and failed (launch error, checksum mismatch); `reason` says how.
    Failed,
}

/// One runtime × kernel case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Case {
    /// The row (`bare`, `container`, `microvm-unikernel`, ... in JSON).
    pub runtime: RuntimeId,
    /// Workload kernel, or `boot` for a Linux guest timed to its init handoff.
    pub kernel: String,
    /// Measured, skipped or failed.
    pub status: Status,
    /// Why the case has no figures, or a caveat on them.
    pub reason: Option<String>,
    /// What "start latency" means for this case when it is not the workload start
    /// (e.g. the Linux kernel's init handoff on kvm_pvm).
    pub start_marker: Option<String>,
    /// The raw runs, in the order they ran.
    pub samples: Vec<Sample>,
    /// The summaries, filled after the last run of the case.
    pub summary: Option<CaseSummary>,
    /// Why a failed case failed, as a kind (it drives `vclab compare`'s exit
    /// code) with its detail; `reason` holds the same as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<vclab_contract::FailureReport>,
}

/// `cgroup_placement` of a case whose runs reported different placements.
pub const PLACEMENT_MIXED: &str = "mixed";

/// One measured run (flat; units in the field names).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Sample {
    /// The interleaved round the run belongs to (0 = first measured round).
    /// Runs of different rows with the same round ran back to back, so the
    /// ratios pair them ([`super::stats::ratio_of`]). Absent in older files
    /// and for runs outside the rounds (a Linux boot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
    /// Launch → workload start (guest ready for VMs), milliseconds.
    pub start_latency_ms: Option<f64>,
    /// Launch → exit of the runtime, milliseconds.
    pub total_ms: f64,
    /// The workload's own score: ops per second of its own timing.
    pub score_ops_per_s: Option<f64>,
    /// The workload's checksum (hex).
    pub checksum: Option<String>,
    /// The workload's own CPU time for its kernel (CLOCK_THREAD_CPUTIME_ID),
    /// milliseconds; absent where the guest has no CPU-time clock (the unikernel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_cpu_ms: Option<f64>,
    /// Peak resident set of the runtime's process tree, KiB.
    pub peak_rss_kib: Option<u64>,
    /// Peak proportional set size of the process tree, KiB.
    pub peak_pss_kib: Option<u64>,
    /// Guest RAM a VMM mapped (excluded from its RSS for the overhead), KiB.
    pub guest_ram_kib: Option<u64>,
    /// Guest RAM actually touched, KiB (VMs, from the VMM's report).
    pub guest_touched_kib: Option<u64>,
    /// Processes the run left behind after its launcher exited (0 for a daemonless runtime).
    #[serde(default)]
    pub leftover_processes: u32,
    /// User CPU time of the runtime and everything it started, milliseconds.
    pub cpu_user_ms: f64,
    /// System CPU time of the runtime and everything it started, milliseconds.
    pub cpu_sys_ms: f64,
    /// How the vclab launcher put the container into its cgroup (`clone-into`,
    /// `migrated` or `none`; its report's `cgroup_placement`). Absent for
    /// other rows and for launchers that did not report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_placement: Option<Placement>,
    /// Time the vclab launcher spent moving the container into its cgroup
    /// (writing `cgroup.procs`; its report's `cgroup_attach_ns`), milliseconds;
    /// 0 when it was born there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_attach_ms: Option<f64>,
    /// The io kernel's figures from its result line (absent for the other kernels and in
    /// files written before the io kernel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io: Option<vclab_contract::io::IoStats>,
}

/// Summaries of one case, plus its comparisons.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CaseSummary {
    /// Start latency, ms.
    pub start_latency_ms: Option<Summary>,
    /// Launch → exit, ms.
    pub total_ms: Option<Summary>,
    /// Workload score, ops/s.
    pub score_ops_per_s: Option<Summary>,
    /// Peak RSS of the runtime's processes, MiB.
    pub peak_rss_mib: Option<Summary>,
    /// Peak PSS of the runtime's processes, MiB.
    pub peak_pss_mib: Option<Summary>,
    /// Memory the runtime adds over the bare workload, MiB.
    pub memory_overhead_mib: Option<Summary>,
    /// CPU time (user + sys) of the runtime and workload, ms.
    pub cpu_time_ms: Option<Summary>,
    /// CPU time the runtime adds over the bare workload, ms.
    pub cpu_overhead_ms: Option<Summary>,
    /// How the runs' containers got into their cgroup: the `cgroup_placement`
    /// they all reported, or `mixed` (vclab launcher row only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_placement: Option<String>,
    /// The launcher's cgroup migration time, ms, over the runs that migrated
    /// (see [`Sample::cgroup_attach_ms`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_attach_ms: Option<Summary>,
    /// Indices of runs whose start latency (else total time) is a MAD outlier.
    pub outlier_runs: Vec<usize>,
    /// Score ratio to bare (1.0 = no CPU overhead), with its 95 % CI, paired
    /// per round where both rows' runs say their round.
    pub score_vs_bare: Option<Ratio>,
    /// Start latency ratio to the matching peer, with its 95 % CI (paired
    /// per round where possible).
    pub start_vs_peer: Option<Ratio>,
    /// The peer used for `start_vs_peer`.
    pub peer: Option<RuntimeId>,
}

/// Errors of reading a saved `results.json`.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source} (give a directory written by vclab compare)")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a results record this version can read.
    #[error("{path} is not a vclab results file: {source}")]
    Parse {
        /// The file.
        path: std::path::PathBuf,
        /// The serde error.
        source: serde_json::Error,
    },
    /// The file is from a newer vclab.
    #[error("{path} has format version {version}; this vclab reads versions 1 to {FORMAT_VERSION} (use a newer vclab)")]
    Version {
        /// The file.
        path: std::path::PathBuf,
        /// Its version.
        version: u32,
    },
}

impl Results {
    /// Reads `dir/results.json` (format version 1 or 2). The summaries are as
    /// saved; run [`super::summarise::summarise`] to recompute them in the
    /// current format.
    pub fn load(dir: &std::path::Path) -> Result<Results, LoadError> {
        let path = dir.join("results.json");
        let text = std::fs::read_to_string(&path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        let r: Results = serde_json::from_str(&text).map_err(|source| LoadError::Parse {
            path: path.clone(),
            source,
        })?;
        if r.version > FORMAT_VERSION {
            return Err(LoadError::Version {
                path,
                version: r.version,
            });
        }
        Ok(r)
    }

    /// The case for `runtime` × `kernel`, if any.
    pub fn case(&self, runtime: RuntimeId, kernel: &str) -> Option<&Case> {
        self.cases
            .iter()
            .find(|c| c.runtime == runtime && c.kernel == kernel)
    }

    /// The rows in first-seen order.
    pub fn runtimes(&self) -> Vec<RuntimeId> {
        first_seen(self.cases.iter().map(|c| &c.runtime))
    }

    /// Kernel names in first-seen order.
    pub fn kernels(&self) -> Vec<String> {
        first_seen(self.cases.iter().map(|c| &c.kernel))
    }
}

/// The distinct values of `names`, in the order they first appear.
fn first_seen<'a, T: PartialEq + Clone + 'a>(names: impl Iterator<Item = &'a T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for n in names {
        if !out.contains(n) {
            out.push(n.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_results_file_from_before_the_io_kernel_loads() {
        let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
        let r = Results::load(&golden).unwrap();
        assert!(!r.cases.is_empty());
        assert!(r
            .cases
            .iter()
            .all(|c| c.samples.iter().all(|s| s.io.is_none())));
        // And a sample with io figures survives a save and a load; one without writes no key.
        let mut s = Sample {
            io: Some(vclab_contract::io::IoStats {
                seq_bytes: 1 << 20,
                seq_ns: 1000,
                direct: Some(true),
                ..Default::default()
            }),
            ..Sample::default()
        };
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Sample>(&text).unwrap(), s);
        s.io = None;
        assert!(!serde_json::to_string(&s).unwrap().contains("\"io\""));
    }
}
