//! Ctrl-C: SIGINT (and SIGTERM) only set a flag; the ramp checks it between
//! launches, tears everything down and still writes what was measured.
//!
//! The handler is installed whatever the inherited disposition: a process
//! started with `&` by a non-interactive shell inherits SIGINT *ignored*
//! (HOST-NOTES.md), and would otherwise never see a Ctrl-C or a test's
//! SIGINT. Instances get the default disposition back at exec (a caught
//! signal is reset there; only an ignored one would be inherited).

use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Errors installing the handler.
#[derive(Debug, thiserror::Error)]
pub enum InterruptError {
    /// sigaction failed.
    #[error("cannot install the {signal} handler: {source}")]
    Install {
        /// The signal.
        signal: Signal,
        /// The errno.
        source: nix::Error,
    },
}

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Installs the flag-setting handler for SIGINT and SIGTERM.
pub fn install() -> Result<(), InterruptError> {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; no other handler of these signals is relied on.
        unsafe { sigaction(signal, &action) }
            .map_err(|source| InterruptError::Install { signal, source })?;
    }
    Ok(())
}

/// Whether Ctrl-C (or SIGTERM) arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handler_sets_the_flag() {
        // Not raised for real: the test harness shares the process. The
        // end-to-end test sends SIGINT to `vclab density`.
        assert!(!interrupted());
        on_signal(libc::SIGINT);
        assert!(interrupted());
        INTERRUPTED.store(false, Ordering::SeqCst);
    }
}
