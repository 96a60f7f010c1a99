//! Progress on stderr: an indicatif bar per ramp with the current N, the
//! memory taken and the launch rate; on a non-terminal (CI, a pipe) the
//! same state as one plain line per step.

use std::sync::Mutex;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use super::record::{Meminfo, Rate, Step};

/// The progress display.
#[derive(Debug, Default)]
pub struct Progress {
    bar: Mutex<Option<(ProgressBar, Instant, String)>>,
}

impl Progress {
    /// A display with nothing shown yet.
    pub fn new() -> Progress {
        Progress::default()
    }

    fn plain(&self) -> bool {
        self.bar
            .lock()
            .map(|b| b.as_ref().is_none_or(|(p, _, _)| p.is_hidden()))
            .unwrap_or(true)
    }

    /// A ramp of `name` to `max` starts.
    pub fn ramp_start(&self, name: &str, max: u32, ksm: bool) {
        let label = if ksm {
            format!("{name} (KSM on)")
        } else {
            name.to_string()
        };
        let bar = ProgressBar::new(u64::from(max));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(label.clone());
        if let Ok(mut b) = self.bar.lock() {
            *b = Some((bar, Instant::now(), label.clone()));
        }
        if self.plain() {
            eprintln!("vclab density: {label}: ramp to {max}");
        }
    }

    /// A step was measured.
    pub fn ramp_step(&self, baseline: &Meminfo, step: &Step) {
        let used = baseline
            .available_kib
            .saturating_sub(step.meminfo.available_kib) as f64
            / 1024.0;
        let Ok(b) = self.bar.lock() else { return };
        let Some((bar, t0, label)) = b.as_ref() else {
            return;
        };
        let secs = t0.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            f64::from(step.n) / secs
        } else {
            0.0
        };
        let msg = format!(
            "N={} used {used:.0} MiB ({:.2} MiB each), {rate:.0}/s, {} tasks on the host",
            step.n,
            if step.n > 0 {
                used / f64::from(step.n)
            } else {
                0.0
            },
            step.host_threads
        );
        bar.set_position(u64::from(step.n));
        if bar.is_hidden() {
            eprintln!("vclab density: {label}: {msg}");
        } else {
            bar.set_message(msg);
        }
    }

    /// The ramp stopped at `n` because of `why`.
    pub fn ramp_done(&self, n: u32, why: &str) {
        let Ok(mut b) = self.bar.lock() else { return };
        if let Some((bar, _, label)) = b.take() {
            let msg = format!("{label}: held {n}, stopped: {why}; tearing down");
            if bar.is_hidden() {
                eprintln!("vclab density: {msg}");
            } else {
                bar.finish_with_message(format!("held {n}, stopped: {why}"));
            }
        }
    }

    /// A line of its own.
    pub fn note(&self, line: &str) {
        let b = self.bar.lock().ok();
        match b.as_ref().and_then(|b| b.as_ref()) {
            Some((bar, _, _)) if !bar.is_hidden() => bar.println(line),
            _ => eprintln!("vclab density: {line}"),
        }
    }

    /// A rate was measured.
    pub fn rate(&self, name: &str, r: &Rate) {
        let fail = r
            .failure
            .as_deref()
            .map_or(String::new(), |f| format!(" (stopped: {f})"));
        self.note(&format!(
            "{name}: {:.0} launches/s at concurrency {} ({} ready in {:.2} s){fail}",
            r.per_s, r.concurrency, r.ready, r.seconds
        ));
    }
}
