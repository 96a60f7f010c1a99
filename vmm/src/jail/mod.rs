//! `--jail`: the VMM runs its VM in a jail (Firecracker's jailer is the reference). The recipe,
//! in the jailing process (root):
//!
//! sweep the entries of dead jails (`state.rs`) → the entry `/run/vclab/jail-<id>` with its
//! owner record → the cgroup `vclab-jail-<id>` below the VMM's own (`cgroup.rs`; v2, or the v1
//! memory and pids controllers on v1 and hybrid hosts) → fork into a new pid namespace (the child
//! is its pid 1, with SIGINT/SIGTERM still blocked so one sent early waits for the VMM's
//! handlers) → parent: the child moved into the cgroup, then released through a pipe; it
//! forwards SIGINT/SIGTERM and waits → child (`root.rs`): parent-death signal, host facts read
//! while the host is visible (KVM kind, MemTotal, the /proc files of the report, `--console`
//! file), new mount and net namespaces, a tmpfs root with `/dev/kvm`, `/dev/null`, the kernel
//! and initrd bound read-only, `pivot_root`, uid/gid dropped, released by the parent → the VM
//! runs as without the jail (seccomp filters per thread, report) → parent: cgroup and entry
//! removed, also on error; a SIGKILLed parent takes the child with it (PR_SET_PDEATHSIG) and
//! the next run sweeps what is left on the host (the entry and the empty cgroup).

pub mod cgroup;
pub mod root;
pub mod state;

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{Output, ProcFiles, VmConfig};
use crate::host::KvmKind;
use crate::{memory, signals};

/// The uid and gid a jailed VMM runs as unless told (`nobody`/`nogroup`).
pub const DEFAULT_ID: u32 = 65534;
/// Exit code of a jail that could not be set up (as for any VM set-up failure).
pub const EXIT_SETUP: i32 = 1;

/// Who the jailed VMM runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// `--jail-uid`.
    pub uid: u32,
    /// `--jail-gid`.
    pub gid: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            uid: DEFAULT_ID,
            gid: DEFAULT_ID,
        }
    }
}

/// Errors of the jailing process.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not root.
    #[error("--jail needs root (it creates namespaces, device nodes and cgroups); run as root or drop --jail")]
    NotRoot,
    /// A host check (guest memory against MemTotal), made before anything is created.
    #[error(transparent)]
    Memory(#[from] memory::Error),
    /// The entry under /run/vclab.
    #[error(transparent)]
    State(#[from] state::Error),
    /// The cgroup.
    #[error(transparent)]
    Cgroup(#[from] cgroup::Error),
    /// Signal masks.
    #[error(transparent)]
    Signals(#[from] signals::Error),
    /// A call of the jailing process failed.
    #[error("jail: {call} failed: {source}")]
    Call {
        /// The call.
        call: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

fn last(call: &'static str) -> Error {
    Error::Call {
        call,
        source: io::Error::last_os_error(),
    }
}

/// Removes the jail's cgroup and entry when the jailing process leaves [`run`], however.
struct Cleanup {
    dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        state::remove(&self.dir);
    }
}

/// Runs `body` (the VM and its report, returning the exit code) in a jail as `opts` says, and
/// returns the exit code: the jailed VMM's, or 128 + N when signal N killed it (SIGSYS: a
/// syscall its seccomp filter forbids, named on stderr).
pub fn run(cfg: VmConfig, opts: Options, body: impl FnOnce(VmConfig) -> i32) -> Result<i32, Error> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Error::NotRoot);
    }
    memory::check_size(cfg.mem_mib)?;
    state::sweep();
    let id = std::process::id().to_string();
    let cg = cgroup::dirs(&format!("vclab-{}{id}", state::PREFIX))?;
    let entry = state::create(&id, &cg)?;
    let _cleanup = Cleanup {
        dir: entry.dir.clone(),
    };
    cgroup::create(&cg)?;
    let stop_and_child = [libc::SIGINT, libc::SIGTERM, libc::SIGCHLD];
    let old_mask = signals::set_mask(libc::SIG_BLOCK, &stop_and_child)?;
    let result = fork_and_wait(cfg, opts, &entry, &cg, body);
    signals::restore_mask(&old_mask);
    result
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Error> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 returns.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(last("pipe2"));
    }
    // SAFETY: pipe2 returned two open descriptors that nothing else owns.
    let r = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    // SAFETY: as above.
    let w = unsafe { OwnedFd::from_raw_fd(fds[1]) };
    Ok((r, w))
}

fn fork_and_wait(
    cfg: VmConfig,
    opts: Options,
    entry: &state::Entry,
    cg: &[PathBuf],
    body: impl FnOnce(VmConfig) -> i32,
) -> Result<i32, Error> {
    let (release_r, release_w) = pipe()?;
    // The next child is pid 1 of a new pid namespace.
    // SAFETY: unshare takes only flags.
    if unsafe { libc::unshare(libc::CLONE_NEWPID) } != 0 {
        return Err(last("unshare(CLONE_NEWPID)"));
    }
    // SAFETY: the child runs only the jail's set-up and the VM on its single thread; glibc's
    // fork keeps malloc usable in the child.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(last("fork"));
    }
    if pid == 0 {
        drop(release_w);
        let code = match child(cfg, opts, entry, release_r) {
            Ok(cfg) => body(cfg),
            Err(e) => {
                eprintln!("vclab: {e}");
                EXIT_SETUP
            }
        };
        std::process::exit(code);
    }
    drop(release_r);
    let released = cgroup::add(cg, pid).map_err(Error::from).and_then(|()| {
        // SAFETY: one byte from a valid buffer to the pipe we own.
        let n = unsafe { libc::write(release_w.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
        let err = io::Error::last_os_error();
        match n {
            1 => Ok(()),
            // The child ended before its release (it said why): its status is the answer.
            _ if err.raw_os_error() == Some(libc::EPIPE) => Ok(()),
            _ => Err(Error::Call {
                call: "write (release the jailed VMM)",
                source: err,
            }),
        }
    });
    if released.is_err() {
        // SAFETY: `pid` is our child; SIGKILL ends it before it runs the guest.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let status = wait_forwarding(pid)?;
    drop(release_w);
    released?;
    Ok(exit_code(status))
}

/// Waits for `pid`, forwarding SIGINT/SIGTERM (blocked in this thread) to it.
fn wait_forwarding(pid: libc::pid_t) -> Result<i32, Error> {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    for s in [libc::SIGINT, libc::SIGTERM, libc::SIGCHLD] {
        // SAFETY: `set` is initialised; the signals are valid.
        unsafe { libc::sigaddset(&mut set, s) };
    }
    loop {
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is writable.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if rc == pid {
            return Ok(status);
        }
        if rc < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(last("waitpid"));
        }
        // SAFETY: `set` is a valid sigset_t; no siginfo wanted.
        let signo = unsafe { libc::sigwaitinfo(&set, std::ptr::null_mut()) };
        if signo == libc::SIGINT || signo == libc::SIGTERM {
            // SAFETY: `pid` is our child (not yet reaped).
            unsafe { libc::kill(pid, signo) };
        }
    }
}

/// The exit code for a wait status; a death by signal is said on stderr.
fn exit_code(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        return libc::WEXITSTATUS(status);
    }
    let signo = libc::WTERMSIG(status);
    if signo == libc::SIGSYS {
        eprintln!("vclab: the jailed VMM was killed by SIGSYS: it made a syscall its seccomp filter forbids (rerun with --seccomp-log and see the kernel log for the syscall number)");
    } else {
        eprintln!("vclab: the jailed VMM was killed by signal {signo}");
    }
    128 + signo
}

/// The child's side: everything up to the VM (see the module text); returns the config the VM
/// runs with inside.
fn child(
    mut cfg: VmConfig,
    opts: Options,
    entry: &state::Entry,
    release: OwnedFd,
) -> Result<VmConfig, root::Error> {
    root::parent_death_signal()?;
    // Host facts, while the host is visible.
    fn io_err(call: &'static str, path: String) -> impl FnOnce(io::Error) -> root::Error {
        move |source| root::Error::Call { call, path, source }
    }
    cfg.kvm_kind = Some(cfg.kvm_kind.unwrap_or_else(KvmKind::detect));
    // MemTotal was checked by the parent (`run`).
    cfg.host_checked = true;
    cfg.proc_files =
        Some(ProcFiles::open().map_err(io_err("open", "/proc/self/status, smaps".into()))?);
    for out in [&mut cfg.console, &mut cfg.lines] {
        if let Output::File(path) = out {
            let f = crate::console_file::create(path)
                .map_err(io_err("open the console file", path.display().to_string()))?;
            *out = Output::Opened(Arc::new(f));
        }
    }
    // The disks are opened here, as root and before the root is swapped: the jailed VMM
    // (an unprivileged uid in an empty root) reads and writes them through these fds.
    // (`cli::main` checked them first, with the errors a run without the jail gives.)
    for disk in &cfg.disks {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(!disk.read_only)
            .custom_flags(if disk.direct { libc::O_DIRECT } else { 0 })
            .open(&disk.path)
            .map_err(io_err("open the disk", disk.path.display().to_string()))?;
        cfg.opened_disks.push(Arc::new(f));
    }
    let mut files = vec![(cfg.kernel.clone(), "kernel")];
    if let Some(initrd) = &cfg.initrd {
        files.push((initrd.clone(), "initrd"));
    }
    let plan = root::Plan {
        root: entry.root.clone(),
        files,
        uid: opts.uid,
        gid: opts.gid,
    };
    root::unshare()?;
    let inside = root::enter(&plan)?;
    cfg.kernel = inside[0].clone();
    if cfg.initrd.is_some() {
        cfg.initrd = inside.get(1).cloned();
    }
    root::drop_privileges(opts.uid, opts.gid)?;
    wait_release(&release)?;
    cfg.jailed = true;
    Ok(cfg)
}

/// Waits for the parent's byte (the child is in its cgroup); fails when the parent is gone
/// (its end closed: EOF, or a hang-up right after the byte, had it died while the
/// parent-death signal was being set again).
fn wait_release(release: &OwnedFd) -> Result<(), root::Error> {
    let gone = |what: &str| root::Error::Call {
        call: "wait for release",
        path: what.to_string(),
        source: io::Error::other("the jailing VMM is gone"),
    };
    let mut byte = [0u8; 1];
    // SAFETY: reads at most one byte into `byte`, from the pipe we own.
    let n = unsafe { libc::read(release.as_raw_fd(), byte.as_mut_ptr().cast(), 1) };
    if n != 1 {
        return Err(gone("pipe"));
    }
    let mut pfd = libc::pollfd {
        fd: release.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    unsafe { libc::poll(&mut pfd, 1, 0) };
    if pfd.revents & libc::POLLHUP != 0 {
        return Err(gone("pipe hang-up"));
    }
    Ok(())
}
