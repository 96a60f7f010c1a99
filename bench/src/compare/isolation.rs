//! The isolation probe of `vclab compare` (issue 15's "isolation line, measured"): once per run,
//! `vclab-workload probe` in the bare, container (default seccomp profile and unconfined), crun
//! and runc rows, plus the VMM's side (how many syscalls its seccomp filters allow). Three steps,
//! as the rest of the harness: measure ([`probe`]: one launch per row, the probe's JSON line kept
//! as it came), summarise ([`summary`]: pure, on the saved record), render ([`summary::table`],
//! the course table's "isolation" line in `course.rs`). Saved as `results.json`'s `isolation`
//! (absent in older files and with `--no-isolation`).

pub mod probe;
pub mod summary;

use serde::{Deserialize, Serialize};

/// What the isolation probe saw, as saved in `results.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Isolation {
    /// One entry per probed row, in display order.
    pub rows: Vec<RowProbe>,
    /// The micro-VM's side.
    pub vm: VmSurface,
}

/// One row's probe.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RowProbe {
    /// The row: `bare`, `container`, `container-unconfined`, `crun`, `runc`.
    pub row: String,
    /// How the row was configured (profile, capabilities, masks).
    pub config: String,
    /// The probe's JSON line (`vclab-workload probe`, format 1), as printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<serde_json::Value>,
    /// Why there is no line (not available here, launch failed, no line printed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// The VMM's attack surface toward the host kernel and toward the guest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct VmSurface {
    /// Syscalls the vCPU threads' seccomp filter allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls_vcpu: Option<usize>,
    /// Syscalls the main thread's filter allows (VMs with vCPU threads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls_main: Option<usize>,
    /// Syscalls the filter of a 1-vCPU VM's main thread (which runs the vCPU) allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls_single: Option<usize>,
    /// VM exit kinds the exit handler acts on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_kinds: Option<usize>,
    /// Device registers (ports and MMIO addresses) the VMM emulates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_registers: Option<usize>,
    /// What could not be counted, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}
