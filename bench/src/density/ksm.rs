//! `--ksm`: Kernel Samepage Merging on for a VM ramp. `/sys/kernel/mm/ksm/run`
//! is set to 1 for the ramp and set back to its previous value when the
//! guard drops (also after Ctrl-C, which only sets a flag). KSM merges only
//! memory marked mergeable: QEMU marks guest RAM (MADV_MERGEABLE), vclab's
//! VMM does not; so the harness also asks for process-wide merging
//! (PR_SET_MEMORY_MERGE, inherited by the instances it spawns), which needs
//! CAP_SYS_RESOURCE, and records whether it got it.

use super::measure::read_value;
use super::record::LimitChange;

const RUN: &str = "/sys/kernel/mm/ksm/run";
/// prctl PR_SET_MEMORY_MERGE (Linux 6.4).
const PR_SET_MEMORY_MERGE: libc::c_int = 67;

/// Errors switching KSM on.
#[derive(Debug, thiserror::Error)]
pub enum KsmError {
    /// No KSM on this kernel.
    #[error("KSM is not available here (no {RUN}): --ksm needs CONFIG_KSM")]
    Absent,
    /// The switch could not be written.
    #[error("cannot write {RUN}: {0} (run as root)")]
    Write(std::io::Error),
}

/// KSM switched on; restored on drop.
#[derive(Debug)]
pub struct KsmOn {
    before: String,
    restored: bool,
    /// Whether process-wide merging (PR_SET_MEMORY_MERGE) was granted, or why not.
    pub merge_any: Result<(), String>,
}

impl KsmOn {
    /// Sets run = 1 and asks for process-wide merging for the instances to come.
    pub fn on() -> Result<KsmOn, KsmError> {
        let before = read_value(RUN).ok_or(KsmError::Absent)?;
        std::fs::write(RUN, "1").map_err(KsmError::Write)?;
        // SAFETY: prctl with integer arguments only; no memory is passed.
        let r = unsafe { libc::prctl(PR_SET_MEMORY_MERGE, 1 as libc::c_ulong, 0, 0, 0) };
        let merge_any = if r == 0 {
            Ok(())
        } else {
            Err(format!(
                "PR_SET_MEMORY_MERGE refused: {} (needs CAP_SYS_RESOURCE); only memory a VMM marks MADV_MERGEABLE (QEMU's guest RAM) can merge",
                std::io::Error::last_os_error()
            ))
        };
        Ok(KsmOn {
            before,
            restored: false,
            merge_any,
        })
    }

    /// Restores the previous value; returns the change as recorded.
    pub fn restore(&mut self) -> LimitChange {
        if !self.restored {
            if self.merge_any.is_ok() {
                // SAFETY: prctl with integer arguments only.
                unsafe { libc::prctl(PR_SET_MEMORY_MERGE, 0 as libc::c_ulong, 0, 0, 0) };
            }
            self.restored = std::fs::write(RUN, &self.before).is_ok();
        }
        LimitChange {
            name: RUN.into(),
            before: self.before.clone(),
            during: "1".into(),
            restored: self.restored,
        }
    }
}

impl Drop for KsmOn {
    fn drop(&mut self) {
        self.restore();
    }
}

/// Whether KSM exists here.
pub fn available() -> bool {
    std::path::Path::new(RUN).exists()
}
