//! The signals the run loop relies on, and their handlers.
//!
//! - The **kick** (SIGRTMIN) ends a vCPU thread's KVM_RUN: the main thread sets the run's stop
//!   flag, then sends each vCPU thread one kick. Its handler sets `immediate_exit` in the
//!   thread's `kvm_run`, so a kick that lands while the thread is outside KVM_RUN (handling an
//!   exit, or about to enter) makes the next KVM_RUN return at once with EINTR: one signal is
//!   enough, there is nothing to repeat (Firecracker's `Vcpu::register_kick_signal_handler` does
//!   the same).
//! - The **timer** (SIGRTMIN+1) is the `--timeout` of a VM whose single vCPU runs on the calling
//!   thread: a POSIX timer sends it to that thread only ([`Timer`]).
//! - **SIGINT and SIGTERM** end the VM cleanly (reason and report as for any other end) when the
//!   run asks for it ([`install`] with `stop_signals`): the handler replaces whatever disposition
//!   was inherited. A process started with `&` by a non-interactive shell inherits SIGINT
//!   ignored; without this it could not be stopped with SIGINT, and SIGTERM killed it without a
//!   report.
//!
//! The handlers touch only two thread-local cells (const-initialised, no destructor: no lazy
//! initialisation runs inside a handler) and `kvm_run`, which is async-signal-safe.

use std::cell::Cell;
use std::sync::atomic::{fence, Ordering};
use std::sync::Once;
use std::time::Duration;
use std::{mem, ptr};

use kvm_bindings::kvm_run;
use kvm_ioctls::VcpuFd;
use libc::c_int;
use vmm_sys_util::signal::{register_signal_handler, SIGRTMIN};

/// Errors of setting up signals and the timeout timer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// sigaction failed.
    #[error("cannot install the handler of signal {signo}: {err}")]
    Handler {
        /// The signal.
        signo: c_int,
        /// What sigaction said.
        err: vmm_sys_util::errno::Error,
    },
    /// pthread_sigmask failed.
    #[error("cannot change the signal mask: {0}")]
    Mask(std::io::Error),
    /// timer_create or timer_settime failed.
    #[error("cannot arm the --timeout timer ({call}): {err}")]
    Timer {
        /// The call that failed.
        call: &'static str,
        /// The OS error.
        err: std::io::Error,
    },
}

/// The signals that end a VM cleanly when the run asks for it.
pub const STOP_SIGNALS: [c_int; 2] = [libc::SIGINT, libc::SIGTERM];

/// The kick that ends a vCPU thread's KVM_RUN.
pub fn kick() -> c_int {
    SIGRTMIN()
}

/// The signal of the timeout timer of a vCPU run on the calling thread.
pub fn timer() -> c_int {
    SIGRTMIN() + 1
}

/// The conventional name of a stop signal ("SIGINT"), else "signal N".
pub fn name(signo: c_int) -> String {
    match signo {
        libc::SIGINT => "SIGINT".to_string(),
        libc::SIGTERM => "SIGTERM".to_string(),
        n => format!("signal {n}"),
    }
}

thread_local! {
    /// The `kvm_run` of the vCPU this thread runs, or null.
    static RUN: Cell<*mut kvm_run> = const { Cell::new(ptr::null_mut()) };
    /// The first stop or timer signal this thread received, or 0.
    static PENDING: Cell<c_int> = const { Cell::new(0) };
}

/// Makes the thread's next (or current) KVM_RUN return with EINTR.
fn set_immediate_exit() {
    let run = RUN.with(Cell::get);
    if !run.is_null() {
        // SAFETY: `run` is the kvm_run mapping of the VcpuFd a live `Registered` guard on this
        // thread points at; the guard clears it before the VcpuFd (and its mapping) goes away.
        unsafe { ptr::addr_of_mut!((*run).immediate_exit).write_volatile(1) };
    }
    fence(Ordering::SeqCst);
}

extern "C" fn kick_handler(_: c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    set_immediate_exit();
}

extern "C" fn stop_handler(signo: c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    PENDING.with(|p| {
        if p.get() == 0 {
            p.set(signo);
        }
    });
    set_immediate_exit();
}

/// Installs the kick and timer handlers (once per process), and with `stop_signals` the
/// SIGINT/SIGTERM handlers (replacing an inherited "ignore"); unblocks all of them in the
/// calling thread, whose mask a parent may have left blocking them.
pub fn install(stop_signals: bool) -> Result<(), Error> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result = register(kick(), kick_handler).and_then(|()| register(timer(), stop_handler));
    });
    result?;
    let mut wanted = vec![kick(), timer()];
    if stop_signals {
        for signo in STOP_SIGNALS {
            register(signo, stop_handler)?;
        }
        wanted.extend(STOP_SIGNALS);
    }
    set_mask(libc::SIG_UNBLOCK, &wanted).map(drop)
}

fn register(signo: c_int, handler: vmm_sys_util::signal::SignalHandler) -> Result<(), Error> {
    register_signal_handler(signo, handler).map_err(|err| Error::Handler { signo, err })
}

/// Changes the calling thread's signal mask by `how` for `signals`; returns the old mask.
pub fn set_mask(how: c_int, signals: &[c_int]) -> Result<libc::sigset_t, Error> {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it below.
    let mut set: libc::sigset_t = unsafe { mem::zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    for &signo in signals {
        // SAFETY: `set` is an initialised sigset_t; an invalid `signo` only returns EINVAL.
        unsafe { libc::sigaddset(&mut set, signo) };
    }
    // SAFETY: sigset_t is plain data; pthread_sigmask fills it.
    let mut old: libc::sigset_t = unsafe { mem::zeroed() };
    // SAFETY: both pointers are valid sigset_t for the duration of the call.
    let rc = unsafe { libc::pthread_sigmask(how, &set, &mut old) };
    if rc != 0 {
        return Err(Error::Mask(std::io::Error::from_raw_os_error(rc)));
    }
    Ok(old)
}

/// Restores a mask [`set_mask`] returned.
pub fn restore_mask(old: &libc::sigset_t) {
    // SAFETY: `old` is a valid sigset_t; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old, ptr::null_mut()) };
    if rc != 0 {
        log::warn!("cannot restore the signal mask: error {rc}");
    }
}

/// Takes the stop or timer signal this thread received, if any.
pub fn take_pending() -> Option<c_int> {
    let signo = PENDING.with(|p| p.replace(0));
    (signo != 0).then_some(signo)
}

/// While alive, the calling thread's kicks and stop signals set `immediate_exit` of this vCPU.
/// Drop it before the `VcpuFd` (a local declared after the fd is dropped first).
pub struct Registered(());

impl Registered {
    /// Points the calling thread's handlers at `fd`'s `kvm_run`.
    pub fn new(fd: &mut VcpuFd) -> Self {
        let run: *mut kvm_run = fd.get_kvm_run();
        RUN.with(|r| r.set(run));
        Registered(())
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        RUN.with(|r| r.set(ptr::null_mut()));
        fence(Ordering::SeqCst);
    }
}

/// A one-shot POSIX timer that sends [`timer`] to the thread that armed it; deleted on drop.
pub struct Timer(libc::timer_t);

impl Timer {
    /// Arms a timer firing once after `after` at the calling thread.
    pub fn arm(after: Duration) -> Result<Timer, Error> {
        let os_err = |call| Error::Timer {
            call,
            err: std::io::Error::last_os_error(),
        };
        // SAFETY: sigevent is plain data; the fields the kernel reads are set below.
        let mut sev: libc::sigevent = unsafe { mem::zeroed() };
        sev.sigev_notify = libc::SIGEV_THREAD_ID;
        sev.sigev_signo = timer();
        // SAFETY: gettid has no preconditions.
        sev.sigev_notify_thread_id = unsafe { libc::gettid() };
        let mut id: libc::timer_t = ptr::null_mut();
        // SAFETY: `sev` and `id` are valid for the call; the kernel copies `sev`.
        if unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, &mut sev, &mut id) } != 0 {
            return Err(os_err("timer_create"));
        }
        let timer = Timer(id);
        // A zero it_value would disarm the timer: at least 1 ns.
        let after = after.max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs() as libc::time_t,
                tv_nsec: after.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: `timer.0` is the timer just created; `spec` is valid; no old value wanted.
        if unsafe { libc::timer_settime(timer.0, 0, &spec, ptr::null_mut()) } != 0 {
            return Err(os_err("timer_settime"));
        }
        Ok(timer)
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        // SAFETY: `self.0` was created by timer_create and is deleted only here.
        unsafe { libc::timer_delete(self.0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_signal_is_taken_once_on_the_arming_thread() {
        // On a thread of its own: the test harness's threads must not see the signal.
        std::thread::spawn(|| {
            install(false).unwrap();
            assert_eq!(take_pending(), None);
            let t = Timer::arm(Duration::from_millis(5)).unwrap();
            let start = std::time::Instant::now();
            let got = loop {
                if let Some(signo) = take_pending() {
                    break signo;
                }
                assert!(start.elapsed() < Duration::from_secs(5), "no timer signal");
                std::thread::sleep(Duration::from_millis(1));
            };
            assert_eq!(got, timer());
            assert_eq!(take_pending(), None, "taken once");
            drop(t);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn names() {
        assert_eq!(name(libc::SIGINT), "SIGINT");
        assert_eq!(name(libc::SIGTERM), "SIGTERM");
        assert_eq!(name(40), "signal 40");
    }
}
