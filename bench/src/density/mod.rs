//! `vclab density`: how many idle instances of each runtime fit on this
//! host, what one more costs, how fast they launch, and what that means for
//! the course's fleets.
//!
//! The recipe ([`run`]), one file per step:
//! plan (`plan.rs`: every input checked before anything starts) → set-up
//! (Ctrl-C flag `interrupt.rs`, host limits `limits.rs`, the harness's state
//! entry and guard) → for each runtime: ramp (`ramp.rs`: hold idle instances
//! step by step, measure after each step with `measure.rs`, stop on the
//! budget or the first failure, named by its cause; tear down and check with
//! `leftovers.rs`) → launch rate (`rate.rs`) → with `--ksm`, the VM ramp
//! again with KSM on (`ksm.rs`) → record (`record.rs`: density.json,
//! rewritten after every step) → render (`render.rs`, with the marginal
//! costs from `fit.rs` and the course's projection from `project.rs`).
//! Progress goes to stderr (`progress.rs`).

pub mod fit;
pub mod interrupt;
pub mod ksm;
pub mod leftovers;
pub mod limits;
pub mod measure;
pub mod plan;
pub mod progress;
pub mod project;
pub mod ramp;
pub mod rate;
pub mod record;
pub mod render;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use anyhow::Context;
use vclab_vmm::cache::Manifest;

pub use plan::Args;

use crate::host::HostRecord;
use crate::runtime::{self, Env, HoldOptions, RuntimeId};
use crate::spawn::guard::Harness;
use leftovers::Probe;
use progress::Progress;
use record::{DensityRecord, Ramp, RuntimeRun};

/// The exit code of a run stopped by Ctrl-C (128 + SIGINT).
pub const EXIT_INTERRUPTED: i32 = 130;

/// Why `runtime` is not ramped here, if it is not.
fn skip_reason(rt: &dyn runtime::Runtime, env: &Env) -> Option<String> {
    if rt.id() == RuntimeId::MicrovmLinux && !env.linux_userspace() {
        return Some(
            "a Linux guest's userspace cannot run on this host (kvm_pvm: guest system calls fault), so no Linux VM can be held idle; it needs hardware KVM"
                .into(),
        );
    }
    if rt.id().linux_guest() && rt.id() != RuntimeId::MicrovmLinux {
        return Some("density holds the micro-VM Linux row only (microvm-linux)".into());
    }
    rt.unavailable(env)
}

/// The repository's `results/` directory, else `./results`.
fn results_root() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if repo.join("Cargo.toml").is_file() {
        repo.canonicalize().unwrap_or(repo).join("results")
    } else {
        PathBuf::from("results")
    }
}

/// The newest `results/*-density` directory, if any.
pub fn newest_density_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(results_root())
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with("-density"))
                && DensityRecord::is_density_dir(p)
        })
        .collect();
    dirs.sort();
    dirs.pop()
}

/// Runs `vclab density`.
pub fn run(args: Args) -> anyhow::Result<i32> {
    let total = measure::meminfo().total_kib * 1024;
    // Every input is checked before anything is started.
    let plan = plan::plan(&args, total)?;
    interrupt::install()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let started_utc = crate::compare::utc_timestamp(now);
    let dir = args.out.clone().unwrap_or_else(|| {
        results_root().join(format!("{}-density", started_utc.replace([':', '-'], "")))
    });
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the results directory {}", dir.display()))?;

    let host = HostRecord::detect(&[
        ("firecracker", args.firecracker.as_deref()),
        ("cloud-hypervisor", args.cloud_hypervisor.as_deref()),
    ]);
    let manifest = Manifest::load(&vclab_vmm::cache::dir()).map_err(|e| e.to_string());
    let vclab = std::env::current_exe().context("cannot find the vclab binary itself")?;
    // Detached OCI containers' inits are re-parented here, and reaped here.
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let harness =
        Arc::new(Harness::start(Some(&vclab)).context("cannot set up the harness state")?);
    let mut env = Env::bare(vclab);
    env.workload = runtime::env::find_workload(&manifest, &env.vclab);
    env.manifest = manifest;
    env.host = host.clone();
    env.tsc_khz = runtime::env::host_tsc_khz();
    env.linux = env.linux_userspace();
    env.harness = Some(harness.clone());

    let mut record = DensityRecord {
        kind: record::KIND.into(),
        version: record::FORMAT_VERSION,
        started_utc,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        host,
        plan: plan.clone(),
        host_limits: limits::snapshot(),
        changes: Vec::new(),
        interrupted: false,
        runtimes: Vec::new(),
    };
    record.changes.extend(limits::raise_nofile());
    let mut raised = plan.raise_limits.then(limits::Raised::raise);
    if let Some(r) = &raised {
        record.changes.extend(r.changes.iter().cloned());
    }
    let progress = Progress::new();
    progress.note(&format!("writing {}", dir.display()));
    let opts = HoldOptions {
        timeout: plan.launch_timeout(),
        guest_mib: plan.guest_mib,
        ..HoldOptions::default()
    };
    let probe = Probe::this_run(&opts.name_prefix, Some(harness.dir().to_path_buf()));
    let seq = AtomicU64::new(0);
    let own_cgroup = measure::memory_cgroup(std::process::id() as i32);
    let save = |r: &DensityRecord| {
        if let Err(e) = render::write_json(r, &dir) {
            progress.note(&format!("cannot save the record: {e}"));
        }
    };

    for &id in &plan.runtimes {
        if interrupt::interrupted() {
            break;
        }
        let rt = runtime::of(id);
        if let Some(why) = skip_reason(rt.as_ref(), &env) {
            progress.note(&format!("{id}: skipped: {why}"));
            record.runtimes.push(RuntimeRun {
                runtime: id,
                skipped: Some(why),
                ramps: Vec::new(),
                rates: Vec::new(),
            });
            save(&record);
            continue;
        }
        record.runtimes.push(RuntimeRun {
            runtime: id,
            skipped: None,
            ramps: Vec::new(),
            rates: Vec::new(),
        });
        let ctx = ramp::Ctx {
            rt: rt.as_ref(),
            env: &env,
            plan: &plan,
            opts: &opts,
            probe: &probe,
            seq: &seq,
            own_cgroup: own_cgroup.clone(),
            progress: &progress,
        };
        let mut ramps_to_do = vec![false];
        if plan.ksm && id.family().is_vm() {
            ramps_to_do.push(true);
        }
        for ksm_on in ramps_to_do {
            if interrupt::interrupted() {
                break;
            }
            let mut ksm_guard = None;
            if ksm_on {
                match ksm::KsmOn::on() {
                    Ok(k) => {
                        if let Err(why) = &k.merge_any {
                            progress.note(why);
                        }
                        ksm_guard = Some(k);
                    }
                    Err(e) => {
                        progress.note(&format!("{id}: no KSM ramp: {e}"));
                        continue;
                    }
                }
            }
            let idx = record.runtimes.len() - 1;
            let slot = record.runtimes[idx].ramps.len();
            record.runtimes[idx].ramps.push(Ramp::default());
            let ramp = {
                let mut save_step = |r: &Ramp| {
                    record.runtimes[idx].ramps[slot] = r.clone();
                    save(&record);
                };
                ramp::ramp(&ctx, ksm_on, &mut save_step)
            };
            record.runtimes[idx].ramps[slot] = ramp;
            if let Some(mut k) = ksm_guard.take() {
                let change = k.restore();
                if let Some(c) = record.changes.iter_mut().find(|c| c.name == change.name) {
                    c.restored = change.restored;
                } else {
                    record.changes.push(change);
                }
            }
            save(&record);
        }
        let ramped = record
            .runtimes
            .last()
            .and_then(RuntimeRun::ramp)
            .is_some_and(|r| r.max_n > 0);
        if ramped {
            for &c in &plan.concurrency {
                if interrupt::interrupted() {
                    break;
                }
                let r = rate::rate(
                    rt.as_ref(),
                    &env,
                    &opts,
                    c,
                    plan.rate_launches,
                    &seq,
                    &probe,
                );
                progress.rate(id.name(), &r);
                if let Some(last) = record.runtimes.last_mut() {
                    last.rates.push(r);
                }
                save(&record);
            }
        }
    }
    if let Some(r) = raised.as_mut() {
        let restored = r.restore();
        for c in &mut record.changes {
            if let Some(x) = restored.iter().find(|x| x.name == c.name) {
                c.restored = x.restored;
            }
        }
    }
    drop(raised);
    record.interrupted = interrupt::interrupted();
    render::write_all(&record, &dir)?;
    drop(env);
    drop(harness);
    println!("{}", dir.join("report.html").display());
    Ok(if record.interrupted {
        EXIT_INTERRUPTED
    } else {
        0
    })
}

/// Re-renders a saved density directory (`vclab report DIR`).
pub fn rerender(dir: &Path) -> anyhow::Result<()> {
    let r = DensityRecord::load(dir)?;
    render::write_all(&r, dir)?;
    Ok(())
}
