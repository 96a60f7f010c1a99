//! One runtime's ramp: idle instances launched one step of K at a time,
//! measured after each step, until `--max`, the memory budget, or the first
//! failure (classified by its cause); then every instance is torn down and
//! the host checked for leftovers.
//!
//! Instances are launched from the calling thread (PR_SET_PDEATHSIG follows
//! the spawning thread: it lives as long as they do); teardown signals every
//! instance first, then stops them on a few threads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vclab_contract::{Failure, FailureReport};

use super::interrupt;
use super::leftovers::{self, Probe};
use super::measure::{self, start_time};
use super::plan::{Plan, MAX_SHARE_OF_RAM};
use super::progress::Progress;
use super::record::{Meminfo, Ramp, Step, StopReason, Teardown};
use crate::runtime::{Env, Held, HoldOptions, Liveness, Runtime};

/// Running instances checked for liveness after each step.
pub const LIVENESS_SAMPLE: usize = 10;
/// How long leftovers may take to vanish (cgroup removal, reaping) before they count.
const SETTLE: Duration = Duration::from_secs(3);

/// The host's limits at the moment of a failure, to name its cause.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LimitState {
    /// Tasks on the host.
    pub host_threads: u64,
    /// kernel.pid_max.
    pub pid_max: Option<u64>,
    /// kernel.threads-max.
    pub threads_max: Option<u64>,
    /// This cgroup's (pids.current, pids.max).
    pub pids: Option<(u64, u64)>,
}

impl LimitState {
    /// The limits now.
    pub fn now() -> LimitState {
        LimitState {
            host_threads: measure::host_threads(),
            pid_max: super::limits::pid_max(),
            threads_max: super::limits::threads_max(),
            pids: super::limits::pids_cgroup(),
        }
    }
}

/// Tasks this close to a limit count as having reached it (a launch needs a few at once).
const NEAR: u64 = 64;

/// Names the cause of a launch failure: a host limit that was reached
/// (pids.max, pid_max, threads-max), else the errno in the failure's words,
/// else a timeout or a plain launch failure.
pub fn classify(f: &FailureReport, l: &LimitState) -> (StopReason, String) {
    let text = f.detail.to_ascii_lowercase();
    let near = |limit: Option<u64>| limit.is_some_and(|m| l.host_threads + NEAR >= m);
    let with = |what: String| format!("{what}; the launch said: {}", f.detail);
    if let Some((cur, max)) = l.pids {
        if cur + 2 >= max {
            return (
                StopReason::PidsMax,
                with(format!("pids.current {cur} of pids.max {max}")),
            );
        }
    }
    if near(l.pid_max) {
        return (
            StopReason::PidMax,
            with(format!(
                "{} tasks on the host, kernel.pid_max {} (--raise-limits would raise it for the run)",
                l.host_threads,
                l.pid_max.unwrap_or(0)
            )),
        );
    }
    if near(l.threads_max) {
        return (
            StopReason::ThreadsMax,
            with(format!(
                "{} tasks on the host, kernel.threads-max {}",
                l.host_threads,
                l.threads_max.unwrap_or(0)
            )),
        );
    }
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    let reason = if has(&["os error 24", "too many open files", "emfile"]) {
        StopReason::Emfile
    } else if has(&[
        "os error 12",
        "cannot allocate memory",
        "out of memory",
        "enomem",
    ]) {
        StopReason::Enomem
    } else if has(&["os error 11", "resource temporarily unavailable", "eagain"]) {
        StopReason::Eagain
    } else if f.kind == Failure::Timeout {
        StopReason::LaunchTimeout
    } else {
        StopReason::LaunchFailed
    };
    (reason, f.detail.clone())
}

/// Why the memory check stops the ramp now, if it does.
pub fn memory_stop(
    baseline: &Meminfo,
    now: &Meminfo,
    budget_bytes: u64,
) -> Option<(StopReason, String)> {
    let used_kib = baseline.available_kib.saturating_sub(now.available_kib);
    if used_kib * 1024 >= budget_bytes {
        return Some((
            StopReason::MemoryBudget,
            format!(
                "MemAvailable fell {} MiB, the budget is {} MiB",
                used_kib >> 10,
                budget_bytes >> 20
            ),
        ));
    }
    let in_use = now.total_kib.saturating_sub(now.available_kib) as f64;
    if now.total_kib > 0 && in_use >= now.total_kib as f64 * MAX_SHARE_OF_RAM {
        return Some((
            StopReason::HostMemoryGuard,
            format!(
                "{} MiB of the host's {} MiB in use (the ramp stops at 60%)",
                now.total_kib.saturating_sub(now.available_kib) >> 10,
                now.total_kib >> 10
            ),
        ));
    }
    None
}

/// What a ramp needs.
pub struct Ctx<'a> {
    /// The row.
    pub rt: &'a dyn Runtime,
    /// Its environment.
    pub env: &'a Env,
    /// The plan.
    pub plan: &'a Plan,
    /// How instances are held.
    pub opts: &'a HoldOptions,
    /// What the leftover check looks for.
    pub probe: &'a Probe,
    /// Instance numbers (unique over the whole run).
    pub seq: &'a AtomicU64,
    /// The harness's own memory cgroup (instances there have none of their own).
    pub own_cgroup: Option<(String, bool)>,
    /// The progress display.
    pub progress: &'a Progress,
}

/// Measures the held instances (`new` of them launched in this step, with `latencies`).
fn measure_step(
    ctx: &Ctx<'_>,
    held: &mut [Box<dyn Held>],
    new: usize,
    latencies: Vec<f64>,
    t0: Instant,
    oom0: u64,
    ksm: bool,
) -> Step {
    let pids: Vec<i32> = held.iter().flat_map(|h| h.pids()).collect();
    let scan = measure::scan(&pids, ctx.own_cgroup.as_ref());
    let old = held.len() - new;
    let sample: Vec<usize> = if old == 0 {
        Vec::new()
    } else {
        let k = old.min(LIVENESS_SAMPLE);
        (0..k).map(|i| i * old / k).collect()
    };
    let alive = sample
        .iter()
        .filter(|&&i| held[i].liveness() == Liveness::Alive)
        .count();
    Step {
        n: held.len() as u32,
        elapsed_s: t0.elapsed().as_secs_f64(),
        meminfo: measure::meminfo(),
        pss_kib: scan.pss_kib,
        processes: scan.processes,
        threads: scan.threads,
        cgroup_kib: scan.cgroup_kib,
        latencies_ms: latencies,
        host_processes: measure::host_processes(),
        host_threads: measure::host_threads(),
        sampled: sample.len() as u32,
        alive: alive as u32,
        oom_kills: measure::oom_kills().saturating_sub(oom0),
        ksm: if ksm { measure::ksm_counters() } else { None },
    }
}

/// Ramps `ctx.rt` up, then tears it down. `save` is called with the ramp
/// so far after every step (the exports are rewritten: a crash keeps what
/// was measured).
pub fn ramp(ctx: &Ctx<'_>, ksm: bool, save: &mut dyn FnMut(&Ramp)) -> Ramp {
    let plan = ctx.plan;
    let mut r = Ramp {
        ksm,
        baseline: measure::meminfo(),
        baseline_host_processes: measure::host_processes(),
        baseline_host_threads: measure::host_threads(),
        ..Ramp::default()
    };
    let oom0 = measure::oom_kills();
    let t0 = Instant::now();
    let mut held: Vec<Box<dyn Held>> = Vec::new();
    r.steps
        .push(measure_step(ctx, &mut held, 0, Vec::new(), t0, oom0, ksm));
    ctx.progress.ramp_start(ctx.rt.id().name(), plan.max, ksm);
    let max = plan.max as usize;
    let mut stop: Option<(StopReason, String)> = None;
    while stop.is_none() {
        let target = (held.len() + plan.step as usize).min(max);
        let mut latencies = Vec::new();
        while held.len() < target {
            if interrupt::interrupted() {
                stop = Some((
                    StopReason::Interrupted,
                    "SIGINT/SIGTERM during the ramp".into(),
                ));
                break;
            }
            if let Some(s) = memory_stop(&r.baseline, &measure::meminfo(), plan.budget_bytes) {
                stop = Some(s);
                break;
            }
            let seq = ctx.seq.fetch_add(1, Ordering::Relaxed);
            match ctx.rt.hold(ctx.env, ctx.opts, seq) {
                Ok(h) => {
                    latencies.push(h.ready_after().as_secs_f64() * 1e3);
                    held.push(h);
                }
                Err(f) => {
                    stop = Some(classify(&f, &LimitState::now()));
                    break;
                }
            }
        }
        if !latencies.is_empty() || held.len() >= max {
            let new = latencies.len();
            let step = measure_step(ctx, &mut held, new, latencies, t0, oom0, ksm);
            if step.alive < step.sampled && stop.is_none() {
                stop = Some((
                    StopReason::InstancesDied,
                    format!(
                        "{} of {} running instances sampled had stopped (host OOM kills so far: {})",
                        step.sampled - step.alive,
                        step.sampled,
                        step.oom_kills
                    ),
                ));
            }
            ctx.progress.ramp_step(&r.baseline, &step);
            r.steps.push(step);
            r.max_n = held.len() as u32;
            save(&r);
        }
        if stop.is_none() && held.len() >= max {
            stop = Some((StopReason::ReachedMax, format!("{max} instances held")));
        }
    }
    if ksm && !interrupt::interrupted() {
        settle_ksm(ctx, &mut r, &mut held, t0, oom0);
    }
    let (reason, detail) = stop.unwrap_or((StopReason::ReachedMax, String::new()));
    r.stop = Some(reason);
    r.stop_detail = detail;
    r.max_n = held.len() as u32;
    ctx.progress.ramp_done(r.max_n, reason.label());
    r.teardown = teardown(held, Some(ctx.probe));
    save(&r);
    r
}

/// With KSM on: waits (up to a minute) for two full scans, then measures
/// the last step again (the merged pages show there).
fn settle_ksm(ctx: &Ctx<'_>, r: &mut Ramp, held: &mut [Box<dyn Held>], t0: Instant, oom0: u64) {
    let Some(start) = measure::ksm_counters() else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(if ctx.plan.quick { 20 } else { 60 });
    while Instant::now() < deadline && !interrupt::interrupted() {
        if measure::ksm_counters().is_some_and(|c| c.full_scans >= start.full_scans + 2) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let latencies = r
        .steps
        .last()
        .map(|s| s.latencies_ms.clone())
        .unwrap_or_default();
    let new = latencies.len();
    let step = measure_step(ctx, held, new, latencies, t0, oom0, true);
    if let Some(last) = r.steps.last_mut() {
        *last = step;
    }
}

/// Stops every instance (all signalled first, then stopped on a few
/// threads) and, with a `probe`, checks what is left.
pub fn teardown(held: Vec<Box<dyn Held>>, probe: Option<&Probe>) -> Teardown {
    let t = Instant::now();
    let mut held = held;
    let seen: Vec<(i32, u64)> = held
        .iter()
        .flat_map(|h| h.pids())
        .filter_map(|p| start_time(p).map(|s| (p, s)))
        .collect();
    for h in &mut held {
        h.begin_stop();
    }
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4);
    let chunk = held.len().div_ceil(threads).max(1);
    let mut chunks: Vec<Vec<Box<dyn Held>>> = Vec::new();
    while !held.is_empty() {
        let rest = held.split_off(chunk.min(held.len()));
        chunks.push(std::mem::replace(&mut held, rest));
    }
    let results: Vec<(u32, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| {
                s.spawn(move || {
                    let mut killed = 0;
                    let mut errors = Vec::new();
                    for h in c {
                        match h.stop() {
                            Ok(k) => killed += k,
                            Err(e) => errors.push(e.to_string()),
                        }
                    }
                    (killed, errors)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or((0, vec!["a teardown thread panicked".into()]))
            })
            .collect()
    });
    let mut td = Teardown::default();
    for (k, e) in results {
        td.killed_leftovers += k;
        td.errors.extend(e);
    }
    if let Some(probe) = probe {
        let deadline = Instant::now() + SETTLE;
        loop {
            td.leftovers = leftovers::check(probe, &seen);
            if td.leftovers.is_empty() || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    td.seconds = t.elapsed().as_secs_f64();
    td
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(kind: Failure, detail: &str) -> FailureReport {
        FailureReport::new(kind, detail)
    }

    #[test]
    fn causes_are_named() {
        let calm = LimitState {
            host_threads: 500,
            pid_max: Some(32768),
            threads_max: Some(192_726),
            pids: None,
        };
        let c = |kind, d: &str| classify(&failure(kind, d), &calm).0;
        assert_eq!(
            c(
                Failure::LaunchFailed,
                "cannot start x: Too many open files (os error 24)"
            ),
            StopReason::Emfile
        );
        assert_eq!(
            c(
                Failure::LaunchFailed,
                "clone: Cannot allocate memory (os error 12)"
            ),
            StopReason::Enomem
        );
        assert_eq!(
            c(
                Failure::LaunchFailed,
                "fork: Resource temporarily unavailable"
            ),
            StopReason::Eagain
        );
        assert_eq!(
            c(Failure::Timeout, "did not finish"),
            StopReason::LaunchTimeout
        );
        assert_eq!(
            c(Failure::LaunchFailed, "exited with 125"),
            StopReason::LaunchFailed
        );
        // EAGAIN at the host's pid_max is pid_max.
        let full = LimitState {
            host_threads: 32_760,
            ..calm
        };
        let (r, d) = classify(&failure(Failure::LaunchFailed, "os error 11"), &full);
        assert_eq!(r, StopReason::PidMax);
        assert!(d.contains("32768") && d.contains("os error 11"), "{d}");
        let cg = LimitState {
            pids: Some((4095, 4096)),
            ..calm
        };
        assert_eq!(
            classify(&failure(Failure::LaunchFailed, "x"), &cg).0,
            StopReason::PidsMax
        );
        let tm = LimitState {
            threads_max: Some(520),
            ..calm
        };
        assert_eq!(
            classify(&failure(Failure::LaunchFailed, "x"), &tm).0,
            StopReason::ThreadsMax
        );
    }

    #[test]
    fn the_budget_and_the_guard_stop_the_ramp() {
        let base = Meminfo {
            total_kib: 1 << 20,
            available_kib: 900 << 10,
            ..Meminfo::default()
        };
        let now = |avail: u64| Meminfo {
            available_kib: avail << 10,
            ..base
        };
        assert_eq!(memory_stop(&base, &now(899), 100 << 20), None);
        assert_eq!(
            memory_stop(&base, &now(799), 100 << 20).map(|s| s.0),
            Some(StopReason::MemoryBudget)
        );
        // 60% of RAM in use stops it even within the budget.
        assert_eq!(
            memory_stop(&base, &now(400), 1 << 40).map(|s| s.0),
            Some(StopReason::HostMemoryGuard)
        );
    }
}
