//! The measure step: warm-up, then rounds in which every runnable row runs
//! once (A B C A B C), for each workload kernel; with `--precision`, more
//! rounds until every ratio's CI is narrow enough or the time is up; then one
//! boot per Linux guest row. Every run's checksum is held against bare's.
//! The exports are rewritten after every round, so a crash keeps what was
//! measured.

use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use vclab_contract::{Failure, FailureReport};

use super::record::{Case, Results, Status, WorkloadSpec};
use super::render;
use super::summarise::{summarise, widest_ratio_half_width};
use super::table;
use crate::runtime::{fail, Env, Runtime, RuntimeId};

/// Kernel name of a Linux guest's boot-only case.
pub const BOOT: &str = "boot";
/// Marker of a Linux guest timed to its init handoff.
pub const INIT_HANDOFF: &str =
    "time to the Linux kernel's init handoff (kvm_pvm: guest userspace cannot run)";
/// Why QEMU's Linux row has only a boot line.
const BOOT_ONLY: &str = "a boot-time reference only (see this row's 'boot' line): QEMU has no lab control device to time the workload by";
/// Why Linux rows on kvm_pvm cannot run the workload itself.
const NO_USERSPACE: &str = "guest userspace cannot make system calls on kvm_pvm, so the workload cannot run in a Linux guest here (see this row's 'boot' line)";
/// The most rounds `--precision` adds to one kernel.
const MAX_ROUNDS: u32 = 400;

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
    vec![22, 8, 30, 9, 22, 30, 13, 16, 15, 40, 0]
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

fn new_case(rt: &dyn Runtime, env: &Env, kernel: &str) -> Case {
    let skip = rt.unavailable(env);
    Case {
        runtime: rt.id(),
        kernel: kernel.to_string(),
        status: if skip.is_some() {
            Status::Skipped
        } else {
            Status::Measured
        },
        reason: skip,
        start_marker: None,
        samples: Vec::new(),
        summary: None,
        failure: None,
    }
}

/// Lays out every case (row order within each kernel), skipped ones with their reason.
pub fn plan_cases(rows: &[Box<dyn Runtime>], env: &Env, specs: &[WorkloadSpec]) -> Vec<Case> {
    let mut cases = Vec::new();
    for spec in specs {
        for rt in rows {
            let mut c = new_case(rt.as_ref(), env, &spec.kernel);
            if rt.boot_only(env) {
                c.status = Status::Skipped;
                c.reason = Some(if rt.id() == RuntimeId::QemuMicrovmLinux {
                    BOOT_ONLY.to_string()
                } else {
                    NO_USERSPACE.to_string()
                });
            }
            let needs_disk = vclab_contract::params::Kernel::from_name(&spec.kernel)
                .is_some_and(|k| k.needs_disk());
            if needs_disk && c.status == Status::Measured {
                if let Some(why) = rt.io_skip(env) {
                    c.status = Status::Skipped;
                    c.reason = Some(why);
                }
            }
            cases.push(c);
        }
    }
    for rt in rows.iter().filter(|r| r.boot_only(env)) {
        let mut c = new_case(rt.as_ref(), env, BOOT);
        c.start_marker = Some(INIT_HANDOFF.to_string());
        cases.push(c);
    }
    cases
}

fn find_case<'a>(cases: &'a mut [Case], rt: RuntimeId, kernel: &str) -> Option<&'a mut Case> {
    cases
        .iter_mut()
        .find(|c| c.runtime == rt && c.kernel == kernel)
}

/// Marks `case` failed with `f`.
fn set_failed(case: &mut Case, f: FailureReport) {
    case.status = Status::Failed;
    case.reason = Some(f.to_string());
    case.failure = Some(f);
}

/// One interleaved round of `spec` over `runnable`; `round` is the measured
/// round's index, `None` for a warm-up.
#[allow(clippy::too_many_arguments)]
fn one_round(
    env: &Env,
    runnable: &[&dyn Runtime],
    spec: &WorkloadSpec,
    round: Option<u32>,
    results: &mut Results,
    reference: &mut Option<(String, RuntimeId)>,
    seq: &mut u64,
    progress: &Progress,
) {
    for rt in runnable {
        let id = rt.id();
        let Some(case) = find_case(&mut results.cases, id, &spec.kernel) else {
            continue;
        };
        if case.status != Status::Measured {
            progress.bar.inc(1);
            continue;
        }
        progress.bar.set_message(format!("{id} {}", spec.kernel));
        *seq += 1;
        match rt.measure(env, spec, *seq) {
            Ok(mut sample) => {
                match (&*reference, sample.checksum.clone()) {
                    (None, Some(s)) => *reference = Some((s, id)),
                    (Some((r, from)), Some(s)) if *r != s => {
                        let f = fail(
                            Failure::ChecksumMismatch,
                            format!("{id} {} gave {s}, {from} gave {r}", spec.kernel),
                        );
                        progress.line(&f.to_string());
                        set_failed(case, f);
                    }
                    _ => {}
                }
                if let (Some(r), Status::Measured) = (round, case.status) {
                    sample.round = Some(r);
                    case.samples.push(sample);
                }
            }
            Err(f) => {
                progress.line(&format!("{id} {}: {f}", spec.kernel));
                set_failed(case, f);
            }
        }
        progress.bar.inc(1);
    }
}

/// Whether every ratio of `kernel` is within `target` (relative CI half-width).
fn precise_enough(results: &Results, kernel: &str, target: f64) -> bool {
    widest_ratio_half_width(results)
        .iter()
        .filter(|(_, k, _)| k == kernel)
        .all(|(_, _, w)| *w <= target)
}

/// The measure step for all `rows` and `specs`, saving into `dir` as it goes.
pub fn execute(
    env: &Env,
    rows: &[Box<dyn Runtime>],
    results: &mut Results,
    dir: &Path,
) -> Result<(), RunnerError> {
    let specs = results.config.workloads.clone();
    let (warmup, runs) = (results.config.warmup, results.config.runs);
    results.cases = plan_cases(rows, env, &specs);
    let runnable: Vec<&dyn Runtime> = rows
        .iter()
        .filter(|r| r.unavailable(env).is_none() && !r.boot_only(env))
        .map(|r| r.as_ref())
        .collect();
    let boots: Vec<&dyn Runtime> = rows
        .iter()
        .filter(|r| r.unavailable(env).is_none() && r.boot_only(env))
        .map(|r| r.as_ref())
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
    let started = Instant::now();
    let budget = results.config.max_time_s.map(Duration::from_secs);
    let mut seq = 0u64;
    for (k, spec) in specs.iter().enumerate() {
        // The checksum every run must give: bare's (it runs first in each round).
        let mut reference: Option<(String, RuntimeId)> = None;
        for round in 0..warmup + runs {
            let measured = round.checked_sub(warmup);
            one_round(
                env,
                &runnable,
                spec,
                measured,
                results,
                &mut reference,
                &mut seq,
                &progress,
            );
            if measured.is_some() {
                summarise(results);
                render::write_exports(results, dir)?;
            }
        }
        if let Some(target) = results.config.precision {
            // Each kernel may use its share of --max-time (what earlier kernels left, split evenly).
            let left = specs.len() - k;
            let kernel_deadline = budget.map(|b| {
                let remaining = b.saturating_sub(started.elapsed());
                Instant::now() + remaining / left as u32
            });
            let mut round = runs;
            while !precise_enough(results, &spec.kernel, target)
                && round < MAX_ROUNDS
                && kernel_deadline.is_none_or(|d| Instant::now() < d)
            {
                progress.bar.inc_length(runnable.len() as u64);
                one_round(
                    env,
                    &runnable,
                    spec,
                    Some(round),
                    results,
                    &mut reference,
                    &mut seq,
                    &progress,
                );
                summarise(results);
                render::write_exports(results, dir)?;
                round += 1;
            }
            let pct = target * 100.0;
            for (rt, _, w) in widest_ratio_half_width(results)
                .iter()
                .filter(|(_, kk, _)| *kk == spec.kernel)
            {
                let verdict = if *w <= target {
                    "reached"
                } else {
                    "NOT reached"
                };
                progress.line(&format!(
                    "precision {pct:.1} % {verdict}: {rt} {} widest ratio CI ±{:.1} % after {round} rounds",
                    spec.kernel,
                    w * 100.0
                ));
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
        let id = rt.id();
        progress
            .bar
            .set_message(format!("{id} booting (minutes on kvm_pvm)"));
        seq += 1;
        let spec = specs.first().cloned().unwrap_or(WorkloadSpec {
            kernel: "cpu".into(),
            size: 4096,
            iterations: 1,
            seed: 1,
        });
        let outcome = rt.measure(env, &spec, seq);
        if let Some(case) = find_case(&mut results.cases, id, BOOT) {
            match outcome {
                Ok(sample) => case.samples.push(sample),
                Err(f) => set_failed(case, f),
            }
            summarise(results);
            render::write_exports(results, dir)?;
        }
        if let Some(c) = results.case(id, BOOT) {
            if c.status != Status::Skipped {
                progress.line(&format_row(&table::cells(c)));
            }
        }
        progress.bar.inc(1);
    }
    for (rt, kernels, why) in table::skipped_lines(results) {
        progress.line(&format!("not run: {rt} ({kernels}): {why}"));
    }
    let io_rows = super::io_table::rows(results);
    if !io_rows.is_empty() {
        progress.line(&format!("io kernel ({}):", super::io_table::NOTE));
        progress.line(&super::io_table::HEADERS.join(" | "));
        for row in io_rows {
            progress.line(&row.join(" | "));
        }
    }
    progress.bar.finish_and_clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::course::course_table;
    use crate::compare::record::{RunConfig, FORMAT_VERSION};
    use crate::host::HostRecord;
    use crate::runtime::mock::{MockRuntime, Script};

    fn results(runs: u32) -> Results {
        Results {
            version: FORMAT_VERSION,
            started_utc: "2026-12-01T00:00:00Z".into(),
            host: HostRecord::default(),
            config: RunConfig {
                warmup: 1,
                runs,
                workloads: vec![WorkloadSpec {
                    kernel: "cpu".into(),
                    size: 4096,
                    iterations: 1,
                    seed: 1,
                }],
                ..RunConfig::default()
            },
            artifacts: vec![],
            cases: vec![],
            isolation: None,
            vm_snapshot: None,
        }
    }

    fn run(rows: Vec<Box<dyn Runtime>>, r: &mut Results) {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::bare("/nonexistent/vclab".into());
        execute(&env, &rows, r, dir.path()).unwrap();
        assert!(dir.path().join("results.json").is_file());
    }

    #[test]
    fn rounds_interleave_and_ratios_pair_them() {
        let mut r = results(6);
        run(
            vec![
                MockRuntime::ok(RuntimeId::Bare, 1.0, 100.0),
                MockRuntime::ok(RuntimeId::Container, 4.0, 98.0),
                MockRuntime::ok(RuntimeId::Crun, 8.0, 100.0),
                MockRuntime::unavailable(RuntimeId::Runc, "runc is not installed"),
            ],
            &mut r,
        );
        let c = r.case(RuntimeId::Container, "cpu").unwrap();
        assert_eq!(c.status, Status::Measured);
        let rounds: Vec<Option<u32>> = c.samples.iter().map(|s| s.round).collect();
        assert_eq!(rounds, (0..6).map(Some).collect::<Vec<_>>());
        let s = c.summary.as_ref().unwrap();
        let score = s.score_vs_bare.unwrap();
        assert!(score.paired, "{score:?}");
        assert!((score.value - 0.98).abs() < 1e-9, "{score:?}");
        assert_eq!(s.peer, Some(RuntimeId::Crun));
        assert!((s.start_vs_peer.unwrap().value - 0.5).abs() < 1e-9);
        let runc = r.case(RuntimeId::Runc, "cpu").unwrap();
        assert_eq!(runc.status, Status::Skipped);
        assert_eq!(runc.reason.as_deref(), Some("runc is not installed"));
        // The course table quotes the measured rows.
        let course = course_table(&r);
        let start = course.iter().find(|l| l.topic == "start time").unwrap();
        assert!(
            start.measured.contains("container 4."),
            "{}",
            start.measured
        );
    }

    #[test]
    fn a_failing_row_is_failed_with_its_kind_and_others_go_on() {
        let mut r = results(4);
        run(
            vec![
                MockRuntime::ok(RuntimeId::Bare, 1.0, 100.0),
                MockRuntime::scripted(RuntimeId::Container, Script::FailFrom(2, Failure::Timeout)),
                MockRuntime::scripted(
                    RuntimeId::Crun,
                    Script::Ok {
                        start_ms: 8.0,
                        score: 100.0,
                        checksum: "cd",
                    },
                ),
                MockRuntime::ok(RuntimeId::Runc, 9.0, 100.0),
            ],
            &mut r,
        );
        let c = r.case(RuntimeId::Container, "cpu").unwrap();
        assert_eq!(c.status, Status::Failed);
        assert_eq!(c.failure.as_ref().unwrap().kind, Failure::Timeout);
        assert!(c.reason.as_deref().unwrap().starts_with("timeout:"));
        let crun = r.case(RuntimeId::Crun, "cpu").unwrap();
        assert_eq!(
            crun.failure.as_ref().unwrap().kind,
            Failure::ChecksumMismatch
        );
        let runc = r.case(RuntimeId::Runc, "cpu").unwrap();
        assert_eq!(runc.status, Status::Measured);
        assert_eq!(runc.samples.len(), 4);
    }

    #[test]
    fn io_cases_are_skipped_with_the_rows_reason() {
        let mut r = results(1);
        r.config.workloads.push(WorkloadSpec {
            kernel: "io".into(),
            size: 1 << 20,
            iterations: 4,
            seed: 1,
        });
        run(
            vec![
                MockRuntime::ok(RuntimeId::Bare, 1.0, 100.0),
                MockRuntime::ok(RuntimeId::Container, 4.0, 98.0),
            ],
            &mut r,
        );
        // The mocks attach no disk: their io cases are skipped, their cpu cases measured.
        for rt in [RuntimeId::Bare, RuntimeId::Container] {
            let io = r.case(rt, "io").unwrap();
            assert_eq!(io.status, Status::Skipped);
            assert!(
                io.reason.as_deref().unwrap().contains("disk"),
                "{:?}",
                io.reason
            );
            assert!(io.samples.is_empty());
            assert_eq!(r.case(rt, "cpu").unwrap().status, Status::Measured);
        }
    }

    #[test]
    fn precision_adds_rounds_until_the_ratios_are_narrow() {
        let mut r = results(3);
        r.config.precision = Some(0.05);
        r.config.max_time_s = Some(60);
        run(
            vec![
                MockRuntime::ok(RuntimeId::Bare, 1.0, 100.0),
                MockRuntime::ok(RuntimeId::Container, 4.0, 98.0),
            ],
            &mut r,
        );
        let c = r.case(RuntimeId::Container, "cpu").unwrap();
        // Fewer than PRECISION_MIN_N pairs never count as precise: rounds were added.
        assert!(c.samples.len() >= 5, "{}", c.samples.len());
        assert!(precise_enough(&r, "cpu", 0.05));
    }
}
