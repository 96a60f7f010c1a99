//! The measure step: warm-up, then n rounds in which every runnable row runs
//! once (A B C A B C), for each workload kernel; then one boot per Linux
//! guest row. Every run's checksum is held against bare's. The exports are
//! rewritten after every round, so a crash keeps what was measured.

use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};

use super::measure;
use super::record::{Case, Results, Sample, Status, WorkloadSpec};
use super::render;
use super::runtimes::{Env, Kind, Runtime, INIT_HANDOFF};
use super::summarise::summarise;
use super::table;

/// Kernel name of a Linux guest's boot-only case.
pub const BOOT: &str = "boot";
/// Why QEMU's Linux row has only a boot line.
const BOOT_ONLY: &str = "a boot-time reference only (see this row's 'boot' line): QEMU has no lab control device to time the workload by";

/// Why Linux rows on kvm_pvm cannot run the workload itself.
const NO_USERSPACE: &str = "guest userspace cannot make system calls on kvm_pvm, so the workload cannot run in a Linux guest here (see this row's 'boot' line)";

/// Errors of the measure step.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// Writing the exports failed.
    #[error("cannot save the results: {0}")]
    Save(#[from] render::RenderError),
}

/// Progress output: a bar with ETA, and finished lines printed above it.
struct Progress {
    bar: ProgressBar,
}

impl Progress {
    fn new(total: u64) -> Self {
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs, ETA {eta} {msg}",
        ) {
            bar.set_style(style);
        }
        Progress { bar }
    }

    fn line(&self, text: &str) {
        if self.bar.is_hidden() {
            // Not a terminal: indicatif would drop the line with the bar.
            eprintln!("{text}");
        } else {
            self.bar.println(text);
        }
    }
}

fn widths() -> Vec<usize> {
    vec![18, 8, 24, 9, 12, 13, 12, 16, 15, 26, 0]
}

fn format_row(cells: &[String]) -> String {
    cells
        .iter()
        .zip(widths())
        .map(|(c, w)| format!("{c:<w$}"))
        .collect::<Vec<_>>()
        .join(" ")
        .trim_end()
        .to_string()
}

fn new_case(rt: &Runtime, kernel: &str) -> Case {
    Case {
        runtime: rt.name.to_string(),
        kernel: kernel.to_string(),
        status: if rt.skip.is_some() {
            Status::Skipped
        } else {
            Status::Measured
        },
        reason: rt.skip.clone(),
        start_marker: None,
        samples: Vec::new(),
        summary: None,
    }
}

/// Lays out every case (row order within each kernel), skipped ones with their reason.
pub fn plan_cases(rows: &[Runtime], specs: &[WorkloadSpec]) -> Vec<Case> {
    let mut cases = Vec::new();
    for spec in specs {
        for rt in rows {
            let mut c = new_case(rt, &spec.kernel);
            if rt.linux_boot {
                c.status = Status::Skipped;
                c.reason = Some(if rt.kind == Kind::QemuMicrovmLinux {
                    BOOT_ONLY.to_string()
                } else {
                    NO_USERSPACE.to_string()
                });
            }
            cases.push(c);
        }
    }
    for rt in rows.iter().filter(|r| r.linux_boot) {
        let mut c = new_case(rt, BOOT);
        c.start_marker = Some(INIT_HANDOFF.to_string());
        cases.push(c);
    }
    cases
}

fn find_case<'a>(cases: &'a mut [Case], rt: &str, kernel: &str) -> Option<&'a mut Case> {
    cases
        .iter_mut()
        .find(|c| c.runtime == rt && c.kernel == kernel)
}

/// Runs one launch of `rt` and turns it into a sample (or the reason it failed).
fn run_once(env: &Env, rt: &Runtime, spec: &WorkloadSpec, seq: u64) -> Result<Sample, String> {
    let launch = rt.launch(env, spec, seq)?;
    let observed = measure::run(
        &launch.argv,
        launch.timeout,
        launch.private_mount_ns,
        launch.stop_on_line,
    )
    .map_err(|e| e.to_string())?;
    drop(launch.bundle);
    rt.interpret(&observed, spec)
}

/// The measure step for all `rows` and `specs`, saving into `dir` as it goes.
pub fn execute(
    env: &Env,
    rows: &[Runtime],
    results: &mut Results,
    dir: &Path,
) -> Result<(), RunnerError> {
    let specs = results.config.workloads.clone();
    let (warmup, runs) = (results.config.warmup, results.config.runs);
    results.cases = plan_cases(rows, &specs);
    let runnable: Vec<&Runtime> = rows
        .iter()
        .filter(|r| r.skip.is_none() && !r.linux_boot)
        .collect();
    let boots: Vec<&Runtime> = rows
        .iter()
        .filter(|r| r.skip.is_none() && r.linux_boot)
        .collect();
    let total =
        (specs.len() * runnable.len()) as u64 * u64::from(warmup + runs) + boots.len() as u64;
    let progress = Progress::new(total);
    progress.line(&format_row(
        &table::HEADERS
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>(),
    ));
    render::write_exports(results, dir)?;
    let mut seq = 0u64;
    for spec in &specs {
        // The checksum every run must give: bare's (it runs first in each round).
        let mut reference: Option<(String, &str)> = None;
        for round in 0..warmup + runs {
            let measured = round >= warmup;
            for rt in &runnable {
                let Some(case) = find_case(&mut results.cases, rt.name, &spec.kernel) else {
                    continue;
                };
                if case.status != Status::Measured {
                    progress.bar.inc(1);
                    continue;
                }
                progress
                    .bar
                    .set_message(format!("{} {}", rt.name, spec.kernel));
                seq += 1;
                match run_once(env, rt, spec, seq) {
                    Ok(sample) => {
                        let sum = sample.checksum.clone();
                        match (&reference, sum) {
                            (None, Some(s)) => reference = Some((s, rt.name)),
                            (Some((r, from)), Some(s)) if *r != s => {
                                let msg = format!(
                                    "CHECKSUM MISMATCH: {} {} gave {s}, {from} gave {r}",
                                    rt.name, spec.kernel
                                );
                                progress.line(&msg);
                                case.status = Status::Failed;
                                case.reason = Some(msg);
                            }
                            _ => {}
                        }
                        if measured && case.status == Status::Measured {
                            case.samples.push(sample);
                        }
                    }
                    Err(reason) => {
                        progress.line(&format!("{} {}: FAILED: {reason}", rt.name, spec.kernel));
                        case.status = Status::Failed;
                        case.reason = Some(reason);
                    }
                }
                progress.bar.inc(1);
            }
            if measured {
                summarise(results);
                render::write_exports(results, dir)?;
            }
        }
        for c in results
            .cases
            .iter()
            .filter(|c| c.kernel == spec.kernel && c.status != Status::Skipped)
        {
            progress.line(&format_row(&table::cells(c)));
        }
    }
    for rt in &boots {
        progress
            .bar
            .set_message(format!("{} booting (minutes on kvm_pvm)", rt.name));
        seq += 1;
        let spec = specs.first().cloned().unwrap_or(WorkloadSpec {
            kernel: "cpu".into(),
            size: 4096,
            iterations: 1,
            seed: 1,
        });
        let outcome = run_once(env, rt, &spec, seq);
        if let Some(case) = find_case(&mut results.cases, rt.name, BOOT) {
            match outcome {
                Ok(sample) => case.samples.push(sample),
                Err(reason) => {
                    case.status = Status::Failed;
                    case.reason = Some(reason);
                }
            }
            summarise(results);
            render::write_exports(results, dir)?;
        }
        if let Some(c) = results.case(rt.name, BOOT) {
            if c.status != Status::Skipped {
                progress.line(&format_row(&table::cells(c)));
            }
        }
        progress.bar.inc(1);
    }
    for (rt, kernels, why) in table::skipped_lines(results) {
        progress.line(&format!("not run: {rt} ({kernels}): {why}"));
    }
    progress.bar.finish_and_clear();
    Ok(())
}
