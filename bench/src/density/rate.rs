//! The launch rate: instances per second to ready, at a given concurrency,
//! over a fixed number of launches. C worker threads each launch and hold
//! instances (from their own thread: PR_SET_PDEATHSIG follows it) until the
//! launches are used up; the rate is the ready instances over the time
//! from the first launch to the last ready. Then every worker stops its
//! own instances and the host is checked for leftovers.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use super::interrupt;
use super::leftovers::{self, Probe};
use super::measure::{self, start_time};
use super::plan::MAX_SHARE_OF_RAM;
use super::ramp::teardown;
use super::record::Rate;
use crate::runtime::{Env, Held, HoldOptions, Runtime};

/// What each worker brings back.
struct WorkerRun {
    latencies_ms: Vec<f64>,
    seen: Vec<(i32, u64)>,
    errors: Vec<String>,
}

/// Measures the launch rate of `rt` at `concurrency` over `launches` launches.
pub fn rate(
    rt: &dyn Runtime,
    env: &Env,
    opts: &HoldOptions,
    concurrency: u32,
    launches: u32,
    seq: &AtomicU64,
    probe: &Probe,
) -> Rate {
    let next = AtomicU32::new(0);
    let failed = AtomicBool::new(false);
    let failure: Mutex<Option<String>> = Mutex::new(None);
    let last_ready = Mutex::new(Duration::ZERO);
    let barrier = Barrier::new(concurrency as usize);
    let t0 = Instant::now();
    let runs: Vec<WorkerRun> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..concurrency)
            .map(|_| {
                s.spawn(|| {
                    let mut mine: Vec<Box<dyn Held>> = Vec::new();
                    let mut latencies_ms = Vec::new();
                    loop {
                        if interrupt::interrupted() || failed.load(Ordering::SeqCst) {
                            break;
                        }
                        if next.fetch_add(1, Ordering::SeqCst) >= launches {
                            break;
                        }
                        let m = measure::meminfo();
                        let in_use = m.total_kib.saturating_sub(m.available_kib) as f64;
                        if in_use >= m.total_kib as f64 * MAX_SHARE_OF_RAM {
                            failed.store(true, Ordering::SeqCst);
                            set_first(&failure, "stopped: 60% of the host's memory in use".into());
                            break;
                        }
                        match rt.hold(env, opts, seq.fetch_add(1, Ordering::Relaxed)) {
                            Ok(h) => {
                                latencies_ms.push(h.ready_after().as_secs_f64() * 1e3);
                                mine.push(h);
                                let mut l = last_ready.lock().unwrap_or_else(|e| e.into_inner());
                                *l = (*l).max(t0.elapsed());
                            }
                            Err(e) => {
                                failed.store(true, Ordering::SeqCst);
                                set_first(&failure, e.to_string());
                            }
                        }
                    }
                    // Every worker holds its instances until all are done launching.
                    barrier.wait();
                    let seen = mine
                        .iter()
                        .flat_map(|h| h.pids())
                        .filter_map(|p| start_time(p).map(|t| (p, t)))
                        .collect();
                    let td = teardown(mine, None);
                    WorkerRun {
                        latencies_ms,
                        seen,
                        errors: td.errors,
                    }
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let seconds = last_ready
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .as_secs_f64();
    let mut latencies_ms = Vec::new();
    let mut seen = Vec::new();
    let mut errors = Vec::new();
    for r in runs {
        latencies_ms.extend(r.latencies_ms);
        seen.extend(r.seen);
        errors.extend(r.errors);
    }
    let ready = latencies_ms.len() as u32;
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut leftovers = leftovers::check(probe, &seen);
    while !leftovers.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        leftovers = leftovers::check(probe, &seen);
    }
    leftovers.extend(errors.into_iter().map(|e| format!("stop error: {e}")));
    let mut failure = failure.into_inner().unwrap_or_else(|e| e.into_inner());
    if failure.is_none() && interrupt::interrupted() {
        failure = Some("interrupted (Ctrl-C)".into());
    }
    Rate {
        concurrency,
        launches: launches.min(next.load(Ordering::SeqCst)),
        ready,
        seconds,
        per_s: if seconds > 0.0 {
            f64::from(ready) / seconds
        } else {
            0.0
        },
        latencies_ms,
        failure,
        leftovers,
    }
}

fn set_first(slot: &Mutex<Option<String>>, what: String) {
    let mut f = slot.lock().unwrap_or_else(|e| e.into_inner());
    if f.is_none() {
        *f = Some(what);
    }
}
