//! `vclab report`: re-render one saved results directory, or compare several
//! (one per host, say) in one report. Measures nothing.

use std::path::{Path, PathBuf};

use anyhow::Context;

use vclab_bench::compare::export::hosts::{self, HostRun};
use vclab_bench::compare::record::{LoadError, Results};
use vclab_bench::compare::{render, summarise};
use vclab_bench::density::{self, record::DensityRecord};

/// Arguments of `vclab report`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "With one DIR, its results.csv, results.md, plots and report.html are \
    rewritten in place from its results.json (a version-1 file is read and written back as \
    version 2). With several, nothing in them is changed: one comparison (hosts.md, hosts.csv, \
    report.html) of the same runtime × kernel rows on each host, with each host's record and noise, \
    is written to --out, by default a directory hosts-<DIR1>-vs-<DIR2>… next to the first DIR. \
    A `vclab density` directory (holding density.json) has its CSVs, plots and report.html \
    rewritten from density.json."
)]
pub struct Args {
    /// Results directories written by `vclab compare` (one, or several to compare), or one
    /// written by `vclab density` (its density.json is rendered again).
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Where the comparison of several directories is written (created if missing;
    /// default: hosts-<DIR1>-vs-<DIR2>… beside DIR1). Only with two or more DIRs.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// The default directory of a comparison: `hosts-<a>-vs-<b>…` beside the first.
fn default_out(dirs: &[PathBuf], labels: &[String]) -> PathBuf {
    let first = dirs[0].canonicalize().unwrap_or_else(|_| dirs[0].clone());
    let parent = first.parent().unwrap_or(Path::new("."));
    let name: String = labels
        .iter()
        .map(|l| l.replace(['/', '#'], "_"))
        .collect::<Vec<_>>()
        .join("-vs-");
    parent.join(format!("hosts-{name}"))
}

/// What a results directory must be, said when it is not.
const GIVE_DIR: &str = "give a directory written by `vclab compare` or `vclab density`";

/// Refuses a path that cannot be a results directory before anything is read or written.
fn check_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        anyhow::bail!(
            "results directory {} does not exist: {GIVE_DIR}",
            dir.display()
        );
    }
    if !dir.is_dir() {
        anyhow::bail!(
            "{} is not a directory: give the results directory (holding results.json), not a file in it",
            dir.display()
        );
    }
    for name in ["results.json", "density.json"] {
        let file = dir.join(name);
        // A FIFO or a directory in its place would block the read or fail obscurely.
        if file.exists() && !file.is_file() {
            anyhow::bail!("{} is not a regular file: {GIVE_DIR}", file.display());
        }
    }
    if !dir.join("results.json").exists() && !DensityRecord::is_density_dir(dir) {
        anyhow::bail!(
            "{} holds neither results.json nor density.json: {GIVE_DIR}",
            dir.display()
        );
    }
    Ok(())
}

/// `DIR/results.json`, or an error that says what to give instead.
fn load(dir: &Path) -> anyhow::Result<Results> {
    check_dir(dir)?;
    Results::load(dir).map_err(|e| match e {
        LoadError::Parse { .. } => {
            anyhow::anyhow!("{e}; {GIVE_DIR}, or run `vclab compare` again")
        }
        e => e.into(),
    })
}

/// Runs `vclab report`.
pub fn run(args: Args) -> anyhow::Result<i32> {
    let [dir] = args.dirs.as_slice() else {
        return compare_dirs(&args.dirs, args.out.as_deref());
    };
    check_dir(dir)?;
    if DensityRecord::is_density_dir(dir) {
        if args.out.is_some() {
            anyhow::bail!("--out is for comparing results directories; a density directory is re-rendered in place");
        }
        // Read first, so that an unreadable record is said as such (with what to give).
        DensityRecord::load(dir).map_err(|e| anyhow::anyhow!("{e}; {GIVE_DIR}"))?;
        density::rerender(dir)?;
        println!("{}", dir.join("report.html").display());
        return Ok(0);
    }
    if args.out.is_some() {
        anyhow::bail!(
            "--out is for comparing two or more results directories; one directory is re-rendered in place"
        );
    }
    let mut results = load(dir)?;
    summarise::summarise(&mut results);
    render::write_report(&results, dir)?;
    println!("{}", dir.join("report.html").display());
    Ok(0)
}

fn compare_dirs(dirs: &[PathBuf], out: Option<&Path>) -> anyhow::Result<i32> {
    let labels = hosts::labels(dirs);
    let mut runs = Vec::with_capacity(dirs.len());
    for (dir, label) in dirs.iter().zip(&labels) {
        let mut results = load(dir)?;
        summarise::summarise(&mut results);
        runs.push(HostRun {
            label: label.clone(),
            dir: dir.display().to_string(),
            results,
        });
    }
    let out = out.map_or_else(|| default_out(dirs, &labels), Path::to_path_buf);
    if out.exists() && !out.is_dir() {
        anyhow::bail!(
            "--out {}: not a directory; give a directory (created if missing)",
            out.display()
        );
    }
    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create the report directory {}", out.display()))?;
    render::write_host_comparison(&runs, &out)?;
    println!("{}", out.join(hosts::HTML_FILE).display());
    Ok(0)
}
