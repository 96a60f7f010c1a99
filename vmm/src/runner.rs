//! The run step: a built VM's vCPUs run to the VM's end. A 1-vCPU VM runs its vCPU on the
//! calling thread (no other thread is needed); a larger one gets a thread per vCPU while the
//! calling thread waits in `ppoll` for the first ending event, the timeout or a stop signal,
//! then stops (a flag and one kick each, whose handler sets `immediate_exit`) and joins them.

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
use vmm_sys_util::signal::Killable;

use crate::exit::EndReason;
use crate::seccomp::{self, Filters};
use crate::signals;
use crate::vcpu::{self, Shared};

/// How long the VMM waits for kicked vCPU threads before giving up on them
/// (a kicked thread leaves within one KVM_RUN return; this is a safety net).
const JOIN_DEADLINE: Duration = Duration::from_secs(5);

/// Errors of running the vCPUs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No vCPU to run.
    #[error("a VM needs at least one vCPU; use --vcpus 1 or more")]
    NoVcpus,
    /// Signal masks or the timeout timer.
    #[error(transparent)]
    Signals(#[from] signals::Error),
    /// The eventfd that wakes the main thread when a vCPU thread ends.
    #[error("cannot create the vCPU wake-up eventfd: {0}")]
    Wake(std::io::Error),
    /// A seccomp filter could not be installed.
    #[error(transparent)]
    Seccomp(#[from] seccomp::Error),
    /// A vCPU thread could not be started.
    #[error("cannot start the thread of vCPU {vcpu}: {err}")]
    Thread {
        /// vCPU index.
        vcpu: u32,
        /// The I/O error.
        err: std::io::Error,
    },
}

/// The filters the run's threads install, and whether the vCPU then makes its self-test's
/// forbidden call.
#[derive(Clone, Copy)]
pub struct Guard<'a> {
    /// The filters.
    pub filters: &'a Filters,
    /// Make the self-test's forbidden call after installing the vCPU filter.
    pub selftest: bool,
}

impl Guard<'_> {
    /// Installs the vCPU filter on the calling thread (then the self-test's call, if asked).
    fn enter_vcpu(&self) -> Result<(), seccomp::Error> {
        Filters::install(self.filters.vcpu.as_ref())?;
        if self.selftest {
            seccomp::forbidden_call();
        }
        Ok(())
    }
}

/// Runs the vCPUs to the VM's end: a 1-vCPU VM on this thread (no other
/// thread is needed), a larger one on a thread per vCPU.
pub fn run_vcpus(
    mut fds: Vec<kvm_ioctls::VcpuFd>,
    shared: &Arc<Shared>,
    timeout: Option<Duration>,
    guard: Guard<'_>,
) -> Result<EndReason, Error> {
    match fds.pop() {
        Some(fd) if fds.is_empty() => run_here(fd, shared, timeout, guard),
        Some(last) => {
            fds.push(last);
            run_threads(fds, shared, timeout, guard)
        }
        None => Err(Error::NoVcpus),
    }
}

/// The single vCPU runs on this thread; `--timeout` is a timer signal to it,
/// SIGINT/SIGTERM (when asked for) reach it as the process's only thread
/// that takes signals (KVM's own worker task in the process blocks them all).
fn run_here(
    mut fd: kvm_ioctls::VcpuFd,
    shared: &Shared,
    timeout: Option<Duration>,
    guard: Guard<'_>,
) -> Result<EndReason, Error> {
    let timer = timeout.map(signals::Timer::arm).transpose()?;
    guard.enter_vcpu()?;
    let reason = vcpu::run_loop(&mut fd, 0, shared);
    drop(timer);
    Ok(reason.unwrap_or_else(|| {
        EndReason::InternalError("the vCPU left its loop without a reason".to_string())
    }))
}

/// Wakes the waiting thread when a vCPU thread ends, however it ends.
struct Notify(Arc<EventFd>);

impl Drop for Notify {
    fn drop(&mut self) {
        if let Err(e) = self.0.write(1) {
            log::warn!("cannot wake the VMM's main thread: {e}");
        }
    }
}

/// Starts one thread per vCPU, waits for the first ending event, the
/// timeout or a stop signal, then stops and joins every thread.
fn run_threads(
    fds: Vec<kvm_ioctls::VcpuFd>,
    shared: &Arc<Shared>,
    timeout: Option<Duration>,
    guard: Guard<'_>,
) -> Result<EndReason, Error> {
    let ended = Arc::new(EventFd::new(EFD_NONBLOCK).map_err(Error::Wake)?);
    // The vCPU threads inherit a mask that blocks SIGINT/SIGTERM: those are
    // this thread's, taken in `wait_first_end`.
    let mask = signals::set_mask(libc::SIG_BLOCK, &signals::STOP_SIGNALS)?;
    let (tx, rx) = mpsc::channel();
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    let mut spawn_error = None;
    for (i, mut fd) in fds.into_iter().enumerate() {
        let (shared, tx, notify) = (shared.clone(), tx.clone(), Notify(ended.clone()));
        let index = i as u32;
        let (filters, selftest) = (guard.filters.clone(), guard.selftest);
        match std::thread::Builder::new()
            .name(format!("vcpu{i}"))
            .spawn(move || {
                let guard = Guard {
                    filters: &filters,
                    selftest,
                };
                let ended = match guard.enter_vcpu() {
                    Err(e) => Some(EndReason::InternalError(format!("vCPU {index}: {e}"))),
                    Ok(()) => vcpu::run_loop(&mut fd, index, &shared),
                };
                if let Some(reason) = ended {
                    // The receiver may be gone when another vCPU ended the VM first.
                    let _ = tx.send(reason);
                }
                drop(tx);
                drop(notify);
            }) {
            Ok(t) => threads.push(t),
            Err(err) => {
                spawn_error = Some(Error::Thread { vcpu: index, err });
                break;
            }
        }
    }
    drop(tx);
    let reason = if spawn_error.is_some() {
        EndReason::InternalError("vCPU thread start failed".to_string())
    } else if let Err(e) = Filters::install(guard.filters.main.as_ref()) {
        EndReason::InternalError(format!("main thread: {e}"))
    } else {
        wait_first_end(&rx, &ended, timeout, &mask)
    };
    signals::restore_mask(&mask);
    stop_and_join(shared, threads);
    match spawn_error {
        Some(e) => Err(e),
        None => Ok(reason),
    }
}

/// Waits in ppoll (stop signals unblocked only there, so none is missed
/// between a check and the wait) for the first vCPU end, a stop signal or
/// the timeout.
fn wait_first_end(
    rx: &mpsc::Receiver<EndReason>,
    ended: &EventFd,
    timeout: Option<Duration>,
    mask: &libc::sigset_t,
) -> EndReason {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        if let Some(signo) = signals::take_pending() {
            return EndReason::from_signal(signo);
        }
        match rx.try_recv() {
            Ok(reason) => return reason,
            Err(TryRecvError::Disconnected) => {
                return EndReason::InternalError(
                    "every vCPU thread ended without a reason".to_string(),
                )
            }
            Err(TryRecvError::Empty) => {}
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left == Some(Duration::ZERO) {
            return EndReason::Timeout;
        }
        let ts = left.map(|d| libc::timespec {
            tv_sec: d.as_secs() as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        });
        let mut pfd = libc::pollfd {
            fd: ended.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
        // SAFETY: `pfd` is one valid pollfd, `ts_ptr` is null or a valid timespec, `mask` a
        // valid sigset_t; all outlive the call. EINTR (a stop signal) is handled by the loop.
        unsafe { libc::ppoll(&mut pfd, 1, ts_ptr, mask) };
        let _ = ended.read();
    }
}

/// Sets the stop flag, kicks each vCPU thread once (its handler sets the
/// vCPU's immediate_exit, so a kick that lands outside KVM_RUN is not lost)
/// and joins it.
fn stop_and_join(shared: &Shared, threads: Vec<JoinHandle<()>>) {
    shared.stop.store(true, Ordering::SeqCst);
    for t in &threads {
        if let Err(e) = t.kill(signals::kick()) {
            log::debug!("kick failed: {e}");
        }
    }
    let deadline = Instant::now() + JOIN_DEADLINE;
    for t in threads {
        while !t.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(100));
        }
        if t.is_finished() {
            let _ = t.join();
        } else {
            log::warn!("a vCPU thread did not stop within {JOIN_DEADLINE:?}");
        }
    }
}
