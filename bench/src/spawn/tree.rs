//! One instance's process tree, walked from its root through
//! `/proc/PID/task/TID/children` (never a scan of all of /proc, so sampling
//! hundreds of held instances costs each only its own tree), and the memory
//! and CPU figures sampled from it.
//!
//! Memory: `ru_maxrss` would inherit this harness's own high-water mark
//! across fork+exec (HOST-NOTES.md), so VmHWM is read per process from
//! /proc/PID/status (a high-water mark: a peak between samples is not lost)
//! and Pss from /proc/PID/smaps_rollup.

use std::collections::HashMap;

/// Pss is costlier to read (the kernel walks page tables): read it every this many samples.
const PSS_EVERY: u32 = 5;

/// The direct children of every thread of `pid`.
pub fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("children")) else {
            continue;
        };
        out.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok()),
        );
    }
    out
}

/// `root` and all its descendants, parents before children.
pub fn tree(root: i32) -> Vec<i32> {
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let kids = children(out[i]);
        out.extend(kids);
        i += 1;
    }
    out
}

/// The parent of `pid`, from /proc/PID/stat.
pub fn ppid(pid: i32) -> Option<i32> {
    stat_field(pid, 1)?.parse().ok()
}

/// The state letter of `pid` (`R`, `S`, `Z`...), from /proc/PID/stat.
pub fn state(pid: i32) -> Option<char> {
    stat_field(pid, 0)?.chars().next()
}

/// Field `n` (0 = state) of /proc/PID/stat after the command name.
fn stat_field(pid: i32, n: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(n).map(str::to_string)
}

/// A `Key:   N kB` field of a /proc status-like file.
pub fn kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))
        .and_then(|l| l[key.len() + 1..].split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The memory of one process tree, sampled again and again.
#[derive(Debug, Default)]
pub struct TreeSampler {
    /// Every pid seen in the tree, with its highest VmHWM, KiB.
    pub hwm: HashMap<i32, u64>,
    /// The largest sum of Pss over the tree at one sample, KiB.
    pub peak_pss: Option<u64>,
    /// The Pss sum at the last sample that read it, KiB.
    pub last_pss: Option<u64>,
    samples: u32,
}

impl TreeSampler {
    /// Samples the tree of `root` once.
    pub fn sample(&mut self, root: i32) {
        let with_pss = self.samples % PSS_EVERY == 0;
        self.samples += 1;
        self.sample_pids(&tree(root), with_pss);
    }

    /// Samples the tree of `root` with Pss, whatever the cadence.
    pub fn sample_full(&mut self, root: i32) {
        self.samples += 1;
        self.sample_pids(&tree(root), true);
    }

    fn sample_pids(&mut self, pids: &[i32], with_pss: bool) {
        let mut pss_sum = 0;
        let mut pss_seen = false;
        for &pid in pids {
            if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                if let Some(h) = kib_field(&status, "VmHWM") {
                    let e = self.hwm.entry(pid).or_insert(0);
                    *e = (*e).max(h);
                }
            }
            if with_pss {
                if let Ok(rollup) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
                    if let Some(p) = kib_field(&rollup, "Pss") {
                        pss_sum += p;
                        pss_seen = true;
                    }
                }
            }
        }
        if pss_seen {
            self.last_pss = Some(pss_sum);
            self.peak_pss = Some(self.peak_pss.unwrap_or(0).max(pss_sum));
        }
    }

    /// The sum over the tree of each process's VmHWM, KiB (None before any sample saw one).
    pub fn hwm_sum(&self) -> Option<u64> {
        (!self.hwm.is_empty()).then(|| self.hwm.values().sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kib_fields() {
        let status = "Name:\tx\nVmHWM:\t    2048 kB\nVmRSS:\t 1024 kB\n";
        assert_eq!(kib_field(status, "VmHWM"), Some(2048));
        assert_eq!(kib_field(status, "VmRSS"), Some(1024));
        assert_eq!(kib_field(status, "VmSwap"), None);
        assert_eq!(kib_field("Pss_Anon: 5 kB\nPss: 7 kB\n", "Pss"), Some(7));
    }

    #[test]
    fn walks_a_real_tree() {
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 5 & sleep 5 & wait"])
            .spawn()
            .unwrap();
        let root = child.id() as i32;
        let mut found = Vec::new();
        for _ in 0..200 {
            found = tree(root);
            if found.len() == 3 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[1..].iter().all(|p| ppid(*p) == Some(root)));
        // Waiting in `wait` (S), or caught on the CPU for a moment (R): alive either way.
        assert!(matches!(state(root), Some('S' | 'R')), "{:?}", state(root));
        let mut s = TreeSampler::default();
        s.sample_full(root);
        assert_eq!(s.hwm.len(), 3);
        assert!(s.peak_pss.unwrap() > 0);
        for p in found.iter().rev() {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(*p), nix::sys::signal::SIGKILL);
        }
        let _ = child.wait();
    }
}
