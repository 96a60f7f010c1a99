//! What one observed run showed, and the clock it is stamped on.

use std::time::Duration;

/// What one run showed.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// CLOCK_MONOTONIC just before the spawn, ns.
    pub launch_monotonic_ns: u64,
    /// Launch → exit (reaped).
    pub total: Duration,
    /// Exit code, or 128 + signal.
    pub exit_code: i32,
    /// stdout lines with their time since launch.
    pub lines: Vec<(Duration, String)>,
    /// stderr, whole.
    pub stderr: String,
    /// Sum over the tree of each process's VmHWM, KiB (None if never sampled).
    pub peak_rss_kib: Option<u64>,
    /// Largest sum over the tree of Pss seen at one sample, KiB.
    pub peak_pss_kib: Option<u64>,
    /// Processes of the tree still alive after the instance was reaped (a
    /// daemon or a leaked process), killed before returning.
    pub leftover: u32,
    /// User CPU time of the instance and its reaped descendants.
    pub cpu_user: Duration,
    /// System CPU time of the instance and its reaped descendants.
    pub cpu_sys: Duration,
}

impl Observed {
    /// The last stdout line (the report line of the vclab CLIs and the workload).
    pub fn last_line(&self) -> Option<&str> {
        self.lines
            .iter()
            .rev()
            .map(|(_, l)| l.trim())
            .find(|l| !l.is_empty())
    }

    /// The time since launch at which a stdout line containing `marker` appeared.
    pub fn line_time(&self, marker: &str) -> Option<Duration> {
        self.lines
            .iter()
            .find(|(_, l)| l.contains(marker))
            .map(|(t, _)| *t)
    }

    /// The last few output lines, for error messages.
    pub fn tail(&self) -> String {
        let mut lines: Vec<&str> = self.lines.iter().map(|(_, l)| l.as_str()).collect();
        lines.extend(self.stderr.lines());
        let start = lines.len().saturating_sub(4);
        lines[start..].join(" | ")
    }
}

/// CLOCK_MONOTONIC now, ns.
pub fn monotonic_ns() -> u64 {
    use nix::time::{clock_gettime, ClockId};
    clock_gettime(ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}
