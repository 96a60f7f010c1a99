//! The process model: launcher (parent) → container PID 1 (child) → with
//! `--init`, the workload (grandchild) under a tiny reaping init.
//!
//! Sequence, with the ordering constraints it enforces:
//! 1. The parent blocks the forwarded signals (so a Ctrl-C during set-up is
//!    kept pending, not fatal) and opens three close-on-exec pipes: `sync`
//!    (parent → child), `err` (child → parent: a set-up or exec error, EOF
//!    on a successful exec) and `status` (init → parent: the workload's wait
//!    status).
//! 2. On cgroup v2, `clone3` with the namespace flags and `CLONE_INTO_CGROUP`:
//!    the child is born in its cgroup. Otherwise (v1 and hybrid controllers,
//!    or a kernel or seccomp filter that refuses it) `clone` with the same
//!    flags. The child blocks on `sync`.
//! 3. The parent writes the uid/gid maps (rootless) and releases the child
//!    once; while the child builds its root file system the parent puts it
//!    into its cgroup unless it was born there (a v1 migration waits for an
//!    RCU grace period: 7–11 ms for the first controller on the lab host),
//!    then releases it a second time: the child is in its cgroup before it
//!    unshares its cgroup namespace and execs.
//! 4. The child: parent-death signal; every inherited descriptor closed but
//!    its pipes, FIFO and console socket (CVE-2024-21626); new session,
//!    hostname, loopback, mounts and `pivot_root`, cwd (which must lie under
//!    the new root); (second release) cgroup namespace, bounding set,
//!    uid/gid (last of the identity changes, with keep-caps), capsets,
//!    no_new_privs, the seccomp filter the parent compiled, then exec (or,
//!    with `--init`, start the workload and reap). The filter goes in right
//!    before `execve` (or before the init forks the workload); without
//!    no_new_privs it goes in before the uid/gid change instead, while
//!    CAP_SYS_ADMIN is still held, as runc does.
//!    With `process.terminal` the child opens a pty in its devpts after its
//!    mounts and sends the master to the parent or the console socket.
//! 5. An attached run: the parent waits on a pidfd and a signalfd: signals
//!    are forwarded, a second SIGINT/SIGTERM kills the container; the pty,
//!    if any, is relayed. A created container instead tells the parent it is
//!    ready ('P' on the error pipe, after checking that the command exists),
//!    waits for the parent's commit (third release), clears its parent-death
//!    signal, confirms ('R'), and blocks opening its `exec.fifo` for writing
//!    until `start` opens it for reading; then it execs. The parent exits.
//!
//! Everything the child needs is prepared by the parent (C strings, paths,
//! the mount plan), so the child does little more than system calls.

use std::ffi::CString;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{Gid, Pid, Uid};

use crate::caps::{self, CapSet};
use crate::cgroups::Placement;
use crate::rootfs::{self, MountStep};

/// Errors of the process module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A pipe could not be created.
    #[error("cannot create the {0} pipe: {1}")]
    Pipe(&'static str, Errno),
    /// The signal mask or signalfd could not be set up.
    #[error("cannot set up signal handling ({0}): {1}")]
    Signals(&'static str, Errno),
    /// `clone` failed.
    #[error("cannot create the container process (clone with new namespaces): {0} (are you root, or are user namespaces enabled?)")]
    Clone(Errno),
    /// A uid/gid map could not be written.
    #[error("cannot write {path}: {source}")]
    IdMap {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The release byte could not be sent to the child.
    #[error("cannot release the container process (sync pipe): {0}")]
    Sync(Errno),
    /// Waiting for the container failed.
    #[error("cannot wait for the container process: {0}")]
    Wait(Errno),
    /// The container's set-up failed inside the child.
    #[error("container set-up failed: {0}")]
    Setup(String),
    /// The command does not exist in the container.
    #[error("{0}")]
    NotFound(String),
    /// The command exists but cannot be executed.
    #[error("{0}")]
    NotExecutable(String),
    /// The cgroup placement failed.
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::Error),
}

/// Signals the launcher forwards to the container.
pub const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

fn forwarded_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set
}

/// Blocks the forwarded signals in the calling thread, for good: the CLI calls
/// it first, so that a signal sent during set-up (also one a non-interactive
/// shell's background job has ignored) stays pending, across the re-exec,
/// until [`SignalGuard`] reads it, instead of being lost.
pub fn block_forwarded() -> Result<(), Error> {
    forwarded_set()
        .thread_block()
        .map_err(|e| Error::Signals("block", e))
}

/// Blocks the forwarded signals in the calling thread and restores the old
/// mask when dropped, after draining what arrived meanwhile.
pub struct SignalGuard {
    old: SigSet,
    fd: SignalFd,
}

impl SignalGuard {
    /// Blocks the forwarded signals and opens a signalfd for them.
    pub fn new() -> Result<Self, Error> {
        let set = forwarded_set();
        let mut old = set
            .thread_swap_mask(SigmaskHow::SIG_BLOCK)
            .map_err(|e| Error::Signals("block", e))?;
        // The mask the container's process starts with (and this thread's
        // after the run): the forwarded signals deliverable, whether they
        // were blocked by `block_forwarded` or inherited blocked.
        for s in FORWARDED {
            old.remove(s);
        }
        let fd = match SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = old.thread_set_mask();
                return Err(Error::Signals("signalfd", e));
            }
        };
        Ok(SignalGuard { old, fd })
    }

    /// The first forwarded signal that arrived and was not read yet, if any
    /// (each of them would have ended the launcher had it not been blocked).
    pub fn stop_requested(&self) -> Option<Signal> {
        let info = self.fd.read_signal().ok()??;
        Signal::try_from(i32::try_from(info.ssi_signo).ok()?).ok()
    }
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        while let Ok(Some(_)) = self.fd.read_signal() {}
        let _ = self.old.thread_set_mask();
    }
}

/// Everything the child needs, prepared by the parent.
#[derive(Debug)]
pub struct ChildSetup {
    /// Namespaces unshared after the cgroup placement.
    pub unshare_later: CloneFlags,
    /// Host name to set.
    pub hostname: Option<String>,
    /// Bring loopback up (a new network namespace).
    pub loopback: bool,
    /// The mount plan.
    pub mounts: Vec<MountStep>,
    /// Working directory.
    pub cwd: PathBuf,
    /// User.
    pub uid: Uid,
    /// Group.
    pub gid: Gid,
    /// Supplementary groups (skipped when rootless).
    pub groups: Vec<libc::gid_t>,
    /// Rootless mode (setgroups is denied).
    pub rootless: bool,
    /// Capabilities kept.
    pub caps: CapSet,
    /// Set no_new_privs.
    pub no_new_privs: bool,
    /// Run a reaping init as PID 1.
    pub init: bool,
    /// argv.
    pub argv: Vec<CString>,
    /// envp.
    pub envp: Vec<CString>,
    /// Paths to try for `argv[0]` (PATH resolved in the container).
    pub candidates: Vec<CString>,
    /// `argv[0]` for messages.
    pub command: String,
    /// `process.terminal`: the socket to send the pty master on (the
    /// console socket's connection, or the relay pair's container end).
    pub console: Option<std::os::fd::RawFd>,
    /// A created container: `/proc/self/fd/N` of the `O_PATH` descriptor of
    /// its `exec.fifo`, opened for writing (blocking) before the exec.
    pub fifo: Option<CString>,
    /// That descriptor (N).
    pub fifo_fd: Option<std::os::fd::RawFd>,
    /// A created container (no launcher waits for it).
    pub detached: bool,
    /// The seccomp filter, built by the parent; installed last before the
    /// exec, or (without no_new_privs) before the identity changes, while
    /// CAP_SYS_ADMIN is still held.
    pub seccomp: Option<crate::seccomp::Filter>,
}

/// How the container ended.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// CLOCK_MONOTONIC when the workload's exec succeeded.
    pub exec_ns: u64,
    /// CLOCK_MONOTONIC when the container was reaped.
    pub exit_ns: u64,
    /// Exit code as a shell reports it (128+N for signal N).
    pub exit_code: i32,
    /// The signal that ended the workload, if any.
    pub signal: Option<i32>,
    /// How the child got into its cgroup.
    pub placement: Placement,
    /// Time the parent spent migrating the child into its cgroup (writing
    /// `cgroup.procs`), ns; 0 when it was born there or there is no cgroup.
    pub cgroup_attach_ns: u64,
}

/// CLOCK_MONOTONIC in nanoseconds.
pub fn monotonic_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .unwrap_or_else(|_| nix::sys::time::TimeSpec::new(0, 0));
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

fn pipe(name: &'static str) -> Result<(OwnedFd, OwnedFd), Error> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::Pipe(name, e))
}

/// Kills and reaps the child unless disarmed.
struct ChildGuard(Option<Pid>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
    }
}

const STACK_SIZE: usize = 256 * 1024;

/// `struct clone_args` of `clone3(2)` up to `cgroup` (`CLONE_ARGS_SIZE_VER2`,
/// Linux 5.7), declared here because libc has it for a few architectures only.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP` (include/uapi/linux/sched.h, Linux 5.7).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// What `clone3` returned: in the parent the child's pid, in the child 0.
enum Forked {
    Parent(Pid),
    Child,
}

/// `clone3` with `flags` and `CLONE_INTO_CGROUP` into the cgroup directory
/// `cgroup`, SIGCHLD at exit, no new stack: like `fork`, the child continues
/// from this call on a copy of the caller's stack and address space.
///
/// The caller's child branch must only make async-signal-safe calls (it may
/// have been cloned from a multi-threaded process) and end in `_exit`.
fn clone_into_cgroup(flags: CloneFlags, cgroup: &OwnedFd) -> Result<Forked, Errno> {
    use std::os::fd::AsRawFd;
    let args = CloneArgs {
        flags: flags.bits() as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: `args` is a valid clone_args of the size passed, alive for the
    // call; it names no stack, TLS, tid or pidfd pointers, so the kernel
    // writes no memory of ours. Without CLONE_VM and with a zero stack the
    // child gets a private copy of the address space and of this thread's
    // stack (fork semantics) and returns 0 from the raw system call, which
    // runs no at-fork handlers; the only thread it has is this one, which the
    // caller's child branch accounts for (async-signal-safe calls, `_exit`).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match rc {
        0 => Ok(Forked::Child),
        pid if pid > 0 => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
        _ => Err(Errno::last()),
    }
}

/// Whether a `clone3`/`CLONE_INTO_CGROUP` error means "not this way" rather
/// than "no process can be made": no clone3 (ENOSYS: Linux < 5.3, or a
/// seccomp profile such as Docker's), an unknown flag or too big an argument
/// (EINVAL, E2BIG: Linux < 5.7), a cgroup that cannot take a process at birth
/// (EOPNOTSUPP: threaded or domain-invalid; EBUSY: it has children with
/// controllers; EBADF: not a v2 cgroup), a permission a filter or the cgroup
/// denies (EPERM, EACCES). Then `clone` and a `cgroup.procs` write follow,
/// which report a persisting problem with the cgroup's path. Resource errors
/// (EAGAIN, ENOMEM, ENOSPC) fail the launch.
fn clone3_refused(e: Errno) -> bool {
    matches!(
        e,
        Errno::ENOSYS
            | Errno::EINVAL
            | Errno::E2BIG
            | Errno::EOPNOTSUPP
            | Errno::EBUSY
            | Errno::EBADF
            | Errno::EPERM
            | Errno::EACCES
    )
}

/// The container's first process, cloned and held at the first release:
/// it is in its namespaces and has done nothing else yet. Dropping it kills
/// and reaps it. [`Child::start`] lets it build its root and reach the
/// exec; then [`Child::wait`] (an attached run) or [`Child::commit`] (a
/// created container, which waits for `start` on its FIFO).
pub struct Child {
    pid: Pid,
    guard: ChildGuard,
    born: bool,
    sync_w: OwnedFd,
    err_r: OwnedFd,
    st_r: OwnedFd,
    init: bool,
    detached: bool,
    rootless: bool,
}

/// What [`Child::start`] saw.
#[derive(Debug, Clone, Copy)]
pub struct Started {
    /// CLOCK_MONOTONIC when the workload's exec succeeded (attached) or the
    /// container was ready to wait for `start` (detached).
    pub exec_ns: u64,
    /// How the child got into its cgroup.
    pub placement: Placement,
    /// Time spent migrating it (0 when born there or no cgroup).
    pub cgroup_attach_ns: u64,
}

/// Clones the container's first process into its namespaces (and, on
/// cgroup v2, into its cgroup); it blocks until [`Child::start`].
pub fn clone_child(
    setup: &ChildSetup,
    clone_flags: CloneFlags,
    cgroup: &crate::cgroups::Cgroup,
    signals: &SignalGuard,
) -> Result<Child, Error> {
    let (sync_r, sync_w) = pipe("sync")?;
    let (err_r, err_w) = pipe("error")?;
    let (st_r, st_w) = pipe("status")?;
    // The child keeps its ends and closes the parent's (the closure runs in
    // the child's copy of this memory; the parent's copies stay open).
    let mut parent_ends = Some((sync_w, err_r, st_r));
    let mut child_ends = Some((sync_r, err_w, st_w));
    let old_mask = signals.old;
    let exec = ExecArrays::new(setup);
    let mut cb: nix::sched::CloneCb<'_> = Box::new(|| {
        drop(parent_ends.take());
        let Some((sync_r, err_w, st_w)) = child_ends.take() else {
            return 1;
        };
        let io = ChildIo {
            err_w: Some(err_w),
            st_w: (!setup.detached).then_some(st_w),
            old_mask: &old_mask,
            exec: &exec,
        };
        child_main(setup, sync_r, io)
    });
    // Born in the cgroup when the hierarchy (v2) and the kernel allow it.
    let mut born = None;
    if let Some(fd) = cgroup.clone_into_fd() {
        match clone_into_cgroup(clone_flags, &fd) {
            Ok(Forked::Child) => {
                // The container must not keep a handle on a host cgroup
                // directory: with --init, PID 1 never execs (close-on-exec
                // would not close it) and the workload could reach it
                // through /proc/1/fd.
                drop(fd);
                let code = cb();
                // SAFETY: _exit is async-signal-safe and ends this child
                // without unwinding into the parent's copied frames, as the
                // `clone` path's trampoline does after the callback.
                unsafe { libc::_exit(code as i32) }
            }
            Ok(Forked::Parent(pid)) => born = Some(pid),
            Err(e) if clone3_refused(e) => {
                log::debug!("clone3 with CLONE_INTO_CGROUP refused ({e}): cloning, then migrating");
            }
            Err(e) => return Err(Error::Clone(e)),
        }
    }
    let pid = match born {
        Some(pid) => {
            drop(cb);
            pid
        }
        None => {
            let mut stack = vec![0u8; STACK_SIZE];
            // SAFETY: the child runs on `stack` (256 KiB, ample for
            // child_main, which only makes system calls and small stack
            // frames) in its own copy of the address space (no CLONE_VM); it
            // execs or exits and never returns into the parent's frames.
            unsafe { nix::sched::clone(cb, &mut stack, clone_flags, Some(libc::SIGCHLD)) }
                .map_err(Error::Clone)?
        }
    };
    let guard = ChildGuard(Some(pid));
    drop(child_ends.take());
    let Some((sync_w, err_r, st_r)) = parent_ends.take() else {
        return Err(Error::Sync(Errno::EBADF));
    };
    Ok(Child {
        pid,
        guard,
        born: born.is_some(),
        sync_w,
        err_r,
        st_r,
        init: setup.init,
        detached: setup.detached,
        rootless: setup.rootless,
    })
}

/// Reads the error pipe: EOF (`Ok(None)`), one ready byte `want`
/// (`Ok(Some)`), or the child's error message.
fn read_child(err_r: &OwnedFd, want: Option<u8>) -> Result<Option<u8>, Error> {
    let mut buf = [0u8; 1024];
    let mut len = 0;
    loop {
        match nix::unistd::read(err_r, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if len == buf.len() || (len == 1 && Some(buf[0]) == want) {
                    break;
                }
            }
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    if len == 0 {
        return Ok(None);
    }
    if len == 1 && Some(buf[0]) == want {
        return Ok(want);
    }
    let msg = String::from_utf8_lossy(&buf[1..len]).trim_end().to_string();
    Err(match buf[0] {
        b'N' => Error::NotFound(msg),
        b'X' => Error::NotExecutable(msg),
        _ => Error::Setup(msg),
    })
}

impl Child {
    /// The child's pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Releases the child: it builds its root file system while the parent
    /// puts it into its cgroup (unless it was born there; a v1 migration
    /// waits for an RCU grace period, milliseconds), then, placed, it
    /// unshares its cgroup namespace, drops privileges and execs (attached;
    /// this returns at the exec) or reports that it is ready to wait for
    /// `start` (detached).
    pub fn start(&mut self, cgroup: &crate::cgroups::Cgroup) -> Result<Started, Error> {
        if self.rootless {
            write_id_maps(self.pid)?;
        }
        nix::unistd::write(&self.sync_w, b"1").map_err(Error::Sync)?;
        let (placed, placement, cgroup_attach_ns) = match (self.born, cgroup) {
            (true, _) => (Ok(()), Placement::CloneInto, 0),
            (false, crate::cgroups::Cgroup::None) => (Ok(()), Placement::None, 0),
            (false, _) => {
                let start = monotonic_ns();
                let placed = cgroup.add(self.pid.as_raw());
                let took = monotonic_ns().saturating_sub(start);
                (placed, Placement::Migrated, took)
            }
        };
        // Second release: placed, the child may unshare its cgroup namespace
        // and exec. On failure the pipe closes and the child exits.
        let released = placed.is_ok() && nix::unistd::write(&self.sync_w, b"2").is_ok();
        // EOF on the error pipe: the workload exec'd (attached); 'P': ready
        // (detached). Data: a set-up error.
        let want = self.detached.then_some(b'P');
        match read_child(&self.err_r, want) {
            Ok(got) => {
                placed?;
                if !released || got != want {
                    return Err(Error::Sync(Errno::EPIPE));
                }
            }
            Err(e) => {
                let _ = waitpid(self.pid, None);
                self.guard.0 = None;
                return Err(e);
            }
        }
        Ok(Started {
            exec_ns: monotonic_ns(),
            placement,
            cgroup_attach_ns,
        })
    }

    /// A created container: lets it go. It clears its parent-death signal
    /// (it outlives this process), confirms, and blocks on its FIFO until
    /// `start`. Until the confirmation it dies with this process.
    pub fn commit(mut self) -> Result<(), Error> {
        nix::unistd::write(&self.sync_w, b"3").map_err(Error::Sync)?;
        match read_child(&self.err_r, Some(b'R'))? {
            Some(b'R') => {
                self.guard.0 = None;
                Ok(())
            }
            _ => Err(Error::Setup(
                "the container's process exited before it was created".into(),
            )),
        }
    }

    /// An attached run: waits for the container (forwarding signals,
    /// relaying its pty when there is one) and returns (exit time, exit
    /// code, signal).
    pub fn wait(
        mut self,
        signals: &SignalGuard,
        relay: Option<&mut crate::console::Relay>,
    ) -> Result<(u64, i32, Option<i32>), Error> {
        let status = wait_forwarding(self.pid, signals, relay)?;
        self.guard.0 = None;
        let exit_ns = monotonic_ns();
        let (mut exit_code, mut signal) = decode(status);
        if self.init {
            let mut st = [0u8; 8];
            if let Ok(8) = nix::unistd::read(&self.st_r, &mut st) {
                let code = i32::from_le_bytes([st[0], st[1], st[2], st[3]]);
                let sig = i32::from_le_bytes([st[4], st[5], st[6], st[7]]);
                exit_code = code;
                signal = (sig != 0).then_some(sig);
            }
        }
        Ok((exit_ns, exit_code, signal))
    }
}

fn decode(status: WaitStatus) -> (i32, Option<i32>) {
    match status {
        WaitStatus::Exited(_, code) => (code, None),
        WaitStatus::Signaled(_, sig, _) => (128 + sig as i32, Some(sig as i32)),
        _ => (255, None),
    }
}

fn write_id_maps(pid: Pid) -> Result<(), Error> {
    let uid = nix::unistd::geteuid();
    let gid = nix::unistd::getegid();
    let base = PathBuf::from(format!("/proc/{pid}"));
    for (file, text) in [
        ("uid_map", format!("0 {uid} 1\n")),
        ("setgroups", "deny\n".to_string()),
        ("gid_map", format!("0 {gid} 1\n")),
    ] {
        let path = base.join(file);
        std::fs::write(&path, text).map_err(|source| Error::IdMap { path, source })?;
    }
    Ok(())
}

/// Waits for `pid` on a pidfd (SIGCHLD may go to another thread of a
/// multi-threaded caller), forwarding signals that arrive meanwhile and
/// relaying the container's pty when there is one.
fn wait_forwarding(
    pid: Pid,
    signals: &SignalGuard,
    mut relay: Option<&mut crate::console::Relay>,
) -> Result<WaitStatus, Error> {
    // SAFETY: pidfd_open takes a pid and flags, no pointers.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if raw < 0 {
        // Without pidfds (Linux < 5.3) fall back to a plain blocking wait.
        return waitpid(pid, None).map_err(Error::Wait);
    }
    // SAFETY: `raw` is a new file descriptor owned by nobody else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    let mut stops = 0;
    let mut output_open = true;
    let stdin = std::io::stdin();
    loop {
        let mut fds = vec![
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.fd.as_fd(), PollFlags::POLLIN),
        ];
        if let Some(r) = relay.as_deref() {
            if output_open {
                fds.push(PollFd::new(r.master(), PollFlags::POLLIN));
            }
            if r.stdin_open() {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match nix::poll::poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::Wait(e)),
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (out_ready, in_ready) = match relay.as_deref() {
            Some(r) if output_open => (ready(2), r.stdin_open() && ready(3)),
            Some(r) => (false, r.stdin_open() && ready(2)),
            None => (false, false),
        };
        drop(fds);
        if let Some(r) = relay.as_deref_mut() {
            if out_ready {
                output_open = r.pump_output();
            }
            if in_ready {
                r.pump_input();
            }
        }
        while let Ok(Some(info)) = signals.fd.read_signal() {
            let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                continue;
            };
            if matches!(sig, Signal::SIGINT | Signal::SIGTERM) {
                stops += 1;
            }
            let send = if stops >= 2 { Signal::SIGKILL } else { sig };
            let _ = kill(pid, send);
        }
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => continue,
            Ok(status) => {
                if let Some(r) = relay {
                    if output_open {
                        r.drain();
                    }
                }
                return Ok(status);
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::Wait(e)),
        }
    }
}

// ---- child side ----
//
// The child may have been cloned from a multi-threaded process (a test
// harness, the compare harness): a lock another thread held at that moment
// (the allocator's, for one) stays locked forever in the child. So nothing
// below allocates: messages are formatted into a stack buffer, exec uses
// pointer arrays the parent built, and the `--init` workload is started with
// a bare fork.

/// Pointer arrays for `execve`, built by the parent.
pub(crate) struct ExecArrays {
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

impl ExecArrays {
    fn new(setup: &ChildSetup) -> Self {
        let nul = |v: &[CString]| {
            v.iter()
                .map(|c| c.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        ExecArrays {
            argv: nul(&setup.argv),
            envp: nul(&setup.envp),
        }
    }
}

/// What went wrong in the child, without owning (allocating) anything.
enum ChildError<'a> {
    Sys(&'static str, Errno),
    Path(&'static str, &'a std::path::Path, Errno),
    Mount(rootfs::StepError<'a>),
    Caps(caps::Error),
    Net(crate::net::Error),
    NotFound(&'a str),
    NotExecutable(&'a str, Errno),
    CwdOutside(&'a std::path::Path),
}

impl std::fmt::Display for ChildError<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChildError::Sys(what, e) => write!(f, "cannot {what}: {e}"),
            ChildError::Path(what, p, e) => write!(f, "cannot {what} {}: {e}", p.display()),
            ChildError::Mount(e) => e.fmt(f),
            ChildError::Caps(e) => e.fmt(f),
            ChildError::Net(e) => e.fmt(f),
            ChildError::NotFound(cmd) => write!(
                f,
                "command not found in the container: {cmd} (is it in the rootfs and on PATH?)"
            ),
            ChildError::NotExecutable(cmd, e) => {
                write!(f, "cannot execute {cmd} in the container: {e}")
            }
            ChildError::CwdOutside(p) => write!(
                f,
                "the working directory {} is outside the container's root: give a path inside it",
                p.display()
            ),
        }
    }
}

/// A fixed buffer that `write!` fills, truncating.
struct StackBuf {
    buf: [u8; 1024],
    len: usize,
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Writes a one-line error for the parent: a kind byte, then the message.
fn report(err_w: &OwnedFd, err: &ChildError<'_>) {
    use std::fmt::Write;
    let kind = match err {
        ChildError::NotFound(_) => b'N',
        ChildError::NotExecutable(..) => b'X',
        _ => b'S',
    };
    let mut out = StackBuf {
        buf: [0; 1024],
        len: 1,
    };
    out.buf[0] = kind;
    let _ = write!(out, "{err}");
    let _ = nix::unistd::write(err_w, &out.buf[..out.len]);
}

struct ChildIo<'a> {
    /// The error pipe; `None` once a created container no longer has a
    /// launcher reading it (errors then go to its stderr).
    err_w: Option<OwnedFd>,
    /// The `--init` status pipe (attached runs only).
    st_w: Option<OwnedFd>,
    old_mask: &'a SigSet,
    exec: &'a ExecArrays,
}

/// Sends a child error to the launcher (the error pipe) or, without one, to
/// stderr as a `vclab: ...` line.
fn report_to(err_w: Option<&OwnedFd>, err: &ChildError<'_>) {
    match err_w {
        Some(fd) => report(fd, err),
        None => {
            use std::fmt::Write;
            let mut out = StackBuf {
                buf: [0; 1024],
                len: 0,
            };
            let _ = writeln!(out, "vclab: {err}");
            // SAFETY: fd 2 is this process's stderr; BorrowedFd does not close it.
            let stderr = unsafe { std::os::fd::BorrowedFd::borrow_raw(2) };
            let _ = nix::unistd::write(stderr, &out.buf[..out.len]);
        }
    }
}

fn child_main(s: &ChildSetup, sync_r: OwnedFd, mut io: ChildIo<'_>) -> isize {
    let Some(err_w) = io.err_w.take() else {
        return 1;
    };
    // CVE-2024-21626: no descriptor of the launcher's, or inherited from its
    // caller, reaches the container (a directory one would let `cwd` or a
    // process reach the host through /proc/self/fd/N); only the pipes to the
    // launcher, the FIFO and the console socket stay, each closed or
    // close-on-exec before the workload runs.
    {
        use std::os::fd::AsRawFd;
        let mut keep = [
            sync_r.as_raw_fd(),
            err_w.as_raw_fd(),
            io.st_w.as_ref().map_or(-1, |fd| fd.as_raw_fd()),
            s.fifo_fd.unwrap_or(-1),
            s.console.unwrap_or(-1),
        ];
        if let Err(e) = close_fds_except(&mut keep) {
            report(
                &err_w,
                &ChildError::Sys("close the inherited descriptors", e),
            );
            return 1;
        }
    }
    if let Err(e) = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL) {
        report(&err_w, &ChildError::Sys("set the parent-death signal", e));
        return 1;
    }
    // Each release is one byte; EOF means the launcher gave up or died.
    let wait_release = || {
        let mut b = [0u8; 1];
        matches!(nix::unistd::read(&sync_r, &mut b), Ok(1))
    };
    if !wait_release() {
        return 1;
    }
    if let Err(e) = prepare_container(s) {
        report(&err_w, &e);
        return 1;
    }
    if !wait_release() {
        return 1;
    }
    if let Err(e) = finalize_container(s) {
        report(&err_w, &e);
        return 1;
    }
    // A change of the effective uid or gid (`--user`) cleared the
    // parent-death signal: set it again, then make sure the launcher did
    // not die before that (its end of the sync pipe closes when it does).
    if let Err(e) = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL) {
        report(&err_w, &ChildError::Sys("set the parent-death signal", e));
        return 1;
    }
    let mut fds = [PollFd::new(sync_r.as_fd(), PollFlags::POLLIN)];
    if nix::poll::poll(&mut fds, PollTimeout::ZERO).is_ok()
        && fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLHUP))
    {
        return 1;
    }
    if s.detached {
        return wait_for_start(s, sync_r, err_w, io);
    }
    drop(sync_r);
    io.err_w = Some(err_w);
    if s.init {
        return run_init(s, io);
    }
    drop(io.st_w.take());
    exec_workload(s, io.err_w.as_ref(), io.old_mask, io.exec, late_filter(s))
}

/// A created container, set up: checks that the command exists, tells the
/// launcher it is ready ('P'), waits for its commit, clears the parent-death
/// signal (it outlives `create`), confirms ('R'), then blocks opening its
/// FIFO for writing until `start` opens it for reading, and execs.
fn wait_for_start(s: &ChildSetup, sync_r: OwnedFd, err_w: OwnedFd, io: ChildIo<'_>) -> isize {
    let found = s.candidates.iter().any(|p| {
        // SAFETY: `p` is a NUL-terminated C string; access reads it only.
        unsafe { libc::access(p.as_ptr(), libc::F_OK) == 0 }
    });
    if !found {
        report(&err_w, &ChildError::NotFound(&s.command));
        return 127;
    }
    if nix::unistd::write(&err_w, b"P").is_err() {
        return 1;
    }
    let mut b = [0u8; 1];
    if !matches!(nix::unistd::read(&sync_r, &mut b), Ok(1)) {
        return 1;
    }
    drop(sync_r);
    // SAFETY: PR_SET_PDEATHSIG with 0 takes no pointers; it clears the signal.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) } != 0 {
        report(
            &err_w,
            &ChildError::Sys("clear the parent-death signal", Errno::last()),
        );
        return 1;
    }
    if nix::unistd::write(&err_w, b"R").is_err() {
        return 1;
    }
    drop(err_w);
    if let Some(fifo) = &s.fifo {
        use nix::fcntl::OFlag;
        let opened = loop {
            match nix::fcntl::open(
                fifo.as_c_str(),
                OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            ) {
                Err(Errno::EINTR) => continue,
                other => break other,
            }
        };
        match opened {
            Ok(fd) => {
                let _ = nix::unistd::write(&fd, b"0");
                // The O_PATH descriptor is done with (an `--init` PID 1,
                // which never execs, would keep it).
                if let Some(raw) = s.fifo_fd {
                    // SAFETY: `raw` is the O_PATH descriptor the parent
                    // opened before the clone; nothing else in this process
                    // uses it, and it is closed once.
                    unsafe { libc::close(raw) };
                }
            }
            Err(e) => {
                report_to(None, &ChildError::Sys("open exec.fifo", e));
                return 1;
            }
        }
    }
    if s.init {
        return run_init(s, io);
    }
    exec_workload(s, None, io.old_mask, io.exec, late_filter(s))
}

/// Before the cgroup placement: session, host name, loopback, mounts, cwd.
fn prepare_container(s: &ChildSetup) -> Result<(), ChildError<'_>> {
    use ChildError::Sys;
    nix::unistd::setsid().map_err(|e| Sys("start a new session", e))?;
    if let Some(name) = &s.hostname {
        nix::unistd::sethostname(name).map_err(|e| Sys("set the hostname", e))?;
    }
    if s.loopback {
        crate::net::loopback_up().map_err(ChildError::Net)?;
    }
    rootfs::apply(&s.mounts).map_err(ChildError::Mount)?;
    if let Some(sock) = s.console {
        crate::console::attach_in_child(sock).map_err(|(what, e)| Sys(what, e))?;
    }
    nix::unistd::chdir(&s.cwd)
        .map_err(|e| ChildError::Path("enter the working directory", &s.cwd, e))?;
    cwd_inside_root(&s.cwd)
}

/// Fails unless the working directory lies under the container's root: the
/// kernel's getcwd names a directory outside it "(unreachable)/..."
/// (CVE-2024-21626: a `cwd` that resolved through a descriptor of the host).
fn cwd_inside_root(cwd: &std::path::Path) -> Result<(), ChildError<'_>> {
    let mut buf = [0u8; libc::PATH_MAX as usize];
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, which
    // lives for the call.
    let rc = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
    match rc {
        _ if rc > 0 && buf[0] == b'/' => Ok(()),
        _ if rc < 0 => Err(ChildError::Path(
            "check the working directory",
            cwd,
            Errno::last(),
        )),
        _ => Err(ChildError::CwdOutside(cwd)),
    }
}

/// Closes every descriptor from 3 up except those in `keep` (negative
/// entries are ignored): `close_range(2)` (Linux 5.9) over the gaps, else one
/// `close` each up to the descriptor limit. Allocates nothing.
fn close_fds_except(keep: &mut [i32]) -> Result<(), Errno> {
    keep.sort_unstable();
    let mut from = 3i32;
    for &k in keep.iter() {
        if k < from {
            continue;
        }
        if k > from {
            close_range(from as u32, (k - 1) as u32)?;
        }
        from = k + 1;
    }
    close_range(from as u32, u32::MAX)
}

fn close_range(first: u32, last: u32) -> Result<(), Errno> {
    // SAFETY: close_range takes two descriptor numbers and flags, no
    // pointers; it only closes descriptors, none of which this child's Rust
    // objects still own (the kept ones are outside the range).
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
    if rc == 0 {
        return Ok(());
    }
    match Errno::last() {
        Errno::ENOSYS => {
            let (soft, _) =
                nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                    .map_err(|_| Errno::ENOSYS)?;
            let end = u64::from(last).min(soft.saturating_sub(1));
            for fd in u64::from(first)..=end {
                // SAFETY: as above, for one descriptor; EBADF is expected.
                unsafe { libc::close(fd as i32) };
            }
            Ok(())
        }
        e => Err(e),
    }
}

/// After the cgroup placement: cgroup namespace (rooted at the container's
/// cgroup), bounding set, ids (last identity change, with keep-caps),
/// capability sets, no_new_privs.
fn finalize_container(s: &ChildSetup) -> Result<(), ChildError<'_>> {
    use ChildError::Sys;
    if !s.unshare_later.is_empty() {
        nix::sched::unshare(s.unshare_later).map_err(|e| Sys("unshare the cgroup namespace", e))?;
    }
    caps::drop_bounding(s.caps).map_err(ChildError::Caps)?;
    // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: now,
    // before the identity changes drop it (runc's order). The calls up to the
    // exec must then pass it (Docker's default profile allows them).
    if !s.no_new_privs {
        if let Some(f) = &s.seccomp {
            crate::seccomp::install(f).map_err(|e| Sys("install the seccomp filter", e))?;
        }
    }
    let root = s.uid.is_root();
    if !root {
        nix::sys::prctl::set_keepcaps(true).map_err(|e| Sys("set keep-caps", e))?;
    }
    if !s.rootless {
        let groups: &[libc::gid_t] = &s.groups;
        id_syscall(
            libc::SYS_setgroups,
            groups.len() as libc::c_long,
            groups.as_ptr() as libc::c_long,
        )
        .map_err(|e| Sys("set supplementary groups", e))?;
    }
    let (g, u) = (
        s.gid.as_raw() as libc::c_long,
        s.uid.as_raw() as libc::c_long,
    );
    id_syscall(libc::SYS_setresgid, g, g).map_err(|e| Sys("switch group id", e))?;
    id_syscall(libc::SYS_setresuid, u, u).map_err(|e| Sys("switch user id", e))?;
    // A non-root user gets the set as permitted/inheritable only, as Docker.
    let effective = if root { s.caps } else { CapSet(0) };
    caps::set_caps(s.caps, effective).map_err(ChildError::Caps)?;
    if s.no_new_privs {
        nix::sys::prctl::set_no_new_privs().map_err(|e| Sys("set no_new_privs", e))?;
    }
    Ok(())
}

/// A uid/gid system call made directly. glibc's wrappers broadcast the change
/// to every thread it knows of (POSIX semantics) and would wait forever for
/// the parent's threads, which do not exist in this cloned child.
/// `setresuid`/`setresgid` get (`a`, `a`, `a`), `setgroups` (`a` = count, `b`
/// = pointer).
fn id_syscall(nr: libc::c_long, a: libc::c_long, b: libc::c_long) -> Result<(), Errno> {
    let rc = if nr == libc::SYS_setgroups {
        // SAFETY: `b` points to `a` valid gid_t values (a slice borrowed by
        // the caller for the duration of the call).
        unsafe { libc::syscall(nr, a, b) }
    } else {
        // SAFETY: setresuid/setresgid take three ids and no pointers.
        unsafe { libc::syscall(nr, a, a, a) }
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// The filter this process installs right before the exec: the
/// configuration's when no_new_privs is set (without it the filter went in
/// before the identity changes).
fn late_filter(s: &ChildSetup) -> Option<&crate::seccomp::Filter> {
    s.seccomp.as_ref().filter(|_| s.no_new_privs)
}

fn exec_workload(
    s: &ChildSetup,
    err_w: Option<&OwnedFd>,
    old_mask: &SigSet,
    exec: &ExecArrays,
    filter: Option<&crate::seccomp::Filter>,
) -> isize {
    default_dispositions();
    let _ = old_mask.thread_set_mask();
    // Last before the exec: the workload's first call under the filter is
    // execve itself, which every profile worth running allows.
    if let Some(f) = filter {
        if let Err(e) = crate::seccomp::install(f) {
            report_to(err_w, &ChildError::Sys("install the seccomp filter", e));
            return 1;
        }
    }
    let mut worst = Errno::ENOENT;
    for path in &s.candidates {
        // SAFETY: path is a NUL-terminated C string; argv and envp are
        // NULL-terminated arrays of pointers into `s.argv`/`s.envp`, which
        // outlive this call. execve only returns on failure.
        unsafe { libc::execve(path.as_ptr(), exec.argv.as_ptr(), exec.envp.as_ptr()) };
        match Errno::last() {
            Errno::ENOENT | Errno::ENOTDIR => {}
            e => worst = e,
        }
    }
    if worst == Errno::ENOENT {
        report_to(err_w, &ChildError::NotFound(&s.command));
        127
    } else {
        report_to(err_w, &ChildError::NotExecutable(&s.command, worst));
        126
    }
}

/// Every signal back to its default action. An exec keeps ignored signals ignored, and the
/// launcher's are: SIGPIPE (Rust's runtime ignores it) and, when a non-interactive shell started
/// the launcher with `&`, SIGINT and SIGQUIT. A container then could not be stopped by a forwarded
/// SIGINT, and `yes | head -1` would print "Broken pipe". Handlers need no reset (exec resets them);
/// the signals the C library reserves refuse the call, which is harmless.
fn default_dispositions() {
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL installs no handler; an invalid or reserved number only fails with EINVAL.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
}

/// PID 1 with `--init`: clone the workload, forward signals to it, reap every
/// child, exit with the workload's status (and send it on `st_w`).
fn run_init(s: &ChildSetup, io: ChildIo<'_>) -> isize {
    // The init is the container's too: filtered before it starts the
    // workload, which inherits the filter.
    if let Some(f) = late_filter(s) {
        if let Err(e) = crate::seccomp::install(f) {
            report_to(
                io.err_w.as_ref(),
                &ChildError::Sys("install the seccomp filter", e),
            );
            return 1;
        }
    }
    let mut set = forwarded_set();
    set.add(Signal::SIGCHLD);
    if let Err(e) = set.thread_block() {
        report_to(
            io.err_w.as_ref(),
            &ChildError::Sys("block signals in the init process", e),
        );
        return 1;
    }
    let ChildIo {
        err_w,
        st_w,
        old_mask,
        exec,
    } = io;
    // A bare fork (clone with SIGCHLD only): unlike glibc's fork() it runs no
    // at-fork handlers, which could block on locks copied in a held state.
    // SAFETY: no pointers are passed; the child continues on its own copy of
    // this stack and only execs or exits.
    let rc = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_long, 0, 0, 0, 0) };
    let worker = match rc {
        0 => {
            drop(st_w);
            return exec_workload(s, err_w.as_ref(), old_mask, exec, None);
        }
        pid if pid > 0 => Pid::from_raw(pid as i32),
        _ => {
            report_to(
                err_w.as_ref(),
                &ChildError::Sys("start the workload under init", Errno::last()),
            );
            return 1;
        }
    };
    drop(err_w);
    loop {
        let sig = match set.wait() {
            Ok(sig) => sig,
            Err(_) => continue,
        };
        if sig != Signal::SIGCHLD {
            let _ = kill(worker, sig);
            continue;
        }
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                Ok(status @ (WaitStatus::Exited(p, _) | WaitStatus::Signaled(p, _, _)))
                    if p == worker =>
                {
                    let (code, sig) = decode(status);
                    if let Some(st_w) = &st_w {
                        let mut st = [0u8; 8];
                        st[..4].copy_from_slice(&code.to_le_bytes());
                        st[4..].copy_from_slice(&sig.unwrap_or(0).to_le_bytes());
                        let _ = nix::unistd::write(st_w, &st);
                    }
                    return code as isize;
                }
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
    }
}
