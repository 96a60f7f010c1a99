//! [`Spawned`]: one launched instance of a runtime, observed from outside.
//!
//! It carries a pidfd, the instance's stdout lines each stamped with the time
//! it reached the harness, a sampler of its own process tree (VmHWM, Pss) and
//! stop/kill. Three policies use it:
//! - *run to exit* ([`Spawned::run`] with [`Policy::RunToExit`]): `vclab compare`;
//! - *stop at a marker line* ([`Policy::StopAtMarker`]): what is measured has
//!   happened (a Linux guest's init handoff), the tree is killed;
//! - *hold* ([`Spawned::wait_for_line`], then [`Spawned::stop`]): ready, then
//!   kept alive until told to stop (density, the classroom demo).
//!
//! Every instance dies with the harness: its first process gets
//! `PR_SET_PDEATHSIG(SIGKILL)` (a runtime that forks on, like the container
//! launcher, passes the same on to its own children), and what outlives a
//! SIGKILLed harness anyway (OCI peers' containers, state directories) is
//! cleaned by the harness's guard process ([`guard`]). PDEATHSIG follows the
//! *thread* that spawned: spawn from a thread that lives as long as the
//! instance.
//!
//! The harness is a child subreaper, so a process an instance leaves behind
//! (a daemon) is re-parented here, counted as a leftover and killed.

mod child;
pub mod guard;
mod observed;
pub mod output;
pub mod tree;

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{ChildStderr, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub use child::enter_private_mount_ns_on_spawn;
use child::{become_subreaper, pidfd_open, pre_exec_hook, try_reap, tv};
pub use observed::{monotonic_ns, Observed};
use output::LinePipe;
use tree::TreeSampler;

/// How often a running instance's process tree is sampled.
pub const POLL: Duration = Duration::from_millis(2);
/// How long the output pipes may take to reach their end after the instance exits.
const DRAIN: Duration = Duration::from_secs(2);

/// Errors of one launched instance.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
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
    /// pidfd_open or the pipes' set-up failed.
    #[error("cannot watch {program} (pid {pid}): {source}")]
    Watch {
        /// The program.
        program: String,
        /// Its pid.
        pid: i32,
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
    /// The instance exited before printing the line waited for.
    #[error("{program} exited with status {code} before printing {marker:?}; its output ended with: {tail}")]
    ExitedEarly {
        /// The program.
        program: String,
        /// Its exit code (128 + N for signal N).
        code: i32,
        /// The line waited for.
        marker: String,
        /// The last output lines.
        tail: String,
    },
}

/// What to launch.
#[derive(Debug, Clone, Default)]
pub struct SpawnSpec {
    /// Program and arguments.
    pub argv: Vec<OsString>,
    /// Enter a private mount namespace without the cgroup2 mount first (crun on hybrid hosts).
    pub private_mount_ns: bool,
    /// Pin the instance to this CPU (`sched_setaffinity`; its children inherit it).
    pub cpu: Option<usize>,
}

/// When a run counts as ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// When the instance exits.
    RunToExit,
    /// When a stdout line contains the marker: what is measured has happened,
    /// the tree is killed (a peer that runs on past that point).
    StopAtMarker(&'static str),
}

/// How the instance ended.
#[derive(Debug, Clone, Copy)]
struct Exit {
    code: i32,
    at: Duration,
    usage: libc::rusage,
}

/// One launched instance. Dropping it kills its tree and reaps it.
#[derive(Debug)]
pub struct Spawned {
    program: String,
    pid: i32,
    pidfd: OwnedFd,
    launch_monotonic_ns: u64,
    t0: Instant,
    stdout: LinePipe<ChildStdout>,
    stderr: LinePipe<ChildStderr>,
    sampler: TreeSampler,
    exit: Option<Exit>,
}

impl Spawned {
    /// Launches `spec` with stdin from /dev/null and stdout, stderr piped.
    pub fn spawn(spec: &SpawnSpec) -> Result<Self, SpawnError> {
        use std::os::unix::process::CommandExt;
        let (program, args) = spec.argv.split_first().ok_or(SpawnError::Empty)?;
        let name = program.to_string_lossy().into_owned();
        become_subreaper();
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let hook = pre_exec_hook(nix::unistd::getpid(), spec.private_mount_ns, spec.cpu);
        // SAFETY: the hook runs in the forked child before exec and only makes
        // system calls (prctl, getppid, rt_sigaction, sched_setaffinity,
        // unshare, mount, umount2) with arguments on its stack; it takes no
        // lock and does not allocate.
        unsafe {
            cmd.pre_exec(hook);
        }
        let launch_monotonic_ns = monotonic_ns();
        let t0 = Instant::now();
        let mut child = cmd.spawn().map_err(|source| SpawnError::Spawn {
            program: name.clone(),
            source,
        })?;
        let pid = child.id() as i32;
        let watch = |source| SpawnError::Watch {
            program: name.clone(),
            pid,
            source,
        };
        let pidfd = pidfd_open(pid).map_err(watch)?;
        let stdout = LinePipe::new(child.stdout.take()).map_err(watch)?;
        let stderr = LinePipe::new(child.stderr.take()).map_err(watch)?;
        Ok(Spawned {
            program: name,
            pid,
            pidfd,
            launch_monotonic_ns,
            t0,
            stdout,
            stderr,
            sampler: TreeSampler::default(),
            exit: None,
        })
    }

    /// The instance's first process.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// CLOCK_MONOTONIC just before the spawn, ns.
    pub fn launch_monotonic_ns(&self) -> u64 {
        self.launch_monotonic_ns
    }

    /// The stdout lines read so far, with their time since launch.
    pub fn lines(&self) -> &[(Duration, String)] {
        &self.stdout.lines
    }

    /// Whether the first process has exited (and been reaped).
    pub fn exited(&self) -> bool {
        self.exit.is_some()
    }

    /// The tree's memory so far.
    pub fn sampler(&self) -> &TreeSampler {
        &self.sampler
    }

    /// Samples the instance's process tree once (no-op after its exit).
    pub fn sample(&mut self) {
        if self.exit.is_none() {
            self.sampler.sample(self.pid);
        }
    }

    /// Samples the tree with Pss now (no-op after its exit).
    pub fn sample_full(&mut self) {
        if self.exit.is_none() {
            self.sampler.sample_full(self.pid);
        }
    }

    /// Waits up to `wait` for output or the exit, reads what arrived and
    /// reaps the instance if it exited. Returns the number of new stdout lines.
    pub fn poll(&mut self, wait: Duration) -> Result<usize, SpawnError> {
        let mut fds = vec![libc::pollfd {
            fd: self.pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        for fd in [self.stdout.raw_fd(), self.stderr.raw_fd()]
            .into_iter()
            .flatten()
        {
            fds.push(libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        if self.exit.is_some() {
            fds.remove(0);
        }
        let ms = wait.as_millis().min(i32::MAX as u128) as i32;
        if !fds.is_empty() {
            // SAFETY: `fds` is a valid, writable array of `fds.len()` pollfd
            // structs that lives across the call; every fd in it is open.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        } else {
            std::thread::sleep(wait);
        }
        let now = self.t0.elapsed();
        let new = self.stdout.read_available(now);
        self.stderr.read_available(now);
        if self.exit.is_none() {
            let reaped = try_reap(self.pid).map_err(|source| SpawnError::Wait {
                program: self.program.clone(),
                pid: self.pid,
                source,
            })?;
            if let Some((code, usage)) = reaped {
                self.exit = Some(Exit {
                    code,
                    at: now,
                    usage,
                });
            }
        }
        Ok(new)
    }

    /// Keeps polling and sampling until a stdout line contains `marker`;
    /// returns that line's time since launch. The instance keeps running (hold).
    pub fn wait_for_line(
        &mut self,
        marker: &str,
        timeout: Duration,
    ) -> Result<Duration, SpawnError> {
        let mut checked = 0;
        loop {
            if let Some((t, _)) = self.stdout.lines[checked..]
                .iter()
                .find(|(_, l)| l.contains(marker))
            {
                return Ok(*t);
            }
            checked = self.stdout.lines.len();
            if let Some(exit) = self.exit {
                return Err(SpawnError::ExitedEarly {
                    program: self.program.clone(),
                    code: exit.code,
                    marker: marker.to_string(),
                    tail: self.tail(),
                });
            }
            if self.t0.elapsed() > timeout {
                return Err(SpawnError::Timeout {
                    program: self.program.clone(),
                    secs: timeout.as_secs(),
                    tail: self.tail(),
                });
            }
            self.sample();
            self.poll(POLL)?;
        }
    }

    fn tail(&self) -> String {
        let mut lines: Vec<&str> = self.stdout.lines.iter().map(|(_, l)| l.as_str()).collect();
        lines.extend(self.stderr.lines.iter().map(|(_, l)| l.as_str()));
        let start = lines.len().saturating_sub(4);
        lines[start..].join(" | ")
    }

    /// Sends `sig` to every process of the tree, leaves first.
    pub fn signal_tree(&self, sig: Signal) {
        if self.exit.is_some() {
            return;
        }
        for p in tree::tree(self.pid).into_iter().rev() {
            let _ = kill(Pid::from_raw(p), sig);
        }
    }

    /// Sends `sig` to the first process only (a launcher that forwards it).
    pub fn signal(&self, sig: Signal) {
        if self.exit.is_none() {
            let _ = kill(Pid::from_raw(self.pid), sig);
        }
    }

    /// Polls (sampling the tree) until the instance exits or `deadline` passes; true if it exited.
    fn wait_exit(&mut self, deadline: Instant) -> Result<bool, SpawnError> {
        while self.exit.is_none() {
            if Instant::now() >= deadline {
                return Ok(false);
            }
            self.sample();
            self.poll(POLL)?;
        }
        Ok(true)
    }

    /// Runs the instance to the end under `policy`, killing it after `timeout`.
    pub fn run(mut self, policy: Policy, timeout: Duration) -> Result<Observed, SpawnError> {
        let deadline = self.t0 + timeout;
        let mut checked = 0;
        let mut timed_out = false;
        while self.exit.is_none() {
            self.sample();
            self.poll(POLL)?;
            if let Policy::StopAtMarker(marker) = policy {
                if self.stdout.lines[checked..]
                    .iter()
                    .any(|(_, l)| l.contains(marker))
                {
                    self.signal_tree(Signal::SIGKILL);
                    self.wait_exit(Instant::now() + DRAIN)?;
                    break;
                }
                checked = self.stdout.lines.len();
            }
            if Instant::now() > deadline {
                timed_out = true;
                self.signal_tree(Signal::SIGKILL);
                self.wait_exit(Instant::now() + DRAIN)?;
                break;
            }
        }
        let observed = self.finish();
        if timed_out {
            return Err(SpawnError::Timeout {
                program: self.program.clone(),
                secs: timeout.as_secs(),
                tail: observed.tail(),
            });
        }
        Ok(observed)
    }

    /// Stops a held instance: `sig` to its first process, up to `grace` to
    /// exit, then SIGKILL to the whole tree.
    pub fn stop(mut self, sig: Signal, grace: Duration) -> Result<Observed, SpawnError> {
        self.signal(sig);
        if !self.wait_exit(Instant::now() + grace)? {
            self.signal_tree(Signal::SIGKILL);
            self.wait_exit(Instant::now() + DRAIN)?;
        }
        Ok(self.finish())
    }

    /// After the exit: kills and counts leftovers, drains the pipes, and says what was seen.
    fn finish(&mut self) -> Observed {
        let (code, at, usage) = match self.exit {
            Some(e) => (e.code, e.at, Some(e.usage)),
            None => (-1, self.t0.elapsed(), None),
        };
        let leftover = self.kill_leftovers();
        let deadline = Instant::now() + DRAIN;
        while !(self.stdout.at_end() && self.stderr.at_end()) && Instant::now() < deadline {
            let _ = self.poll(POLL);
        }
        self.stdout.close();
        self.stderr.close();
        // A line read after the exit was written before it: it is stamped
        // with the exit's time, never later.
        let lines = std::mem::take(&mut self.stdout.lines)
            .into_iter()
            .map(|(t, l)| (t.min(at), l))
            .collect();
        let stderr = self
            .stderr
            .lines
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        Observed {
            launch_monotonic_ns: self.launch_monotonic_ns,
            total: at,
            exit_code: code,
            lines,
            stderr,
            peak_rss_kib: peak_rss(&self.sampler, usage.map_or(0, |u| u.ru_maxrss)),
            peak_pss_kib: self.sampler.peak_pss,
            leftover,
            cpu_user: usage.map_or(Duration::ZERO, |u| tv(u.ru_utime)),
            cpu_sys: usage.map_or(Duration::ZERO, |u| tv(u.ru_stime)),
        }
    }

    /// Kills the processes seen in the tree that outlived its first process
    /// (now children of this subreaper or of init) and returns how many there were.
    fn kill_leftovers(&mut self) -> u32 {
        let me = nix::unistd::getpid().as_raw();
        let mut n = 0;
        let seen: Vec<i32> = self.sampler.hwm.keys().copied().collect();
        for pid in seen.into_iter().filter(|p| *p != self.pid) {
            // A pid recycled within the run is not a child of ours or of init
            // unless it is an orphan too; a zombie of ours is only reaped.
            let Some(ppid) = tree::ppid(pid) else {
                continue;
            };
            if ppid != me && ppid != 1 {
                continue;
            }
            if tree::state(pid) != Some('Z') {
                n += 1;
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            if ppid == me {
                let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
            }
        }
        n
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if self.exit.is_none() {
            self.signal_tree(Signal::SIGKILL);
            let _ = self.wait_exit(Instant::now() + DRAIN);
            self.kill_leftovers();
        }
    }
}

/// The tree's peak RSS: the sampled VmHWM sum, raised to wait4's `ru_maxrss`
/// (the largest single process of the tree) when a sample missed a short-lived
/// peak. `ru_maxrss` counts only when it exceeds this harness's own VmHWM:
/// below that it may be the value a child inherits at exec (HOST-NOTES.md).
fn peak_rss(sampler: &TreeSampler, ru_maxrss_kib: libc::c_long) -> Option<u64> {
    let polled = sampler.hwm_sum();
    let own = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| tree::kib_field(&s, "VmHWM"))
        .unwrap_or(u64::MAX);
    let ru = u64::try_from(ru_maxrss_kib).unwrap_or(0);
    if ru > own {
        Some(polled.unwrap_or(0).max(ru))
    } else {
        polled
    }
}

#[cfg(test)]
mod tests;
