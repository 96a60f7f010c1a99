//! Host limits that can stop a ramp: kernel.pid_max and kernel.threads-max
//! (every thread takes a pid), the harness's own RLIMIT_NOFILE (each held
//! instance keeps a pidfd and two pipes here), a cgroup's pids.max.
//!
//! The soft RLIMIT_NOFILE is raised to its hard limit for the run (a
//! property of this process, not of the host). A host limit is changed only
//! with `--raise-limits`, restored when the guard drops, and every change is
//! recorded in the report.

use super::measure::read_value;
use super::record::LimitChange;

/// pid_max's ceiling on 64-bit kernels (PID_MAX_LIMIT).
pub const PID_MAX_LIMIT: u64 = 4_194_304;

const PID_MAX: &str = "/proc/sys/kernel/pid_max";
const THREADS_MAX: &str = "/proc/sys/kernel/threads-max";

/// The limits as they are now.
pub fn snapshot() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, path) in [
        ("kernel.pid_max", PID_MAX),
        ("kernel.threads-max", THREADS_MAX),
    ] {
        out.push((
            name.to_string(),
            read_value(path).unwrap_or_else(|| "?".into()),
        ));
    }
    if let Ok((soft, hard)) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
    {
        out.push(("RLIMIT_NOFILE".into(), format!("{soft} (hard {hard})")));
    }
    if let Some(p) = pids_max() {
        out.push(("pids.max of this cgroup".into(), p.to_string()));
    }
    out
}

/// kernel.pid_max.
pub fn pid_max() -> Option<u64> {
    read_value(PID_MAX)?.parse().ok()
}

/// kernel.threads-max.
pub fn threads_max() -> Option<u64> {
    read_value(THREADS_MAX)?.parse().ok()
}

/// The pids cgroup of this process: (pids.current, pids.max) when it has a limit.
pub fn pids_cgroup() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let dir = if ctrls.split(',').any(|c| c == "pids") {
            std::path::Path::new("/sys/fs/cgroup/pids").join(path.trim_start_matches('/'))
        } else if ctrls.is_empty() {
            std::path::Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'))
        } else {
            continue;
        };
        let max = read_value(&dir.join("pids.max").to_string_lossy())?;
        let current = read_value(&dir.join("pids.current").to_string_lossy())?;
        if let (Ok(m), Ok(c)) = (max.parse(), current.parse()) {
            return Some((c, m));
        }
    }
    None
}

fn pids_max() -> Option<u64> {
    pids_cgroup().map(|(_, m)| m)
}

/// Raises this process's soft RLIMIT_NOFILE to its hard limit.
pub fn raise_nofile() -> Option<LimitChange> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft >= hard {
        return None;
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).ok()?;
    Some(LimitChange {
        name:
            "RLIMIT_NOFILE of the harness (soft; a process limit that ends with it, not the host's)"
                .into(),
        before: soft.to_string(),
        during: hard.to_string(),
        restored: true,
    })
}

/// Host limits raised for the run; restored on drop.
#[derive(Debug, Default)]
pub struct Raised {
    /// (index into `changes`, file, value before).
    saved: Vec<(usize, &'static str, String)>,
    /// What was changed (the `restored` flags are set on drop's success).
    pub changes: Vec<LimitChange>,
}

impl Raised {
    /// Raises kernel.pid_max to [`PID_MAX_LIMIT`] and kernel.threads-max to
    /// at least that (`--raise-limits`). A write that fails is recorded with
    /// the error as its `during` value.
    pub fn raise() -> Raised {
        let mut r = Raised::default();
        for (name, path) in [
            ("kernel.pid_max", PID_MAX),
            ("kernel.threads-max", THREADS_MAX),
        ] {
            let Some(before) = read_value(path) else {
                continue;
            };
            let Ok(v) = before.parse::<u64>() else {
                continue;
            };
            if v >= PID_MAX_LIMIT {
                continue;
            }
            let during = match std::fs::write(path, PID_MAX_LIMIT.to_string()) {
                Ok(()) => {
                    r.saved.push((r.changes.len(), path, before.clone()));
                    PID_MAX_LIMIT.to_string()
                }
                Err(e) => format!("unchanged: cannot write {path}: {e}"),
            };
            r.changes.push(LimitChange {
                name: name.into(),
                before,
                during,
                restored: false,
            });
        }
        r
    }

    /// Restores what was raised; returns the changes with their `restored` flags.
    pub fn restore(&mut self) -> Vec<LimitChange> {
        for (i, path, before) in self.saved.drain(..) {
            let ok = std::fs::write(path, &before).is_ok();
            if let Some(c) = self.changes.get_mut(i) {
                c.restored = ok;
            }
        }
        self.changes.clone()
    }
}

impl Drop for Raised {
    fn drop(&mut self) {
        self.restore();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_hosts_limits() {
        let s = snapshot();
        assert!(s.iter().any(|(n, _)| n == "kernel.pid_max"));
        assert!(pid_max().is_some_and(|p| p >= 301));
        assert!(threads_max().is_some());
    }
}
