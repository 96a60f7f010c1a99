//! The teardown check: after every instance of a runtime is stopped,
//! nothing of theirs may be left: processes (by pid *and* start time, so a
//! recycled pid is not blamed), children of the harness other than its
//! guard, cgroups, mounts, state directories (the launcher's, runc's and
//! crun's, the harness's instance files) and KVM file descriptors. Only
//! names this run made (its pid is in them) are looked for, so other users
//! of the host are never counted.

use std::path::{Path, PathBuf};

use super::measure::start_time;
use crate::spawn::tree;

/// What to look for.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Names of this run's instances contain this (`density-<pid>`).
    pub prefix: String,
    /// Names of its OCI containers start with this (`vclab-compare-<pid>-`).
    pub oci_prefix: String,
    /// The harness's state entry.
    pub harness_dir: Option<PathBuf>,
}

impl Probe {
    /// The probe of this process's run.
    pub fn this_run(prefix: &str, harness_dir: Option<PathBuf>) -> Probe {
        Probe {
            prefix: prefix.to_string(),
            oci_prefix: format!("vclab-compare-{}-", std::process::id()),
            harness_dir,
        }
    }

    fn ours(&self, name: &str) -> bool {
        name.contains(&self.prefix) || name.starts_with(&self.oci_prefix)
    }
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Whether a child of the harness is its guard (`vclab guard DIR`).
fn is_guard(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| c.split(|b| *b == 0).nth(1) == Some(b"guard"))
        .unwrap_or(false)
}

/// Directories below `dir` (at most `depth` levels) whose name `matches`.
fn dirs_named(dir: &Path, depth: u32, matches: &dyn Fn(&str) -> bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(t) = e.file_type() else { continue };
        if !t.is_dir() || t.is_symlink() {
            continue;
        }
        let p = e.path();
        if matches(&e.file_name().to_string_lossy()) {
            out.push(p.clone());
        }
        if depth > 0 {
            dirs_named(&p, depth - 1, matches, out);
        }
    }
}

/// Everything of this run still there; `seen` are the processes the ramp
/// saw (pid, start time).
pub fn check(probe: &Probe, seen: &[(i32, u64)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut alive_seen = Vec::new();
    for &(pid, start) in seen {
        if start_time(pid) == Some(start) && tree::state(pid).is_some_and(|s| s != 'Z') {
            out.push(format!("process {pid} ({})", comm(pid)));
            alive_seen.push(pid);
        }
    }
    let me = std::process::id() as i32;
    for child in tree::children(me) {
        if is_guard(child) || alive_seen.contains(&child) {
            continue;
        }
        // A zombie is reaped by whoever waits for it (a Spawned, HeldOci).
        if tree::state(child).is_some_and(|s| s != 'Z') {
            out.push(format!(
                "process {child} ({}), a child of the harness",
                comm(child)
            ));
        }
    }
    let ours = |n: &str| probe.ours(n);
    let mut cgroups = Vec::new();
    dirs_named(Path::new("/sys/fs/cgroup"), 5, &ours, &mut cgroups);
    out.extend(cgroups.iter().map(|c| format!("cgroup {}", c.display())));
    if let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") {
        let harness = probe.harness_dir.as_ref().map(|d| d.display().to_string());
        out.extend(
            mounts
                .lines()
                .filter(|l| {
                    l.contains(&probe.prefix)
                        || l.contains(&probe.oci_prefix)
                        || harness.as_ref().is_some_and(|h| l.contains(h.as_str()))
                })
                .map(|l| format!("mount {l}")),
        );
    }
    for root in ["/run/vclab", "/run/runc", "/run/crun"] {
        if let Ok(entries) = std::fs::read_dir(root) {
            for e in entries.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if ours(&n) {
                    out.push(format!("state {root}/{n}"));
                }
            }
        }
    }
    if let Some(dir) = &probe.harness_dir {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n == "oci.d" {
                    // The guard's records: one left is a container not deleted.
                    for r in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
                        out.push(format!("guard record {}", r.path().display()));
                    }
                } else if n != "pid" {
                    out.push(format!("instance files {}", e.path().display()));
                }
            }
        }
        let oci = std::fs::read_to_string(dir.join("oci")).unwrap_or_default();
        out.extend(
            oci.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| format!("registered OCI container {l}")),
        );
    }
    for pid in alive_seen.into_iter().chain([me]) {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        let kvm = fds
            .flatten()
            .filter_map(|f| std::fs::read_link(f.path()).ok())
            .filter(|t| t.to_string_lossy().contains("kvm"))
            .count();
        if kvm > 0 {
            out.push(format!(
                "{kvm} KVM fds held by process {pid} ({})",
                comm(pid)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_process_is_a_leftover_and_a_dead_one_is_not() {
        let probe = Probe::this_run("density-test-none-", None);
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let start = start_time(pid).unwrap();
        let found = check(&probe, &[(pid, start)]);
        assert!(
            found
                .iter()
                .any(|l| l.starts_with(&format!("process {pid}"))),
            "{found:?}"
        );
        // A recycled pid (another start time) is not blamed.
        let found = check(&probe, &[(pid, start + 1)]);
        assert!(!found
            .iter()
            .any(|l| l.starts_with(&format!("process {pid} (sleep)\n"))));
        child.kill().unwrap();
        child.wait().unwrap();
        let found = check(&probe, &[(pid, start)]);
        assert!(
            !found.iter().any(|l| l.contains(&format!("process {pid}"))),
            "{found:?}"
        );
    }
}
