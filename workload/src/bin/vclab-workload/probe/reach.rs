//! Syscall reach: which x86_64 system call numbers a process here can get into the kernel with.
//!
//! Method. Each number is called in a forked child (new session, stdin/stdout/stderr closed, parent
//! death signal), with argument sets the kernel rejects or that only touch the child itself:
//! first every argument all-ones (`-1`: bad fds, bad pointers, bad flags, huge lengths), then, if
//! that gave EPERM or ENOSYS, every argument zero (NULL pointers, fd 0 which is closed). A number is
//! **reachable** when any set returns something else: success, another errno (EFAULT, EINVAL,
//! EBADF... are only reached after the filter let the call through), a signal other than SIGSYS
//! (`rt_sigreturn`, `uretprobe`), the child exiting (`exit`), or the call blocking past the
//! timeout (`pause`). It is **blocked** when every set ends with ENOSYS (not implemented, or a
//! filter's ENOSYS), EPERM (a filter's EPERM, or a capability check the kernel makes before it
//! reads any argument: a filter's errno does not depend on the arguments, so one set is enough
//! to tell most kernel errors apart), or SIGSYS (a filter that kills or traps).
//!
//! Harm. All-ones and zero arguments are rejected by almost every call; the few whose zero or
//! all-ones forms would change host state get other sets ([`arg_sets`]): `acct(NULL)` (stops
//! accounting), `kexec_load` with no segments (unloads the kexec image), `shmctl`/`semctl`/
//! `msgctl(0, IPC_RMID)`, `msgrcv` (could take another tenant's message), `msgget`/`semget`/
//! `shmget` with IPC_PRIVATE or IPC_CREAT (would create objects), `sethostname(NULL, 0)`,
//! `kill(-1, ...)`, `seccomp(0)` (strict mode). The child runs in its own session so `vhangup`
//! has no terminal to hang up; fork-like calls' second child exits at once.

use std::time::{Duration, Instant};

use super::names;
use super::sys::{self, SysResult};

/// The highest number probed: the last assigned x86_64 number (469) plus ten beyond it.
pub const MAX_NR: u32 = 479;

/// How long a child may stay in its call before it counts as blocked in the kernel (reachable).
const HANG_TIMEOUT: Duration = Duration::from_millis(300);

/// How one call in a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The call returned (value or errno).
    Returned(SysResult),
    /// The child died of this signal before reporting.
    Signal(i32),
    /// The child exited (through the call itself) before reporting.
    Exited,
    /// The call was still running at the timeout.
    Hung,
}

/// Why a number counts as blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// Every argument set ended with ENOSYS.
    Enosys,
    /// Every argument set ended with EPERM (or ENOSYS).
    Eperm,
    /// A filter killed or trapped the call.
    Sigsys,
}

impl Block {
    /// The name the JSON line uses.
    pub fn name(self) -> &'static str {
        match self {
            Block::Enosys => "ENOSYS",
            Block::Eperm => "EPERM",
            Block::Sigsys => "SIGSYS",
        }
    }
}

/// The reach of every probed number.
#[derive(Debug, Default)]
pub struct Reach {
    /// Numbers probed (0..=MAX_NR).
    pub probed: u32,
    /// Numbers that reached the kernel.
    pub reachable: u32,
    /// Reachable numbers that are assigned system calls.
    pub reachable_named: u32,
    /// Blocked numbers that are assigned system calls, with how (unassigned numbers are left out:
    /// they are ENOSYS everywhere, or EPERM under a default-deny filter).
    pub blocked: Vec<(u32, &'static str, Block)>,
    /// Numbers that could not be probed (fork or pipe failed), with the errno.
    pub failed: Vec<(u32, i32)>,
}

/// Every argument all-ones.
const ONES: [u64; 6] = [u64::MAX; 6];
/// Every argument zero.
const ZERO: [u64; 6] = [0; 6];
/// A System V IPC key no one uses, for the `*get` calls without IPC_CREAT (ENOENT).
const IPC_KEY: u64 = 0x5643_4c42;

/// The argument sets tried for `nr`, in order (see the module comment for the exceptions).
pub fn arg_sets(nr: u32) -> &'static [[u64; 6]] {
    const ONES_ONLY: &[[u64; 6]] = &[ONES];
    const ZERO_ONLY: &[[u64; 6]] = &[ZERO];
    const IPC_GET: &[[u64; 6]] = &[[IPC_KEY, 0, 0, 0, 0, 0]];
    const DEFAULT: &[[u64; 6]] = &[ONES, ZERO];
    match i64::from(nr) {
        libc::SYS_acct
        | libc::SYS_kexec_load
        | libc::SYS_kexec_file_load
        | libc::SYS_shmctl
        | libc::SYS_semctl
        | libc::SYS_msgctl
        | libc::SYS_msgrcv
        | libc::SYS_msgsnd
        | libc::SYS_sethostname
        | libc::SYS_setdomainname
        | libc::SYS_seccomp => ONES_ONLY,
        libc::SYS_kill => ZERO_ONLY,
        libc::SYS_msgget | libc::SYS_semget | libc::SYS_shmget => IPC_GET,
        _ => DEFAULT,
    }
}

/// The verdict for a list of outcomes: `None` when reachable.
pub fn verdict(outcomes: &[Outcome]) -> Option<Block> {
    let mut block = Block::Enosys;
    for o in outcomes {
        match *o {
            Outcome::Returned(Err(libc::ENOSYS)) => {}
            Outcome::Returned(Err(libc::EPERM)) => {
                if block == Block::Enosys {
                    block = Block::Eperm;
                }
            }
            Outcome::Signal(libc::SIGSYS) => block = Block::Sigsys,
            _ => return None,
        }
    }
    Some(block)
}

/// Whether an outcome already shows the number reachable (no need to try another set).
fn reached(o: &Outcome) -> bool {
    verdict(std::slice::from_ref(o)).is_none()
}

/// Probes every number 0..=MAX_NR.
pub fn probe() -> Reach {
    let mut reach = Reach::default();
    for nr in 0..=MAX_NR {
        reach.probed += 1;
        let mut outcomes = Vec::new();
        let mut failed = None;
        for args in arg_sets(nr) {
            match call_in_child(nr, *args) {
                Ok(o) => {
                    outcomes.push(o);
                    if reached(&o) {
                        break;
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failed {
            reach.failed.push((nr, e));
            continue;
        }
        let name = names::name(nr);
        match (verdict(&outcomes), name) {
            (None, named) => {
                reach.reachable += 1;
                reach.reachable_named += u32::from(named.is_some());
            }
            (Some(b), Some(n)) => reach.blocked.push((nr, n, b)),
            (Some(_), None) => {}
        }
    }
    reap_orphans();
    reach
}

/// Calls `nr` with `args` in a forked child; returns how it ended, or the errno of pipe/fork.
fn call_in_child(nr: u32, args: [u64; 6]) -> Result<Outcome, i32> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(sys::errno());
    }
    let (rd, wr) = (fds[0], fds[1]);
    // SAFETY: the probe is single-threaded; the child only makes raw system calls and exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = sys::errno();
        close(rd);
        close(wr);
        return Err(e);
    }
    if pid == 0 {
        child(nr, args, wr);
    }
    close(wr);
    let outcome = wait_report(pid, rd);
    close(rd);
    Ok(outcome)
}

/// The child: isolate itself from the terminal and stdio, make the call, report, exit.
fn child(nr: u32, args: [u64; 6], wr: i32) -> ! {
    if i64::from(nr) != libc::SYS_setsid {
        // SAFETY: setsid has no memory arguments; a new session leaves no controlling terminal
        // (probing setsid itself does the same).
        unsafe { libc::setsid() };
    }
    for fd in 0..3 {
        if fd != wr {
            close(fd);
        }
    }
    // SAFETY: PR_SET_PDEATHSIG with a signal number; no memory arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let me = sys::raw(libc::SYS_getpid, ZERO);
    let result = sys::raw(i64::from(nr), args);
    if sys::raw(libc::SYS_getpid, ZERO) != me {
        // A second child of fork/vfork/clone: leave at once.
        // SAFETY: _exit ends this process; nothing of it is shared with the caller (see vfork note
        // in the module comment: its parent is only the probe's own child).
        unsafe { libc::_exit(0) };
    }
    let (tag, value) = match result {
        Ok(v) => (0i64, v),
        Err(e) => (1i64, i64::from(e)),
    };
    let mut msg = [0u8; 16];
    msg[..8].copy_from_slice(&tag.to_le_bytes());
    msg[8..].copy_from_slice(&value.to_le_bytes());
    // SAFETY: `msg` is a valid 16-byte buffer; `wr` is this child's write end of the pipe.
    unsafe { libc::write(wr, msg.as_ptr().cast(), msg.len()) };
    // SAFETY: _exit ends the child without running the parent's atexit handlers.
    unsafe { libc::_exit(0) }
}

/// Waits for the child's report (or its end, or the timeout), then kills and reaps it.
fn wait_report(pid: libc::pid_t, rd: i32) -> Outcome {
    let deadline = Instant::now() + HANG_TIMEOUT;
    let mut msg = [0u8; 16];
    let mut got = 0usize;
    let mut timed_out = false;
    while got < msg.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            timed_out = true;
            break;
        }
        let mut pfd = libc::pollfd {
            fd: rd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
        // SAFETY: `pfd` is one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 && sys::errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            continue;
        }
        // SAFETY: the range msg[got..] is valid, writable memory of the stated length.
        let r = unsafe { libc::read(rd, msg[got..].as_mut_ptr().cast(), msg.len() - got) };
        if r <= 0 {
            break;
        }
        got += r as usize;
    }
    // SAFETY: `pid` is this process's own unreaped child, so the pid cannot have been reused.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let status = reap(pid);
    if got == msg.len() {
        let tag = i64::from_le_bytes(msg[..8].try_into().unwrap_or([0; 8]));
        let value = i64::from_le_bytes(msg[8..].try_into().unwrap_or([0; 8]));
        return Outcome::Returned(if tag == 0 {
            Ok(value)
        } else {
            Err(i32::try_from(value).unwrap_or(0))
        });
    }
    if timed_out {
        return Outcome::Hung;
    }
    match status {
        Some(s) if libc::WIFSIGNALED(s) && libc::WTERMSIG(s) != libc::SIGKILL => {
            Outcome::Signal(libc::WTERMSIG(s))
        }
        // Killed by us after EOF without a report: it had exited or was exiting.
        _ => Outcome::Exited,
    }
}

/// Reaps `pid` (also when it is ptrace-stopped: the probe is its tracer after PTRACE_TRACEME).
fn reap(pid: libc::pid_t) -> Option<i32> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid int; `pid` is our child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r == pid {
            if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
                return Some(status);
            }
            continue;
        }
        if r < 0 && sys::errno() == libc::EINTR {
            continue;
        }
        return None;
    }
}

/// Reaps second children of fork-like calls re-parented to the probe (when it is PID 1).
fn reap_orphans() {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid int; WNOHANG never blocks.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) };
        if r <= 0 {
            return;
        }
    }
}

/// Closes `fd`, ignoring errors (it is ours and used once).
fn close(fd: i32) {
    // SAFETY: `fd` is a descriptor this process owns and does not use afterwards.
    unsafe { libc::close(fd) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        use Outcome::*;
        assert_eq!(verdict(&[Returned(Err(libc::EFAULT))]), None);
        assert_eq!(verdict(&[Returned(Ok(0))]), None);
        assert_eq!(verdict(&[Hung]), None);
        assert_eq!(verdict(&[Signal(libc::SIGSEGV)]), None);
        assert_eq!(
            verdict(&[Returned(Err(libc::EPERM)), Returned(Err(libc::EINVAL))]),
            None
        );
        assert_eq!(
            verdict(&[Returned(Err(libc::EPERM)), Returned(Err(libc::ENOSYS))]),
            Some(Block::Eperm)
        );
        assert_eq!(
            verdict(&[Returned(Err(libc::ENOSYS)), Returned(Err(libc::ENOSYS))]),
            Some(Block::Enosys)
        );
        assert_eq!(verdict(&[Signal(libc::SIGSYS)]), Some(Block::Sigsys));
    }

    #[test]
    fn dangerous_calls_get_safe_sets() {
        for nr in [libc::SYS_acct, libc::SYS_kexec_load, libc::SYS_shmctl] {
            assert_eq!(arg_sets(nr as u32), &[ONES]);
        }
        assert_eq!(arg_sets(libc::SYS_kill as u32), &[ZERO]);
        assert_eq!(arg_sets(libc::SYS_msgget as u32)[0][0], IPC_KEY);
        assert_eq!(arg_sets(libc::SYS_read as u32), &[ONES, ZERO]);
    }

    #[test]
    fn a_child_call_reports_its_errno_and_its_end() {
        // close(-1) reaches the kernel (EBADF); an unassigned number is ENOSYS; exit ends the child.
        assert_eq!(
            call_in_child(libc::SYS_close as u32, ONES),
            Ok(Outcome::Returned(Err(libc::EBADF)))
        );
        assert_eq!(
            call_in_child(400, ZERO),
            Ok(Outcome::Returned(Err(libc::ENOSYS)))
        );
        assert_eq!(
            call_in_child(libc::SYS_exit as u32, ZERO),
            Ok(Outcome::Exited)
        );
        assert_eq!(
            call_in_child(libc::SYS_pause as u32, ZERO),
            Ok(Outcome::Hung)
        );
    }
}
