//! `vclab compare` and `vclab report`: run the same workload on the bare host,
//! in containers and in micro-VMs, and report what each costs.
//!
//! Three separate steps, as in hyperfine: **measure** (`runner`, `measure`,
//! `runtimes`) fills raw [`record::Sample`]s; **summarise** (`summarise`,
//! `stats`, `outliers`) computes medians, spreads, overheads and ratios;
//! **render** (`export`, `plots`, `html`, `course`) writes files from the saved
//! record. The exports are rewritten after every case, so a crash keeps what
//! was measured, and `vclab report` re-renders a saved directory.

pub mod course;
pub mod export;
pub mod html;
pub mod measure;
pub mod oci;
pub mod outliers;
pub mod plots;
pub mod record;
pub mod render;
pub mod runner;
pub mod runtimes;
pub mod stats;
pub mod summarise;
pub mod table;
pub mod vm_report;
pub mod workload_line;

use std::path::PathBuf;

use anyhow::Context;
use vclab_vmm::cache::Manifest;

use crate::host;

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
}

/// Arguments of `vclab report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// A results directory written by `vclab compare`.
    pub dir: PathBuf,
}

/// Exit code when a run's checksum disagreed with bare's.
const EXIT_MISMATCH: i32 = 3;

/// The workloads every runtime runs: each kernel with its default parameters.
pub fn default_workloads() -> Vec<record::WorkloadSpec> {
    vclab_workload::Kernel::ALL
        .iter()
        .map(|k| record::WorkloadSpec {
            kernel: k.name().to_string(),
            size: k.default_size(),
            iterations: k.default_iterations(),
            seed: vclab_workload::params::DEFAULT_SEED,
        })
        .collect()
}

/// `YYYY-MM-DDTHH:MM:SSZ` for `secs` since the epoch (civil-from-days).
pub fn utc_timestamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
    let env = runtimes::Env {
        workload: runtimes::find_workload(&manifest, &vclab),
        vclab,
        manifest,
        host: host.clone(),
        tsc_khz: runtimes::host_tsc_khz(),
        linux,
        linux_reference: args.linux,
    };
    let mut rows = runtimes::rows(&env);
    if !args.only.is_empty() {
        let unknown: Vec<&String> = args
            .only
            .iter()
            .filter(|o| !rows.iter().any(|r| r.name == o.as_str()))
            .collect();
        if !unknown.is_empty() {
            anyhow::bail!(
                "unknown runtime(s) in --only: {unknown:?} (known: {})",
                rows.iter().map(|r| r.name).collect::<Vec<_>>().join(", ")
            );
        }
        rows.retain(|r| args.only.iter().any(|o| o == r.name));
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
            workloads: default_workloads(),
        },
        artifacts,
        cases: Vec::new(),
    };
    eprintln!("vclab compare: writing {}", dir.display());
    runner::execute(&env, &rows, &mut results, &dir)?;
    summarise::summarise(&mut results);
    render::write_report(&results, &dir)?;
    println!("{}", dir.join("report.html").display());
    let mismatch = results.cases.iter().any(|c| {
        c.reason
            .as_deref()
            .is_some_and(|r| r.starts_with("CHECKSUM MISMATCH"))
    });
    Ok(if mismatch { EXIT_MISMATCH } else { 0 })
}

/// Runs `vclab report`: re-summarises `results.json` and rewrites the exports,
/// plots and report.html next to it.
pub fn report(args: ReportArgs) -> anyhow::Result<i32> {
    let path = args.dir.join("results.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {} (give a directory written by vclab compare)",
            path.display()
        )
    })?;
    let mut results: record::Results = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a vclab results file", path.display()))?;
    summarise::summarise(&mut results);
    render::write_report(&results, &args.dir)?;
    println!("{}", args.dir.join("report.html").display());
    Ok(0)
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
        assert_eq!(names, ["cpu", "mem-bw", "mem-lat"]);
    }
}
