//! `vclab density`'s command line and the plan it becomes: every value
//! checked before anything is started (a bad `--max`, budget, runtime name
//! or concurrency is a one-line error, exit 1, nothing launched).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::runtime::RuntimeId;

/// The rows ramped by default, in this order.
pub const DEFAULT_RUNTIMES: &[RuntimeId] = &[
    RuntimeId::Bare,
    RuntimeId::Container,
    RuntimeId::Crun,
    RuntimeId::Runc,
    RuntimeId::MicrovmUnikernel,
    RuntimeId::QemuMicrovm,
    RuntimeId::Firecracker,
    RuntimeId::CloudHypervisor,
    RuntimeId::MicrovmLinux,
];

/// Instances per runtime without `--max` (the target), and with `--quick`.
pub const DEFAULT_MAX: u32 = 5000;
/// `--quick`'s ramp.
pub const QUICK_MAX: u32 = 200;
/// Launches per concurrency level of the launch-rate measurement.
pub const RATE_LAUNCHES: u32 = 100;
/// The smallest memory budget that holds one instance (a bare idle process
/// costs about 0.2 MiB, a container about 0.8 MiB with its kernel memory).
pub const MIN_BUDGET_BYTES: u64 = 1 << 20;
/// Never let the ramp take more than this share of the host's memory,
/// whatever the budget says.
pub const MAX_SHARE_OF_RAM: f64 = 0.60;

/// Errors of the command line.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    /// `--max 0`.
    #[error("--max 0: give the largest number of instances to ramp to, at least 1")]
    MaxZero,
    /// `--step 0`.
    #[error("--step 0: give how many instances each step adds, at least 1")]
    StepZero,
    /// A budget percentage outside (0, 60].
    #[error("--memory-budget {0}: a share of RAM must be above 0% and at most 60% (the ramp never takes more of this host)")]
    BudgetPercent(String),
    /// A budget that is not a size or a percentage.
    #[error("--memory-budget {text}: {why} (give e.g. 50% or 8g)")]
    BudgetText {
        /// The text given.
        text: String,
        /// Why it cannot be read.
        why: String,
    },
    /// A budget smaller than one instance.
    #[error("--memory-budget {0}: smaller than one instance (the lightest, a bare idle process, takes about 0.2 MiB); give at least 1m")]
    BudgetTooSmall(String),
    /// A budget above the share of RAM the ramp may take.
    #[error("--memory-budget {text}: {mib} MiB is more than 60% of this host's {total_mib} MiB")]
    BudgetTooLarge {
        /// The text given.
        text: String,
        /// The budget, MiB.
        mib: u64,
        /// The host's memory, MiB.
        total_mib: u64,
    },
    /// A runtime name that is not a row.
    #[error("unknown runtime {name:?} in --runtimes (known: {known})")]
    UnknownRuntime {
        /// The name given.
        name: String,
        /// The names known.
        known: String,
    },
    /// A runtime given twice.
    #[error("runtime {0} is given twice in --runtimes")]
    DuplicateRuntime(String),
    /// `--concurrency 0` (or an empty list).
    #[error("--concurrency: every level must be at least 1 (e.g. 1,2,8)")]
    ConcurrencyZero,
    /// `--concurrency` above the launches measured per level.
    #[error(
        "--concurrency {0}: more launchers than the {RATE_LAUNCHES} launches measured per level"
    )]
    ConcurrencyTooLarge(u32),
    /// `--guest-mem 0`.
    #[error("--guest-mem 0: a VM needs memory; give 2 or more (MiB)")]
    GuestMemZero,
    /// `--app-mem` could not be read.
    #[error("--app-mem {text}: {why} (give e.g. 64m)")]
    AppMem {
        /// The text given.
        text: String,
        /// Why.
        why: String,
    },
    /// `--launch-timeout 0`.
    #[error("--launch-timeout 0: give the seconds an instance may take to be ready, at least 1")]
    TimeoutZero,
    /// `--out` names something that is not a directory.
    #[error("--out {}: not a directory; give a directory (created if missing)", .0.display())]
    OutNotDir(PathBuf),
    /// A peer binary given with `--firecracker` or `--cloud-hypervisor` is not a file.
    #[error("{flag} {}: no such file; give the path of the {} binary", path.display(), &flag[2..])]
    NoBinary {
        /// The option.
        flag: &'static str,
        /// The path given.
        path: PathBuf,
    },
}

/// Arguments of `vclab density`.
#[derive(clap::Args, Debug, Clone, Default)]
#[command(
    after_help = "Each runtime is ramped up to --max idle instances in steps of --step \
    (or until the memory budget or the first failure, whose cause is reported), measured after \
    each step (MemAvailable, /proc/meminfo, PSS of every process, cgroup memory, launch latency, \
    host processes and threads, liveness), torn down and checked for leftovers; then its launch \
    rate is measured at each --concurrency. The results (density.json, density.csv, SVG plots, \
    report.html with the marginal cost per instance and the course's projection) go to \
    results/<timestamp>-density/; `vclab report DIR` re-renders them. Ctrl-C tears everything \
    down and still writes what was measured."
)]
pub struct Args {
    /// Runtimes to ramp, comma-separated (default: bare,container,crun,runc,microvm-unikernel,
    /// qemu-microvm,firecracker,cloud-hypervisor,microvm-linux; rows that cannot run here are
    /// skipped with the reason).
    #[arg(long, value_delimiter = ',', value_name = "ROWS")]
    pub runtimes: Vec<String>,
    /// The most idle instances of one runtime at once (default 5000, 200 with --quick).
    #[arg(long, value_name = "N")]
    pub max: Option<u32>,
    /// Instances added per step, measured after each step (default: a tenth of --max with
    /// --quick, a twentieth otherwise).
    #[arg(long, value_name = "K")]
    pub step: Option<u32>,
    /// How much memory (MemAvailable drop) one runtime's ramp may take: a share of RAM (50%)
    /// or a size (8g). Never more than 60% of RAM.
    #[arg(long, value_name = "50%|SIZE", default_value = "50%")]
    pub memory_budget: String,
    /// Concurrency levels of the launch-rate measurement, comma-separated
    /// (100 launches each).
    #[arg(long, value_delimiter = ',', value_name = "LIST", default_values_t = vec![1u32, 2, 8])]
    pub concurrency: Vec<u32>,
    /// Guest RAM of every VM, MiB (default: each VMM's own, 128).
    #[arg(long, value_name = "MIB")]
    pub guest_mem: Option<u64>,
    /// Repeat each VM ramp with KSM on (/sys/kernel/mm/ksm/run = 1; the previous value is
    /// restored afterwards, also on Ctrl-C) and show the merged pages.
    #[arg(long)]
    pub ksm: bool,
    /// Raise host limits that would stop the ramp (kernel.pid_max, kernel.threads-max) for
    /// the run, and restore them afterwards. Without it no host limit is changed.
    #[arg(long)]
    pub raise_limits: bool,
    /// A workload's idle working set per instance, for the course's projection of a realistic
    /// fleet (measured overhead + this).
    #[arg(long, value_name = "SIZE", default_value = "64m")]
    pub app_mem: String,
    /// Give up on an instance that is not ready after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 20)]
    pub launch_timeout: u64,
    /// Results directory (default: results/<timestamp>-density under the repository).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// A ramp to 200 per runtime (under two minutes here).
    #[arg(long)]
    pub quick: bool,
    /// A Firecracker binary, to add the `firecracker` row.
    #[arg(long, value_name = "PATH")]
    pub firecracker: Option<PathBuf>,
    /// A cloud-hypervisor binary, to add the `cloud-hypervisor` row.
    #[arg(long, value_name = "PATH")]
    pub cloud_hypervisor: Option<PathBuf>,
}

/// The memory budget as given.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Budget {
    /// A share of MemTotal, 0..=0.6.
    Share(f64),
    /// Bytes.
    Bytes(u64),
}

impl Budget {
    /// The budget in bytes on a host with `total` bytes of RAM.
    pub fn bytes(self, total: u64) -> u64 {
        match self {
            Budget::Share(s) => (total as f64 * s) as u64,
            Budget::Bytes(b) => b,
        }
    }
}

/// What one `vclab density` run does, checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The rows, in order.
    pub runtimes: Vec<RuntimeId>,
    /// Most instances of one runtime.
    pub max: u32,
    /// Instances per step.
    pub step: u32,
    /// Memory budget.
    pub budget: Budget,
    /// The budget in bytes on this host.
    pub budget_bytes: u64,
    /// Concurrency levels of the rate measurement.
    pub concurrency: Vec<u32>,
    /// Launches per concurrency level.
    pub rate_launches: u32,
    /// Guest RAM of VMs, MiB.
    pub guest_mib: Option<u64>,
    /// Repeat VM ramps with KSM on.
    pub ksm: bool,
    /// Raise host limits.
    pub raise_limits: bool,
    /// The projection's idle working set per instance, bytes.
    pub app_mem_bytes: u64,
    /// Launch timeout, seconds.
    pub launch_timeout_s: u64,
    /// `--quick`.
    pub quick: bool,
}

impl Plan {
    /// The launch timeout.
    pub fn launch_timeout(&self) -> Duration {
        Duration::from_secs(self.launch_timeout_s)
    }
}

/// Reads a budget: `50%`, `0.5%`, or a size (`8g`, `512m`).
pub fn parse_budget(text: &str, total_bytes: u64) -> Result<Budget, PlanError> {
    let t = text.trim();
    if let Some(pct) = t.strip_suffix('%') {
        let v: f64 = pct.trim().parse().map_err(|_| PlanError::BudgetText {
            text: text.into(),
            why: "not a percentage".into(),
        })?;
        if !(v > 0.0 && v <= MAX_SHARE_OF_RAM * 100.0) {
            return Err(PlanError::BudgetPercent(text.into()));
        }
        if (total_bytes as f64 * v / 100.0) < MIN_BUDGET_BYTES as f64 {
            return Err(PlanError::BudgetTooSmall(text.into()));
        }
        return Ok(Budget::Share(v / 100.0));
    }
    let bytes = vclab_container::size::parse_size(t).map_err(|e| PlanError::BudgetText {
        text: text.into(),
        why: e.to_string(),
    })?;
    if bytes < MIN_BUDGET_BYTES {
        return Err(PlanError::BudgetTooSmall(text.into()));
    }
    if total_bytes > 0 && bytes as f64 > total_bytes as f64 * MAX_SHARE_OF_RAM {
        return Err(PlanError::BudgetTooLarge {
            text: text.into(),
            mib: bytes >> 20,
            total_mib: total_bytes >> 20,
        });
    }
    Ok(Budget::Bytes(bytes))
}

/// Reads the runtime names (empty: [`DEFAULT_RUNTIMES`]).
pub fn parse_runtimes(names: &[String]) -> Result<Vec<RuntimeId>, PlanError> {
    if names.is_empty() {
        return Ok(DEFAULT_RUNTIMES.to_vec());
    }
    let mut out = Vec::new();
    for n in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let id = RuntimeId::from_name(n).ok_or_else(|| PlanError::UnknownRuntime {
            name: n.to_string(),
            known: RuntimeId::ALL
                .iter()
                .map(|r| r.name())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        if out.contains(&id) {
            return Err(PlanError::DuplicateRuntime(n.to_string()));
        }
        out.push(id);
    }
    if out.is_empty() {
        return Ok(DEFAULT_RUNTIMES.to_vec());
    }
    Ok(out)
}

/// Checks `args` on a host with `total_bytes` of RAM.
pub fn plan(args: &Args, total_bytes: u64) -> Result<Plan, PlanError> {
    let max = args
        .max
        .unwrap_or(if args.quick { QUICK_MAX } else { DEFAULT_MAX });
    if max == 0 {
        return Err(PlanError::MaxZero);
    }
    let steps = if args.quick { 10 } else { 20 };
    let step = args.step.unwrap_or_else(|| max.div_ceil(steps).max(1));
    if step == 0 {
        return Err(PlanError::StepZero);
    }
    let budget = parse_budget(&args.memory_budget, total_bytes)?;
    let runtimes = parse_runtimes(&args.runtimes)?;
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        return Err(PlanError::ConcurrencyZero);
    }
    if let Some(&c) = args.concurrency.iter().find(|&&c| c > RATE_LAUNCHES) {
        return Err(PlanError::ConcurrencyTooLarge(c));
    }
    let mut concurrency = args.concurrency.clone();
    concurrency.sort_unstable();
    concurrency.dedup();
    if args.guest_mem == Some(0) {
        return Err(PlanError::GuestMemZero);
    }
    let app_mem_bytes = if args.app_mem.trim() == "0" {
        0
    } else {
        vclab_container::size::parse_size(&args.app_mem).map_err(|e| PlanError::AppMem {
            text: args.app_mem.clone(),
            why: e.to_string(),
        })?
    };
    if args.launch_timeout == 0 {
        return Err(PlanError::TimeoutZero);
    }
    check_paths(args)?;
    Ok(Plan {
        runtimes,
        max,
        step: step.min(max),
        budget,
        budget_bytes: budget.bytes(total_bytes),
        concurrency,
        rate_launches: RATE_LAUNCHES,
        guest_mib: args.guest_mem,
        ksm: args.ksm,
        raise_limits: args.raise_limits,
        app_mem_bytes,
        launch_timeout_s: args.launch_timeout,
        quick: args.quick,
    })
}

/// The paths given: `--out` a directory or nothing yet, the peer binaries files.
fn check_paths(args: &Args) -> Result<(), PlanError> {
    if let Some(out) = args.out.as_ref().filter(|o| o.exists() && !o.is_dir()) {
        return Err(PlanError::OutNotDir(out.clone()));
    }
    for (flag, path) in [
        ("--firecracker", &args.firecracker),
        ("--cloud-hypervisor", &args.cloud_hypervisor),
    ] {
        if let Some(p) = path.as_ref().filter(|p| !p.is_file()) {
            return Err(PlanError::NoBinary {
                flag,
                path: p.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn args() -> Args {
        Args {
            memory_budget: "50%".into(),
            concurrency: vec![1, 2, 8],
            app_mem: "64m".into(),
            launch_timeout: 20,
            ..Args::default()
        }
    }

    #[test]
    fn defaults() {
        let p = plan(&args(), 24 * GIB).unwrap();
        assert_eq!(p.runtimes, DEFAULT_RUNTIMES);
        assert_eq!((p.max, p.step), (5000, 250));
        assert_eq!(p.budget, Budget::Share(0.5));
        assert_eq!(p.budget_bytes, 12 * GIB);
        assert_eq!(p.concurrency, [1, 2, 8]);
        assert_eq!(p.app_mem_bytes, 64 << 20);
        let q = plan(
            &Args {
                quick: true,
                ..args()
            },
            24 * GIB,
        )
        .unwrap();
        assert_eq!((q.max, q.step), (200, 20));
        let q = plan(
            &Args {
                quick: true,
                max: Some(50),
                ..args()
            },
            24 * GIB,
        )
        .unwrap();
        assert_eq!((q.max, q.step), (50, 5));
    }

    #[test]
    fn bad_input_is_refused() {
        let e = |a: Args| plan(&a, 24 * GIB).unwrap_err();
        assert_eq!(
            e(Args {
                max: Some(0),
                ..args()
            }),
            PlanError::MaxZero
        );
        assert_eq!(
            e(Args {
                step: Some(0),
                ..args()
            }),
            PlanError::StepZero
        );
        let budget = |b: &str| {
            e(Args {
                memory_budget: b.into(),
                ..args()
            })
        };
        assert!(matches!(budget("150%"), PlanError::BudgetPercent(_)));
        assert!(matches!(budget("0%"), PlanError::BudgetPercent(_)));
        assert!(matches!(budget("61%"), PlanError::BudgetPercent(_)));
        assert!(matches!(budget("1k"), PlanError::BudgetTooSmall(_)));
        assert!(matches!(budget("lots"), PlanError::BudgetText { .. }));
        assert!(matches!(budget("20g"), PlanError::BudgetTooLarge { .. }));
        assert!(matches!(
            e(Args {
                runtimes: vec!["bare".into(), "docker".into()],
                ..args()
            }),
            PlanError::UnknownRuntime { .. }
        ));
        assert!(matches!(
            e(Args {
                runtimes: vec!["bare".into(), "bare".into()],
                ..args()
            }),
            PlanError::DuplicateRuntime(_)
        ));
        assert_eq!(
            e(Args {
                concurrency: vec![1, 0],
                ..args()
            }),
            PlanError::ConcurrencyZero
        );
        assert_eq!(
            e(Args {
                guest_mem: Some(0),
                ..args()
            }),
            PlanError::GuestMemZero
        );
        assert!(matches!(
            e(Args {
                app_mem: "x".into(),
                ..args()
            }),
            PlanError::AppMem { .. }
        ));
        // Every message is one line.
        for err in [budget("150%"), budget("1k"), PlanError::MaxZero] {
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn sizes_and_shares() {
        assert_eq!(parse_budget("8g", 24 * GIB), Ok(Budget::Bytes(8 * GIB)));
        assert_eq!(parse_budget(" 25 %", 24 * GIB), Ok(Budget::Share(0.25)));
        assert_eq!(Budget::Share(0.25).bytes(24 * GIB), 6 * GIB);
        let p = parse_runtimes(&["crun".into(), " bare".into()]).unwrap();
        assert_eq!(p, [RuntimeId::Crun, RuntimeId::Bare]);
    }
}
