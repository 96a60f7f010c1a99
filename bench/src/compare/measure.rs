//! Runs one command and observes it from outside: launch and exit times on
//! CLOCK_MONOTONIC, each stdout line with the time it appeared, the peak
//! memory of its whole process tree (polled from /proc), and its CPU time
//! (wait4 rusage, which includes every descendant it waited for).
//!
//! Memory: `ru_maxrss` would inherit this harness's own high-water mark
//! across fork+exec (HOST-NOTES.md), so it is not used. Instead the tree is
//! polled every [`POLL`]: for each process, VmHWM from /proc/PID/status (a
//! high-water mark, so a peak between polls is not lost) and Pss from
//! /proc/PID/smaps_rollup.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::time::{clock_gettime, ClockId};
use nix::unistd::Pid;

/// How often the process tree's memory is sampled.
pub const POLL: Duration = Duration::from_millis(2);
/// How long the output readers may take to finish after the child exits.
const DRAIN: Duration = Duration::from_secs(2);
/// Pss is costlier to read (the kernel walks page tables): read it every this many polls.
const PSS_EVERY: u32 = 5;

/// Errors of one observed run.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// The command is empty.
    #[error("nothing to run: the command line is empty")]
    Empty,
    /// The program could not be started.
    #[error("cannot start {program}: {source} (is it installed and executable?)")]
    Spawn {
        /// The program.
        program: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// wait4 failed.
    #[error("cannot wait for {program} (pid {pid}): {source}")]
    Wait {
        /// The program.
        program: String,
        /// Its pid.
        pid: i32,
        /// The errno.
        source: nix::Error,
    },
    /// The run took too long and was killed.
    #[error(
        "{program} did not finish within {secs} s and was killed; its output ended with: {tail}"
    )]
    Timeout {
        /// The program.
        program: String,
        /// The limit.
        secs: u64,
        /// The last output lines.
        tail: String,
    },
}

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
    /// Largest sum over the tree of Pss seen at one poll, KiB.
    pub peak_pss_kib: Option<u64>,
    /// Processes of the tree still alive after the child was reaped (a
    /// daemon or a leaked process), killed before returning.
    pub leftover: u32,
    /// User CPU time of the child and its reaped descendants.
    pub cpu_user: Duration,
    /// System CPU time of the child and its reaped descendants.
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
    clock_gettime(ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// Whether `pid` was handed out after `root`, given the last pid handed out
/// (`last`, from /proc/sys/kernel/ns_last_pid): pids count up from `root` to
/// `last`, or, once the counter has wrapped (pid_max is 32768 on many hosts,
/// this one included), from `root` to pid_max and again from 1 to `last`.
fn newer_than(pid: i32, root: i32, last: Option<i32>) -> bool {
    match last {
        Some(last) if last >= root => (root..=last).contains(&pid),
        Some(last) => pid >= root || pid <= last,
        None => pid >= root,
    }
}

/// Each process's parent, from /proc/*/stat, for pids handed out since
/// `root` (descendants of a child are among them): the scan skips the rest of
/// the system, so a poll costs little next to what it measures.
fn parents(root: i32) -> HashMap<i32, i32> {
    let mut map = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return map;
    };
    let last = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .ok()
        .and_then(|s| s.trim().parse().ok());
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
            .filter(|p| newer_than(*p, root, last))
        else {
            continue;
        };
        if let Some(ppid) = read_ppid(pid) {
            map.insert(pid, ppid);
        }
    }
    map
}

fn read_ppid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// `root` and all its descendants.
pub fn tree(root: i32) -> Vec<i32> {
    let parents = parents(root);
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parents.iter().filter(|(_, pp)| **pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out
}

/// A `Key:   N kB` field of a /proc status-like file.
pub fn kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))
        .and_then(|l| l[key.len() + 1..].split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Polls the tree's memory until the child is reaped.
struct MemoryPoll {
    hwm: HashMap<i32, u64>,
    peak_pss: Option<u64>,
    polls: u32,
}

impl MemoryPoll {
    fn sample(&mut self, root: i32) {
        let pids = tree(root);
        let with_pss = self.polls % PSS_EVERY == 0;
        self.polls += 1;
        let mut pss_sum = 0;
        let mut pss_seen = false;
        for pid in pids {
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
            self.peak_pss = Some(self.peak_pss.unwrap_or(0).max(pss_sum));
        }
    }
}

/// Kills the processes seen in the tree of `root` that outlived it (now
/// children of init or of a subreaper) and returns how many there were.
fn kill_leftovers(root: i32, seen: impl Iterator<Item = i32>) -> u32 {
    let mut n = 0;
    for pid in seen.filter(|p| *p != root) {
        // A pid recycled within the run would have to be newer than the
        // tree's root and outside it: only a process whose parent is now
        // init (or gone from the tree) is counted.
        if let Some(ppid) = read_ppid(pid) {
            if ppid == 1 || ppid == root {
                n += 1;
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
    n
}

fn try_reap(pid: i32) -> Result<Option<(i32, libc::rusage)>, nix::Error> {
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `status` and `usage` are valid, writable and live for the call;
    // `pid` is our own child, spawned above and not reaped elsewhere.
    let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
    match r {
        0 => Ok(None),
        -1 => Err(nix::Error::last()),
        _ => {
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else if libc::WIFSIGNALED(status) {
                128 + libc::WTERMSIG(status)
            } else {
                -1
            };
            Ok(Some((code, usage)))
        }
    }
}

/// The tree's peak RSS: the polled VmHWM sum, raised to wait4's `ru_maxrss`
/// (the largest single process of the tree) when a poll missed a short-lived
/// peak. `ru_maxrss` counts only when it exceeds this harness's own VmHWM:
/// below that it may be the value a child inherits at exec (HOST-NOTES.md).
fn peak_rss(poll: &MemoryPoll, ru_maxrss_kib: libc::c_long) -> Option<u64> {
    let polled = (!poll.hwm.is_empty()).then(|| poll.hwm.values().sum::<u64>());
    let own = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| kib_field(&s, "VmHWM"))
        .unwrap_or(u64::MAX);
    let ru = u64::try_from(ru_maxrss_kib).unwrap_or(0);
    if ru > own {
        Some(polled.unwrap_or(0).max(ru))
    } else {
        polled
    }
}

fn tv(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
}

/// Makes `cmd`'s child enter a private mount namespace in which the cgroup2
/// mount of a hybrid host is lazily unmounted (crun refuses hybrid cgroups;
/// HOST-NOTES.md). Done between fork and exec: it costs microseconds, not a
/// wrapper process, and leaves this harness's namespace untouched.
pub fn enter_private_mount_ns_on_spawn(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let hook = || -> std::io::Result<()> {
        use nix::mount::{mount, umount2, MntFlags, MsFlags};
        use nix::sched::{unshare, CloneFlags};
        unshare(CloneFlags::CLONE_NEWNS).map_err(std::io::Error::from)?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(std::io::Error::from)?;
        // Not mounted (a pure v1 or v2 host): nothing to hide.
        let _ = umount2("/sys/fs/cgroup/unified", MntFlags::MNT_DETACH);
        Ok(())
    };
    // SAFETY: the hook runs in the forked child before exec and only makes
    // the unshare, mount and umount2 system calls (nix passes short paths on
    // the stack); it touches no lock or allocator state of the parent.
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// Runs `argv` to completion (killing it after `timeout`) and observes it.
/// With `private_mount_ns` the child first enters a private mount namespace
/// ([`enter_private_mount_ns_on_spawn`]). When a stdout line contains
/// `stop_on_line`, what is measured has happened: the process tree is killed
/// and the run counts as ended (for a peer that keeps running past that
/// point, e.g. QEMU after a Linux guest's init handoff on kvm_pvm).
pub fn run(
    argv: &[OsString],
    timeout: Duration,
    private_mount_ns: bool,
    stop_on_line: Option<&'static str>,
) -> Result<Observed, MeasureError> {
    let (program, args) = argv.split_first().ok_or(MeasureError::Empty)?;
    let name = program.to_string_lossy().into_owned();
    let mut cmd = Command::new(program);
    if private_mount_ns {
        enter_private_mount_ns_on_spawn(&mut cmd);
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let launch_monotonic_ns = monotonic_ns();
    let t0 = Instant::now();
    let mut child = cmd.spawn().map_err(|source| MeasureError::Spawn {
        program: name.clone(),
        source,
    })?;
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take();
    let stop_seen = Arc::new(AtomicBool::new(false));
    let reader_stop = stop_seen.clone();
    std::thread::spawn(move || {
        let Some(out) = stdout else { return };
        for line in BufReader::new(out).split(b'\n') {
            let Ok(line) = line else { break };
            let line = String::from_utf8_lossy(&line).into_owned();
            if stop_on_line.is_some_and(|m| line.contains(m)) {
                reader_stop.store(true, Ordering::SeqCst);
            }
            let _ = tx.send((t0.elapsed(), line));
        }
    });
    let stderr = child.stderr.take();
    let (etx, erx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut e) = stderr {
            let _ = e.read_to_end(&mut buf);
        }
        let _ = etx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    let mut poll = MemoryPoll {
        hwm: HashMap::new(),
        peak_pss: None,
        polls: 0,
    };
    let mut timed_out = false;
    let mut stopped = false;
    let (exit_code, usage) = loop {
        poll.sample(pid);
        match try_reap(pid) {
            Ok(Some(done)) => break done,
            Ok(None) => {}
            Err(source) => {
                return Err(MeasureError::Wait {
                    program: name,
                    pid,
                    source,
                })
            }
        }
        if !stopped && !timed_out {
            stopped = stop_seen.load(Ordering::SeqCst);
            timed_out = !stopped && t0.elapsed() > timeout;
            if stopped || timed_out {
                for p in tree(pid).into_iter().rev() {
                    let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
                }
            }
        }
        std::thread::sleep(POLL);
    };
    let total = t0.elapsed();
    let leftover = kill_leftovers(pid, poll.hwm.keys().copied());
    // A leftover grandchild may hold the pipes open: wait for the readers
    // only a little, never forever.
    let deadline = Instant::now() + DRAIN;
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            // The reader thread stamps a line when it gets to read it; on a
            // loaded machine that can be after this loop saw the exit, though
            // the tree wrote it before exiting: such a line is stamped with
            // the exit's time, never later.
            Ok((t, l)) => lines.push((t.min(total), l)),
            Err(_) => break,
        }
    }
    let left = deadline.saturating_duration_since(Instant::now());
    let stderr = erx.recv_timeout(left).unwrap_or_default();
    let observed = Observed {
        launch_monotonic_ns,
        total,
        exit_code,
        lines,
        stderr,
        peak_rss_kib: peak_rss(&poll, usage.ru_maxrss),
        peak_pss_kib: poll.peak_pss,
        leftover,
        cpu_user: tv(usage.ru_utime),
        cpu_sys: tv(usage.ru_stime),
    };
    if timed_out {
        return Err(MeasureError::Timeout {
            program: name,
            secs: timeout.as_secs(),
            tail: observed.tail(),
        });
    }
    Ok(observed)
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
    fn observes_a_real_process_tree() {
        // A shell that allocates ~32 MiB in a child and prints two lines.
        let argv: Vec<OsString> = [
            "/bin/sh",
            "-c",
            "echo first; head -c 33554432 /dev/zero | (x=$(cat | tr -d '\\000'); echo done); exit 3",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let o = run(&argv, Duration::from_secs(30), false, None).unwrap();
        assert_eq!(o.exit_code, 3);
        assert_eq!(o.lines.first().map(|(_, l)| l.as_str()), Some("first"));
        assert_eq!(o.last_line(), Some("done"));
        assert!(o.line_time("first") <= o.line_time("done"));
        assert!(o.total >= o.line_time("done").unwrap());
        assert!(o.launch_monotonic_ns > 0);
        // The tree's peak is at least a few MiB (several shells and the pipeline tools).
        assert!(o.peak_rss_kib.unwrap() > 1024, "{:?}", o.peak_rss_kib);
        assert!(o.cpu_user + o.cpu_sys > Duration::ZERO);
    }

    #[test]
    fn private_mount_ns_hides_the_cgroup2_mount_from_the_child_only() {
        let argv: Vec<OsString> = ["/bin/cat", "/proc/self/mounts"]
            .iter()
            .map(OsString::from)
            .collect();
        let o = run(&argv, Duration::from_secs(10), true, None).unwrap();
        assert_eq!(o.exit_code, 0, "{}", o.stderr);
        let unified = " /sys/fs/cgroup/unified ";
        assert!(!o.lines.iter().any(|(_, l)| l.contains(unified)));
        // This process keeps its own mounts (the change stayed in the child's namespace).
        let ours = std::fs::read_to_string("/proc/self/mounts").unwrap();
        let host_has_it = ours.contains(unified);
        let plain = run(&argv, Duration::from_secs(10), false, None).unwrap();
        assert_eq!(
            plain.lines.iter().any(|(_, l)| l.contains(unified)),
            host_has_it
        );
    }

    #[test]
    fn pids_after_the_root_include_those_past_a_wrap() {
        assert!(newer_than(500, 400, Some(600)));
        assert!(!newer_than(300, 400, Some(600)));
        assert!(!newer_than(700, 400, Some(600)));
        // Wrapped: 32760 was the root, the counter is now at 20.
        assert!(newer_than(32761, 32760, Some(20)));
        assert!(newer_than(7, 32760, Some(20)));
        assert!(!newer_than(21, 32760, Some(20)));
        assert!(newer_than(401, 400, None));
    }

    #[test]
    fn counts_and_kills_a_leftover_daemon() {
        // The shell starts a background sleeper and exits at once: a process
        // that outlives its launcher, as a daemon would.
        let argv: Vec<OsString> = ["/bin/sh", "-c", "sleep 30 & sleep 0.1; exit 0"]
            .iter()
            .map(OsString::from)
            .collect();
        let o = run(&argv, Duration::from_secs(10), false, None).unwrap();
        assert_eq!(o.leftover, 1);
        let plain: Vec<OsString> = ["/bin/sh", "-c", "sleep 0.05; exit 0"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(
            run(&plain, Duration::from_secs(10), false, None)
                .unwrap()
                .leftover,
            0
        );
    }

    #[test]
    fn peak_memory_of_a_grandchild_is_seen() {
        // A shell whose child touches 96 MiB and exits at once.
        let argv: Vec<OsString> = [
            "/bin/sh",
            "-c",
            "python3 -c \"x = b'a' * (96 << 20)\"; exit 0",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let o = run(&argv, Duration::from_secs(30), false, None).unwrap();
        assert_eq!(o.exit_code, 0, "{}", o.stderr);
        let kib = o.peak_rss_kib.unwrap();
        assert!(kib >= 96 * 1024, "peak {kib} KiB");
        assert!(kib < 400 * 1024, "peak {kib} KiB");
    }

    #[test]
    fn stops_at_the_marker_line() {
        let argv: Vec<OsString> = [
            "sh",
            "-c",
            "echo before; echo MARK here; sleep 30; echo after",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let t = Instant::now();
        let o = run(&argv, Duration::from_secs(20), false, Some("MARK")).unwrap();
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert!(o.line_time("MARK here").is_some());
        assert!(o.line_time("after").is_none());
    }

    #[test]
    fn kills_on_timeout() {
        let argv: Vec<OsString> = ["/bin/sleep", "30"].iter().map(OsString::from).collect();
        let t = Instant::now();
        let e = run(&argv, Duration::from_millis(200), false, None).unwrap_err();
        assert!(matches!(e, MeasureError::Timeout { .. }), "{e}");
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn missing_program_is_an_error() {
        let argv = vec![OsString::from("/nonexistent/vclab-nothing")];
        assert!(matches!(
            run(&argv, Duration::from_secs(1), false, None),
            Err(MeasureError::Spawn { .. })
        ));
        assert!(matches!(
            run(&[], Duration::from_secs(1), false, None),
            Err(MeasureError::Empty)
        ));
    }
}
