//! `idle`: print the ready line, then wait for SIGTERM or SIGINT.

use std::fmt;
use std::io::{self, Write};

use vclab_workload::READY_LINE;

/// A failure while idling.
#[derive(Debug)]
pub enum IdleError {
    /// Blocking or waiting for the signals failed.
    Signals(&'static str, io::Error),
    /// The ready line could not be written.
    Print(io::Error),
}

impl fmt::Display for IdleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdleError::Signals(call, e) => write!(f, "{call} for SIGTERM/SIGINT failed: {e}"),
            IdleError::Print(e) => write!(f, "cannot write the ready line to stdout: {e}"),
        }
    }
}

/// Blocks SIGTERM and SIGINT (before announcing ready, so none is lost), prints the ready line and
/// waits for one of them. Also works as PID 1 of a PID namespace: blocked signals are queued, not
/// dropped as default-action signals to init would be.
pub fn run() -> Result<(), IdleError> {
    let set = signal_set()?;
    // SAFETY: `set` is an initialised signal set; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(IdleError::Signals(
            "pthread_sigmask",
            io::Error::from_raw_os_error(rc),
        ));
    }
    let mut out = io::stdout().lock();
    writeln!(out, "{READY_LINE}").map_err(IdleError::Print)?;
    out.flush().map_err(IdleError::Print)?;
    let mut signal: libc::c_int = 0;
    // SAFETY: `set` is initialised and `signal` is a valid place for the result.
    let rc = unsafe { libc::sigwait(&set, &mut signal) };
    if rc != 0 {
        return Err(IdleError::Signals(
            "sigwait",
            io::Error::from_raw_os_error(rc),
        ));
    }
    Ok(())
}

/// The set {SIGTERM, SIGINT}.
fn signal_set() -> Result<libc::sigset_t, IdleError> {
    // SAFETY: sigset_t is plain data; sigemptyset below initialises it before any other use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` points to a writable sigset_t.
    if unsafe { libc::sigemptyset(&mut set) } != 0 {
        return Err(IdleError::Signals(
            "sigemptyset",
            io::Error::last_os_error(),
        ));
    }
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: `set` is initialised and `sig` is a valid signal number.
        if unsafe { libc::sigaddset(&mut set, sig) } != 0 {
            return Err(IdleError::Signals("sigaddset", io::Error::last_os_error()));
        }
    }
    Ok(set)
}
