//! `density.json`: the raw record of one `vclab density` run, every
//! per-step sample as measured. Everything else (CSV, plots, fits, the
//! report) is rendered from it, so `vclab report DIR` rebuilds them.
//! Versioned: [`FORMAT_VERSION`]; the `kind` field tells it from a compare
//! `results.json`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::plan::Plan;
use crate::host::HostRecord;
use crate::runtime::RuntimeId;

/// The record's format version.
pub const FORMAT_VERSION: u32 = 1;
/// The record's `kind`.
pub const KIND: &str = "vclab-density";
/// Its file name in the results directory.
pub const FILE: &str = "density.json";

/// Errors reading a record.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file could not be read.
    #[error("cannot read {path}: {source} (is it a `vclab density` results directory?)")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a density record.
    #[error("{path} is not a density record: {why}")]
    Parse {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        why: String,
    },
}

/// Why a ramp stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// It reached `--max`.
    ReachedMax,
    /// The MemAvailable drop reached `--memory-budget`.
    MemoryBudget,
    /// The host's used memory reached 60 % of RAM (others use it too).
    HostMemoryGuard,
    /// Too many open files (EMFILE), in the harness or the runtime.
    Emfile,
    /// Out of memory (ENOMEM).
    Enomem,
    /// fork or clone failed with EAGAIN (no host limit was near).
    Eagain,
    /// The host's tasks reached kernel.pid_max.
    PidMax,
    /// The host's tasks reached kernel.threads-max.
    ThreadsMax,
    /// A cgroup's pids.max was reached.
    PidsMax,
    /// An instance was not ready within the launch timeout.
    LaunchTimeout,
    /// An instance failed to start for another reason (in the detail).
    LaunchFailed,
    /// An instance already running stopped answering (died, OOM-killed).
    InstancesDied,
    /// Ctrl-C (SIGINT) or SIGTERM.
    Interrupted,
}

impl StopReason {
    /// A short label.
    pub const fn label(self) -> &'static str {
        match self {
            StopReason::ReachedMax => "reached --max",
            StopReason::MemoryBudget => "memory budget",
            StopReason::HostMemoryGuard => "host memory guard (60% of RAM in use)",
            StopReason::Emfile => "EMFILE (too many open files)",
            StopReason::Enomem => "ENOMEM",
            StopReason::Eagain => "EAGAIN on fork/clone",
            StopReason::PidMax => "kernel.pid_max",
            StopReason::ThreadsMax => "kernel.threads-max",
            StopReason::PidsMax => "cgroup pids.max",
            StopReason::LaunchTimeout => "launch timeout",
            StopReason::LaunchFailed => "launch failed",
            StopReason::InstancesDied => "running instances died",
            StopReason::Interrupted => "interrupted (Ctrl-C)",
        }
    }

    /// Whether the ramp ended by a limit of the plan rather than of the host or runtime.
    pub const fn planned(self) -> bool {
        matches!(self, StopReason::ReachedMax | StopReason::MemoryBudget)
    }
}

/// /proc/meminfo figures the ramp follows, KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Meminfo {
    /// MemTotal.
    pub total_kib: u64,
    /// MemAvailable.
    pub available_kib: u64,
    /// AnonPages.
    pub anon_kib: u64,
    /// Slab.
    pub slab_kib: u64,
    /// PageTables.
    pub page_tables_kib: u64,
    /// KernelStack.
    pub kernel_stack_kib: u64,
    /// Shmem.
    pub shmem_kib: u64,
}

/// KSM's counters (/sys/kernel/mm/ksm).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct KsmCounters {
    /// pages_shared: shared pages in use.
    pub pages_shared: u64,
    /// pages_sharing: how many more sites share them (the pages saved).
    pub pages_sharing: u64,
    /// full_scans.
    pub full_scans: u64,
}

/// One measurement after a step of the ramp.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Step {
    /// Instances held at the measurement.
    pub n: u32,
    /// Seconds since the ramp started.
    pub elapsed_s: f64,
    /// /proc/meminfo now.
    pub meminfo: Meminfo,
    /// Sum of Pss (smaps_rollup) over every process of the runtime, KiB.
    pub pss_kib: u64,
    /// The runtime's processes (instances, launchers, VMMs).
    pub processes: u32,
    /// The runtime's threads.
    pub threads: u32,
    /// Sum of the memory charged to the instances' own cgroups, KiB (`None`:
    /// the runtime makes none).
    pub cgroup_kib: Option<u64>,
    /// Launch → ready of each instance launched in this step, ms.
    pub latencies_ms: Vec<f64>,
    /// Processes on the host.
    pub host_processes: u64,
    /// Threads (tasks) on the host.
    pub host_threads: u64,
    /// Running instances sampled for liveness.
    pub sampled: u32,
    /// Of those, how many still ran.
    pub alive: u32,
    /// OOM kills on the host since the ramp started (/proc/vmstat oom_kill).
    pub oom_kills: u64,
    /// KSM's counters, when KSM was on.
    pub ksm: Option<KsmCounters>,
}

/// What the teardown left.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Teardown {
    /// How long it took, s.
    pub seconds: f64,
    /// Processes killed as leftovers of instances' trees while stopping.
    pub killed_leftovers: u32,
    /// What was still there afterwards (empty: nothing).
    pub leftovers: Vec<String>,
    /// Stop errors of single instances.
    pub errors: Vec<String>,
}

/// One ramp of one runtime.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ramp {
    /// KSM was on.
    pub ksm: bool,
    /// /proc/meminfo before the first instance.
    pub baseline: Meminfo,
    /// Host processes and threads before the first instance.
    pub baseline_host_processes: u64,
    /// Host threads before the first instance.
    pub baseline_host_threads: u64,
    /// The measurement after each step (the first is N = 0).
    pub steps: Vec<Step>,
    /// Most instances held at once.
    pub max_n: u32,
    /// Why it stopped.
    pub stop: Option<StopReason>,
    /// The failure's own words (or the limit's figures).
    pub stop_detail: String,
    /// The teardown.
    pub teardown: Teardown,
}

/// The launch rate at one concurrency.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Rate {
    /// Launchers at once.
    pub concurrency: u32,
    /// Launches attempted.
    pub launches: u32,
    /// Instances that became ready.
    pub ready: u32,
    /// First launch → last ready, s.
    pub seconds: f64,
    /// Ready instances per second.
    pub per_s: f64,
    /// Launch → ready of each, ms.
    pub latencies_ms: Vec<f64>,
    /// The first failure, if any.
    pub failure: Option<String>,
    /// What the teardown left.
    pub leftovers: Vec<String>,
}

/// Everything measured for one runtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeRun {
    /// The row.
    pub runtime: RuntimeId,
    /// Why it was not run here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// The ramp (and, with `--ksm` on a VM row, the second ramp with KSM on).
    #[serde(default)]
    pub ramps: Vec<Ramp>,
    /// The launch rates.
    #[serde(default)]
    pub rates: Vec<Rate>,
}

impl RuntimeRun {
    /// The ramp without KSM.
    pub fn ramp(&self) -> Option<&Ramp> {
        self.ramps.iter().find(|r| !r.ksm)
    }

    /// The ramp with KSM on.
    pub fn ksm_ramp(&self) -> Option<&Ramp> {
        self.ramps.iter().find(|r| r.ksm)
    }
}

/// A host setting changed for the run (and restored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitChange {
    /// What (`kernel.pid_max`, `/sys/kernel/mm/ksm/run`, `RLIMIT_NOFILE (soft)`).
    pub name: String,
    /// Its value before.
    pub before: String,
    /// Its value during the run.
    pub during: String,
    /// Whether it was set back afterwards.
    pub restored: bool,
}

/// The whole record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DensityRecord {
    /// [`KIND`].
    pub kind: String,
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// When it started (UTC).
    pub started_utc: String,
    /// The command line.
    pub command: String,
    /// The host.
    pub host: HostRecord,
    /// The checked plan.
    pub plan: Plan,
    /// Host limits at the start (pid_max, threads-max, RLIMIT_NOFILE).
    #[serde(default)]
    pub host_limits: Vec<(String, String)>,
    /// Settings changed for the run.
    #[serde(default)]
    pub changes: Vec<LimitChange>,
    /// Whether the run was interrupted.
    #[serde(default)]
    pub interrupted: bool,
    /// One entry per runtime, in order.
    pub runtimes: Vec<RuntimeRun>,
}

impl DensityRecord {
    /// Reads `dir/density.json`.
    pub fn load(dir: &Path) -> Result<Self, RecordError> {
        let path = dir.join(FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| RecordError::Read {
            path: path.clone(),
            source,
        })?;
        let r: DensityRecord = serde_json::from_str(&text).map_err(|e| RecordError::Parse {
            path: path.clone(),
            why: e.to_string(),
        })?;
        if r.kind != KIND {
            return Err(RecordError::Parse {
                path,
                why: format!("its kind is {:?}, not {KIND:?}", r.kind),
            });
        }
        if r.version > FORMAT_VERSION {
            return Err(RecordError::Parse {
                path,
                why: format!(
                    "format version {} is newer than this vclab's {FORMAT_VERSION}: update vclab",
                    r.version
                ),
            });
        }
        Ok(r)
    }

    /// Whether `dir` holds a density record.
    pub fn is_density_dir(dir: &Path) -> bool {
        dir.join(FILE).is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reasons_have_stable_names() {
        let s = serde_json::to_string(&StopReason::PidMax).unwrap();
        assert_eq!(s, "\"pid-max\"");
        let back: StopReason = serde_json::from_str("\"launch-timeout\"").unwrap();
        assert_eq!(back, StopReason::LaunchTimeout);
        assert!(StopReason::ReachedMax.planned());
        assert!(!StopReason::Emfile.planned());
    }
}
