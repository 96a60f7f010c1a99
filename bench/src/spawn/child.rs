//! The child side of a spawn: what runs between fork and exec (parent-death
//! signal, default signal dispositions, CPU pinning, a private mount
//! namespace), and the syscalls that watch and reap it.

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::Once;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// Makes this process a child subreaper (once): orphans of its instances come here.
pub(super) fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Not fatal: without it an orphan goes to init and is found through the
        // tree seen before (the leftover count may then miss a very short-lived parent).
        let _ = nix::sys::prctl::set_child_subreaper(true);
    });
}

/// The hook run in the child between fork and exec.
pub(super) fn pre_exec_hook(
    parent: Pid,
    private_mount_ns: bool,
    cpu: Option<usize>,
) -> impl FnMut() -> std::io::Result<()> {
    move || {
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
        // The parent may have died between fork and prctl: then nobody would kill us.
        if nix::unistd::getppid() != parent {
            return Err(std::io::Error::other("the harness exited during the spawn"));
        }
        // An ignored disposition survives exec: a harness started in the
        // background by a non-interactive shell has SIGINT and SIGQUIT
        // ignored, and its instances must still stop on them.
        for sig in [Signal::SIGINT, Signal::SIGQUIT, Signal::SIGTERM] {
            // SAFETY: between fork and exec, single-threaded; setting a
            // default disposition installs no handler.
            unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl) }
                .map_err(std::io::Error::from)?;
        }
        if let Some(cpu) = cpu {
            let mut set = nix::sched::CpuSet::new();
            set.set(cpu).map_err(std::io::Error::from)?;
            nix::sched::sched_setaffinity(Pid::from_raw(0), &set).map_err(std::io::Error::from)?;
        }
        if private_mount_ns {
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
        }
        Ok(())
    }
}

/// Makes `cmd`'s child enter a private mount namespace in which the cgroup2
/// mount of a hybrid host is lazily unmounted (crun refuses hybrid cgroups;
/// HOST-NOTES.md). Done between fork and exec: it costs microseconds, not a
/// wrapper process, and leaves this harness's namespace untouched.
pub fn enter_private_mount_ns_on_spawn(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let hook = pre_exec_hook(nix::unistd::getpid(), true, None);
    // SAFETY: the hook runs in the forked child before exec and only makes
    // the prctl, getppid, unshare, mount and umount2 system calls (nix passes
    // short paths on the stack); it touches no lock or allocator state of the parent.
    unsafe {
        cmd.pre_exec(hook);
    }
}

pub(super) fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor returned by pidfd_open and owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// wait4 without blocking: the exit code (128 + N for signal N) and rusage once reaped.
pub(super) fn try_reap(pid: i32) -> Result<Option<(i32, libc::rusage)>, nix::Error> {
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `status` and `usage` are valid, writable and live for the call;
    // `pid` is our own child, spawned here and reaped nowhere else.
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

pub(super) fn tv(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
}
