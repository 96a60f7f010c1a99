//! `vclab compare` and `vclab report`: run the same workload on the bare host,
//! in containers and in micro-VMs, and report what each costs.
//!
//! Three separate steps, as in hyperfine: **measure** (`runner`, over the
//! runtime registry in [`crate::runtime`] and the [`crate::spawn`] handle) fills raw [`record::Sample`]s; **summarise** (`summarise`,
//! `stats`, `outliers`) computes medians, spreads, overheads and ratios;
//! **render** (`export`, `plots`, `html`, `course`) writes files from the saved
//! record. The exports are rewritten after every case, so a crash keeps what
//! was measured, and `vclab report` re-renders a saved directory.

pub mod course;
pub mod export;
pub mod html;
pub mod io_image;
pub mod io_table;
pub mod isolation;
pub mod oci;
pub mod outliers;
pub mod plots;
pub mod record;
pub mod render;
pub mod runner;
pub mod stats;
pub mod summarise;
pub mod table;
pub mod vm_report;
pub mod vm_snapshot;
pub mod workload_line;

use std::path::PathBuf;

use std::sync::Arc;

use anyhow::Context;
use vclab_contract::Failure;
use vclab_vmm::cache::Manifest;

use crate::host;
use crate::runtime;
use crate::spawn::guard::Harness;

/// Arguments of `vclab compare`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A short run (under a minute here): fewer runs, and Linux guest rows skipped unless --linux.
    #[arg(long)]
    pub quick: bool,
    /// Boot the Linux guest rows even with --quick, and on kvm_pvm also QEMU's Linux reference boot
    /// (each Linux boot takes two to four minutes on kvm_pvm, about a second on hardware KVM).
    #[arg(long)]
    pub linux: bool,
    /// Measured runs per case (default 15, 3 with --quick).
    #[arg(long, value_name = "N")]
    pub runs: Option<u32>,
    /// Unmeasured warm-up runs per case (default 1).
    #[arg(long, value_name = "N")]
    pub warmup: Option<u32>,
    /// Results directory (default: results/<timestamp> under the repository).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Only these runtimes (comma-separated row names, e.g. bare,container).
    #[arg(long, value_delimiter = ',', value_name = "ROWS")]
    pub only: Vec<String>,
    /// A Firecracker binary, to add the `firecracker` peer row.
    #[arg(long, value_name = "PATH")]
    pub firecracker: Option<PathBuf>,
    /// A cloud-hypervisor binary, to add the `cloud-hypervisor` peer row.
    #[arg(long, value_name = "PATH")]
    pub cloud_hypervisor: Option<PathBuf>,
    /// Keep adding interleaved rounds until the 95 % CI half-width of every
    /// ratio (score vs bare, start vs peer) is within this, e.g. 2% (or --max-time runs out).
    #[arg(long, value_name = "PCT", value_parser = parse_percent)]
    pub precision: Option<f64>,
    /// With --precision: the most time the measured rounds may take, seconds (default 600).
    #[arg(long, value_name = "SECS")]
    pub max_time: Option<u64>,
    /// Pin the harness to one CPU and every instance to another (sched_setaffinity).
    #[arg(long)]
    pub pin: bool,
    /// The `vclab density` report whose marginal costs the course table's "weight" line quotes
    /// (default: the newest `results/*-density` directory, if any).
    #[arg(long, value_name = "DIR")]
    pub density: Option<PathBuf>,
    /// Run each workload kernel this many times longer (its default iterations × N): longer runs
    /// average out short disturbances of the host.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub scale: u64,
    /// Skip the isolation probe (syscall reach, host visibility and escape checks in the bare,
    /// container, crun and runc rows; a few seconds, once per run).
    #[arg(long)]
    pub no_isolation: bool,
    /// Where the io kernel's disk image (`vclab-io-<pid>.img`, removed at the end) is written:
    /// a disk-backed file system, not tmpfs, which refuses the bare row's O_DIRECT.
    #[arg(long, value_name = "DIR", default_value = io_image::DEFAULT_DIR)]
    pub io_dir: PathBuf,
}

/// `2%`, `2` or `0.5%` → 0.02, 0.02, 0.005.
fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim_end_matches('%')
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a percentage (say e.g. 2%)"))?;
    if !(v > 0.0 && v < 100.0) {
        return Err(format!(
            "'{s}': give a percentage between 0 and 100, e.g. 2%"
        ));
    }
    Ok(v / 100.0)
}

/// The workloads every runtime runs: each kernel with its default parameters (the io kernel
/// only on the rows that can attach its disk image).
pub fn default_workloads() -> Vec<record::WorkloadSpec> {
    scaled_workloads(1)
}

/// Each kernel with its default size and seed and `scale` × its default iterations.
pub fn scaled_workloads(scale: u64) -> Vec<record::WorkloadSpec> {
    vclab_workload::Kernel::EVERY
        .iter()
        .map(|k| record::WorkloadSpec {
            kernel: k.name().to_string(),
            size: k.default_size(),
            iterations: k.default_iterations().saturating_mul(scale.max(1)),
            seed: vclab_workload::params::DEFAULT_SEED,
        })
        .collect()
}

/// `YYYY-MM-DDTHH:MM:SSZ` for `secs` since the epoch.
pub fn utc_timestamp(secs: u64) -> String {
    let (year, month, day, h, m, s) = vclab_container::state::civil_utc(secs);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

/// The repository's `results/` directory (the crate's parent), else `./results`.
fn default_results_root() -> PathBuf {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if repo.join("Cargo.toml").is_file() {
        repo.canonicalize().unwrap_or(repo).join("results")
    } else {
        PathBuf::from("results")
    }
}

/// Runs `vclab compare`: measure, summarise, render.
pub fn run(args: Args) -> anyhow::Result<i32> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let started_utc = utc_timestamp(now);
    check_args(&args)?;
    let density = density_quote(args.density.as_deref())?;
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| default_results_root().join(started_utc.replace([':', '-'], "")));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the results directory {}", dir.display()))?;

    let host = host::HostRecord::detect(&[
        ("firecracker", args.firecracker.as_deref()),
        ("cloud-hypervisor", args.cloud_hypervisor.as_deref()),
    ]);
    let manifest = Manifest::load(&vclab_vmm::cache::dir()).map_err(|e| e.to_string());
    let vclab = std::env::current_exe().context("cannot find the vclab binary itself")?;
    let linux = args.linux || !args.quick;
    let mut rows = runtime::registry();
    if !args.only.is_empty() {
        rows.retain(|r| args.only.iter().any(|o| o == r.id().name()));
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let instance_cpu = (args.pin && cpus > 1).then(|| {
        pin_self(0);
        1
    });
    let harness =
        Arc::new(Harness::start(Some(&vclab)).context("cannot set up the harness state")?);
    let workloads = scaled_workloads(args.scale);
    let io_image = io_disk_image(&args.io_dir, &workloads, &harness)?;
    let env = runtime::Env {
        workload: runtime::env::find_workload(&manifest, &vclab),
        vclab,
        manifest,
        host: host.clone(),
        tsc_khz: runtime::env::host_tsc_khz(),
        linux,
        linux_reference: args.linux,
        instance_cpu,
        harness: Some(harness),
        io_disk: io_image.as_ref().map(|i| i.path().to_path_buf()),
        snapshot: Err("no snapshot was taken for this run".into()),
    };
    let mut env = env;
    let mut vm_snapshot = None;
    let restore_row = rows
        .iter()
        .any(|r| r.id() == runtime::RuntimeId::MicrovmUnikernelRestore);
    if restore_row && env.vm_works().is_ok() && env.artifact("unikernel").is_ok() {
        let dir = vm_snapshot::dir_for(&env);
        match vm_snapshot::take(&env, &dir) {
            Ok(facts) => {
                env.snapshot = Ok(dir);
                vm_snapshot = Some(facts);
            }
            Err(e) => env.snapshot = Err(e),
        }
    }
    let artifacts = env
        .manifest
        .as_ref()
        .map(|m| {
            m.artifacts
                .iter()
                .map(|(name, a)| record::ArtifactFact {
                    name: name.clone(),
                    size_bytes: a.size,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut results = record::Results {
        version: record::FORMAT_VERSION,
        started_utc,
        host,
        config: record::RunConfig {
            quick: args.quick,
            warmup: args.warmup.unwrap_or(1),
            runs: args.runs.unwrap_or(if args.quick { 3 } else { 15 }).max(1),
            linux,
            workloads,
            precision: args.precision,
            max_time_s: args.precision.map(|_| args.max_time.unwrap_or(600)),
            pinned: instance_cpu.is_some(),
            vm_hugepages: true,
            density,
        },
        artifacts,
        cases: Vec::new(),
        isolation: None,
        vm_snapshot,
    };
    eprintln!("vclab compare: writing {}", dir.display());
    if !args.no_isolation {
        results.isolation = Some(isolation::probe::probe(&env, &rows));
    }
    let noise_start = host::NoiseSnapshot::take();
    runner::execute(&env, &rows, &mut results, &dir)?;
    results.host.noise = Some(host::NoiseSnapshot::take().since(&noise_start));
    eprintln!("{}", results.host.noise_line());
    summarise::summarise(&mut results);
    render::write_report(&results, &dir)?;
    println!("{}", dir.join("report.html").display());
    drop(env);
    drop(io_image);
    let mismatch = results.cases.iter().any(|c| {
        c.failure
            .as_ref()
            .is_some_and(|f| f.kind == Failure::ChecksumMismatch)
    });
    Ok(if mismatch {
        Failure::ChecksumMismatch.exit_code()
    } else {
        0
    })
}

/// The io kernel's disk image for the run, when a workload needs one: in `dir`, recorded with the
/// harness's guard.
fn io_disk_image(
    dir: &std::path::Path,
    workloads: &[record::WorkloadSpec],
    harness: &Arc<Harness>,
) -> anyhow::Result<Option<io_image::IoImage>> {
    let Some(spec) = workloads
        .iter()
        .find(|w| vclab_workload::Kernel::from_name(&w.kernel).is_some_and(|k| k.needs_disk()))
    else {
        return Ok(None);
    };
    if io_image::on_tmpfs(dir) {
        eprintln!(
            "vclab compare: --io-dir {} is a tmpfs: O_DIRECT is refused there, so bare and the \
             containers read it buffered (give a disk-backed directory)",
            dir.display()
        );
    }
    let image = io_image::IoImage::create(dir, spec.size, spec.seed, Some(harness.clone()))?;
    Ok(Some(image))
}

/// Refuses bad arguments before anything is created or started, so that a refused run leaves
/// no results directory behind.
fn check_args(args: &Args) -> anyhow::Result<()> {
    let unknown: Vec<&String> = args
        .only
        .iter()
        .filter(|o| runtime::RuntimeId::from_name(o).is_none())
        .collect();
    if !unknown.is_empty() {
        anyhow::bail!(
            "unknown runtime(s) in --only: {unknown:?}; give row names from: {}",
            runtime::RuntimeId::ALL
                .iter()
                .map(|r| r.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if args.runs == Some(0) {
        anyhow::bail!("--runs 0: give the number of measured runs per case, at least 1");
    }
    if args.max_time == Some(0) {
        anyhow::bail!("--max-time 0: give the seconds the measured rounds may take, at least 1");
    }
    for (flag, path) in [
        ("--firecracker", &args.firecracker),
        ("--cloud-hypervisor", &args.cloud_hypervisor),
    ] {
        if let Some(p) = path.as_deref().filter(|p| !p.is_file()) {
            anyhow::bail!(
                "{flag} {}: no such file; give the path of the {} binary",
                p.display(),
                &flag[2..]
            );
        }
    }
    if !args.io_dir.is_dir() {
        anyhow::bail!(
            "--io-dir {}: not a directory; give an existing directory on a disk-backed file system \
             for the io kernel's image",
            args.io_dir.display()
        );
    }
    if let Some(out) = args.out.as_deref().filter(|o| o.exists() && !o.is_dir()) {
        anyhow::bail!(
            "--out {}: not a directory; give a directory (created if missing)",
            out.display()
        );
    }
    Ok(())
}

/// The density report's line for the course table: from `dir` (an error if
/// it is not one), else from the newest `*-density` directory of the results
/// root (none: no quote).
fn density_quote(dir: Option<&std::path::Path>) -> anyhow::Result<Option<String>> {
    use crate::density::project::weight_line;
    use crate::density::record::DensityRecord;
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => {
            let newest = std::fs::read_dir(default_results_root())
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| DensityRecord::is_density_dir(p))
                .max();
            match newest {
                Some(d) => d,
                None => return Ok(None),
            }
        }
    };
    let record = DensityRecord::load(&dir).with_context(|| {
        format!(
            "{} is not a vclab density report (give a directory written by vclab density)",
            dir.display()
        )
    })?;
    Ok(weight_line(&record).map(|l| format!("{l} ({})", dir.display())))
}

/// Pins this process (the harness) to `cpu`; a failure only loses the pinning.
fn pin_self(cpu: usize) {
    let mut set = nix::sched::CpuSet::new();
    if set.set(cpu).is_ok() {
        let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_timestamps() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_timestamp(1_798_506_245), "2026-12-29T01:04:05Z");
    }

    #[test]
    fn default_workloads_cover_every_kernel() {
        let w = default_workloads();
        let names: Vec<&str> = w.iter().map(|s| s.kernel.as_str()).collect();
        assert_eq!(names, ["cpu", "mem-bw", "mem-lat", "io"]);
    }
}
