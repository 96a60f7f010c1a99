//! Per-thread seccomp filters (Firecracker's model): built with seccompiler before any vCPU
//! runs, installed by each thread on itself (no TSYNC) with `no_new_privs` right before it
//! takes guest input: a vCPU thread before its first KVM_RUN, the main thread of a
//! multi-vCPU VM once its vCPU threads are started, and the main thread of a 1-vCPU VM (which
//! runs its vCPU itself) the union of both. What each thread may call is in [`rules`].
//!
//! A forbidden call kills the whole process (`SECCOMP_RET_KILL_PROCESS`: the parent sees
//! SIGSYS; the kernel logs the syscall number with audit); [`Mode::Log`] (`--seccomp-log`)
//! allows and logs it instead, for finding a missing entry; [`Mode::Off`] (`--no-seccomp`)
//! installs nothing.

pub mod rules;
pub mod surface;

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

pub use rules::Thread;
pub use surface::{surface, Surface};

/// Errors of building or installing a filter.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A rule of the tables is invalid (a bug in `rules.rs`).
    #[error(transparent)]
    Rule(#[from] rules::Error),
    /// seccompiler could not compile a table.
    #[error("cannot compile the seccomp filter of the {thread:?} thread: {err}")]
    Compile {
        /// Which filter.
        thread: Thread,
        /// What seccompiler said.
        err: seccompiler::BackendError,
    },
    /// This architecture has no filter tables.
    #[error("seccomp filters are defined for x86_64 only; run with --no-seccomp here")]
    Arch,
    /// prctl(PR_SET_NO_NEW_PRIVS) or seccomp(SECCOMP_SET_MODE_FILTER) failed.
    #[error("cannot install the seccomp filter of the {thread:?} thread: {err} (does the host kernel have CONFIG_SECCOMP_FILTER? else run with --no-seccomp)")]
    Install {
        /// Which filter.
        thread: Thread,
        /// What seccompiler said.
        err: seccompiler::Error,
    },
}

/// Whether and how the VMM's threads are filtered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Not chosen: [`Mode::Kill`] in the command line's process ([`crate::cli::main`]), no
    /// filter for a library caller of [`crate::run`] (a filter stays on the calling thread
    /// after it returns), also one that parsed its arguments with [`crate::cli::parse`].
    #[default]
    Default,
    /// No filter (`--no-seccomp`).
    Off,
    /// A forbidden syscall kills the process (the command line's default).
    Kill,
    /// A forbidden syscall is allowed and logged by the kernel (`--seccomp-log`).
    Log,
}

impl Mode {
    /// The report's `seccomp` value: `on`, `log` or `off`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Off | Mode::Default => "off",
            Mode::Kill => "on",
            Mode::Log => "log",
        }
    }
}

/// One compiled filter and how many syscalls it allows.
#[derive(Debug, Clone)]
pub struct Filter {
    /// The thread kind it is for.
    pub thread: Thread,
    /// The BPF program.
    pub program: BpfProgram,
    /// Distinct syscalls it allows (some only with given arguments).
    pub allowed: usize,
}

impl Filter {
    /// Builds the filter of `thread` for `mode` (not [`Mode::Off`]); `kick` is the signal
    /// that stops a vCPU thread.
    pub fn build(thread: Thread, mode: Mode, kick: i32) -> Result<Filter, Error> {
        let arch = arch()?;
        let rules = rules::rules(thread, kick)?;
        let allowed = rules.len();
        let mismatch = match mode {
            Mode::Log => SeccompAction::Log,
            Mode::Kill | Mode::Off | Mode::Default => SeccompAction::KillProcess,
        };
        let program = SeccompFilter::new(rules, mismatch, SeccompAction::Allow, arch)
            .and_then(BpfProgram::try_from)
            .map_err(|err| Error::Compile { thread, err })?;
        Ok(Filter {
            thread,
            program,
            allowed,
        })
    }

    /// Installs the filter on the calling thread (sets `no_new_privs` first).
    pub fn install(&self) -> Result<(), Error> {
        seccompiler::apply_filter(&self.program).map_err(|err| Error::Install {
            thread: self.thread,
            err,
        })
    }
}

fn arch() -> Result<TargetArch, Error> {
    if cfg!(target_arch = "x86_64") {
        Ok(TargetArch::x86_64)
    } else {
        Err(Error::Arch)
    }
}

/// How many syscalls each filter allows: (vCPU thread, main thread of a multi-vCPU VM,
/// main thread of a 1-vCPU VM). The isolation probe quotes these.
pub fn allowed_counts() -> Result<(usize, usize, usize), Error> {
    let kick = crate::signals::kick();
    let count = |t| rules::rules(t, kick).map(|r| r.len());
    Ok((
        count(Thread::Vcpu)?,
        count(Thread::Main)?,
        count(Thread::VcpuOnMain)?,
    ))
}

/// The filters of one run: built before any vCPU runs, installed by each thread.
#[derive(Debug, Clone)]
pub struct Filters {
    /// The mode they were built for.
    pub mode: Mode,
    /// vCPU threads (or the 1-vCPU main thread, then the union with the main thread's needs).
    pub vcpu: Option<Filter>,
    /// The main thread of a multi-vCPU VM.
    pub main: Option<Filter>,
    /// The I/O thread of a VM with virtio devices.
    pub io: Option<Filter>,
}

impl Filters {
    /// The filters a VM of `vcpus` vCPUs needs under `mode` (none for [`Mode::Off`] and
    /// [`Mode::Default`]), with the I/O thread's when `io_thread` (a VM with virtio devices);
    /// `snapshot` adds the snapshot's calls to a 1-vCPU VM's thread (`--snapshot-at`).
    pub fn for_vm(
        mode: Mode,
        vcpus: u32,
        io_thread: bool,
        snapshot: bool,
    ) -> Result<Filters, Error> {
        let kick = crate::signals::kick();
        if matches!(mode, Mode::Off | Mode::Default) {
            return Ok(Filters {
                mode,
                vcpu: None,
                main: None,
                io: None,
            });
        }
        let io = match io_thread {
            true => Some(Filter::build(Thread::Io, mode, kick)?),
            false => None,
        };
        let (vcpu, main) = if vcpus <= 1 {
            let thread = match snapshot {
                true => Thread::VcpuOnMainSnapshot,
                false => Thread::VcpuOnMain,
            };
            (Filter::build(thread, mode, kick)?, None)
        } else {
            (
                Filter::build(Thread::Vcpu, mode, kick)?,
                Some(Filter::build(Thread::Main, mode, kick)?),
            )
        };
        Ok(Filters {
            mode,
            vcpu: Some(vcpu),
            main,
            io,
        })
    }

    /// Installs `filter` (if any) on the calling thread.
    pub fn install(filter: Option<&Filter>) -> Result<(), Error> {
        filter.map_or(Ok(()), Filter::install)
    }
}

/// The `VCLAB_VMM_SECCOMP_SELFTEST=1` hook: a vCPU thread whose filter is installed makes a
/// syscall no filter allows (`getppid`), so a test can see the process killed by SIGSYS (or
/// the call logged under `--seccomp-log`). Read once at set-up; the guest cannot reach it.
pub fn selftest_requested() -> bool {
    std::env::var_os("VCLAB_VMM_SECCOMP_SELFTEST").is_some_and(|v| v == "1")
}

/// Makes the forbidden call of the self-test.
pub fn forbidden_call() {
    // SAFETY: getppid has no arguments and no side effects; under the filter it is forbidden.
    unsafe { libc::getppid() };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_build_for_every_mode() {
        for mode in [Mode::Kill, Mode::Log] {
            let one = Filters::for_vm(mode, 1, false, false).unwrap();
            assert!(one.vcpu.is_some() && one.main.is_none() && one.io.is_none());
            let two = Filters::for_vm(mode, 2, true, false).unwrap();
            assert!(two.vcpu.is_some() && two.main.is_some() && two.io.is_some());
        }
        for mode in [Mode::Off, Mode::Default] {
            let off = Filters::for_vm(mode, 2, true, false).unwrap();
            assert!(off.vcpu.is_none() && off.main.is_none() && off.io.is_none());
            assert_eq!(off.mode.name(), "off");
        }
        let (v, m, both) = allowed_counts().unwrap();
        assert!(
            v > 0 && m > v,
            "the main thread waits, kicks and sleeps: {v} {m}"
        );
        // The 1-vCPU main thread may call everything a vCPU thread may.
        let kick = crate::signals::kick();
        let vcpu = rules::rules(Thread::Vcpu, kick).unwrap();
        let single = rules::rules(Thread::VcpuOnMain, kick).unwrap();
        assert!(vcpu.keys().all(|nr| single.contains_key(nr)));
        assert!(both > v);
    }

    /// Runs `body` in a forked child with `filter` installed; returns the child's wait status.
    fn in_child(filter: &Filter, body: fn()) -> i32 {
        // SAFETY: the child only installs the filter, runs `body` (raw syscalls) and _exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = if filter.install().is_ok() { 0 } else { 99 };
            if code == 0 {
                body();
            }
            // SAFETY: _exit ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is writable.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        status
    }

    #[test]
    fn a_forbidden_call_kills_the_process_with_sigsys() {
        let filter = Filter::build(Thread::Vcpu, Mode::Kill, crate::signals::kick()).unwrap();
        let allowed = in_child(&filter, || {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: `ts` is valid and writable for the call.
            unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        });
        assert!(libc::WIFEXITED(allowed) && libc::WEXITSTATUS(allowed) == 0);
        let killed = in_child(&filter, forbidden_call);
        assert!(
            libc::WIFSIGNALED(killed) && libc::WTERMSIG(killed) == libc::SIGSYS,
            "status {killed:#x}"
        );
        let log = Filter::build(Thread::Vcpu, Mode::Log, crate::signals::kick()).unwrap();
        let logged = in_child(&log, forbidden_call);
        assert!(libc::WIFEXITED(logged) && libc::WEXITSTATUS(logged) == 0);
    }

    #[test]
    fn executable_mappings_and_foreign_ioctls_are_refused() {
        let filter = Filter::build(Thread::Vcpu, Mode::Kill, crate::signals::kick()).unwrap();
        let exec = in_child(&filter, || {
            // SAFETY: an anonymous mapping; the filter kills the process before it exists.
            unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ | libc::PROT_EXEC,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
        });
        assert!(libc::WIFSIGNALED(exec) && libc::WTERMSIG(exec) == libc::SIGSYS);
        let tcgets = in_child(&filter, || {
            let mut t = std::mem::MaybeUninit::<libc::termios>::uninit();
            // SAFETY: TCGETS on stdin with a writable termios; refused by the filter.
            unsafe { libc::ioctl(0, libc::TCGETS, t.as_mut_ptr()) };
        });
        assert!(libc::WIFSIGNALED(tcgets) && libc::WTERMSIG(tcgets) == libc::SIGSYS);
    }
}
