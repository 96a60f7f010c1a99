//! Snapshot and restore building blocks: a paused VM's vCPU state ([`vcpu`]), its
//! VM-wide KVM state ([`vm`]), guest memory as a file and its restore modes ([`memory`],
//! [`uffd`]) and the snapshot directory with its checked manifest ([`format`]).
//!
//! Taking a snapshot (the VM paused: no vCPU inside KVM_RUN):
//! `vm::save` → `vcpu::save` per vCPU → the devices' [`DeviceStates`] →
//! `format::write` (memory, state, then the manifest).
//!
//! Restoring (Firecracker's order, `build_microvm_from_snapshot`): `format::load` →
//! `memory::restore` → `memory::register` (KVM slots) → `kvm::create_irqchip` →
//! `vm::restore` → vCPUs created, `vcpu::restore` each → devices from [`DeviceStates`] →
//! run.

pub mod format;
pub mod memory;
pub mod pause;
pub mod uffd;
pub mod vcpu;
pub mod vm;

#[cfg(test)]
mod tests;

use std::path::Path;

use kvm_ioctls::{VcpuFd, VmFd};
use serde::{Deserialize, Serialize};
use vm_memory::GuestMemoryMmap;

pub use format::{load, remove_stale, write, Expect, Loaded, Manifest, State, Written};
pub use memory::{RestoreMode, SaveMode};
pub use vcpu::VcpuState;
pub use vm::VmState;

/// Errors of taking or restoring a whole snapshot.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A vCPU's state.
    #[error("vCPU {index}: {err}")]
    Vcpu {
        /// vCPU index.
        index: usize,
        /// What failed.
        err: vcpu::Error,
    },
    /// The VM-wide state.
    #[error(transparent)]
    Vm(#[from] vm::Error),
    /// The snapshot directory.
    #[error(transparent)]
    Format(#[from] format::Error),
    /// The restored state does not fit the VM built for it.
    #[error("the snapshot has {state} vCPU states, the restored VM {vm} vCPUs; take a new snapshot with --snapshot-at ready")]
    VcpuCount {
        /// States in the snapshot.
        state: usize,
        /// vCPUs created.
        vm: usize,
    },
}

/// Takes a snapshot of a paused VM into `dir`: each vCPU settled (its last exit
/// finished) and saved, the VM-wide state, `devices`, then `mem` and the manifest.
/// `msr_indices` comes from [`vcpu::msr_indices`] (read it once, before any seccomp
/// filter). Every vCPU must be out of KVM_RUN, on this thread.
pub fn take(
    dir: &Path,
    vm: &VmFd,
    vcpus: &mut [VcpuFd],
    msr_indices: &[u32],
    devices: DeviceStates,
    mem: &GuestMemoryMmap,
    mode: SaveMode,
) -> Result<Written, Error> {
    let mut states = Vec::with_capacity(vcpus.len());
    for (index, fd) in vcpus.iter_mut().enumerate() {
        let wrap = |err| Error::Vcpu { index, err };
        vcpu::settle(fd).map_err(wrap)?;
        states.push(vcpu::save(vm, fd, msr_indices).map_err(wrap)?);
    }
    let state = State {
        vm: vm::save(vm)?,
        vcpus: states,
        devices,
    };
    Ok(format::write(dir, &state, mem, mode)?)
}

/// Restores the KVM state of `state` into a VM built for it: guest memory registered
/// (from [`memory::restore`]), irqchip and PIT created, `vcpus` created and not run yet.
/// The devices ([`State::devices`]) are the caller's.
pub fn restore_state(vm: &VmFd, vcpus: &[VcpuFd], state: &State) -> Result<(), Error> {
    if vcpus.len() != state.vcpus.len() {
        return Err(Error::VcpuCount {
            state: state.vcpus.len(),
            vm: vcpus.len(),
        });
    }
    vm::restore(vm, &state.vm)?;
    for (index, (fd, s)) in vcpus.iter().zip(&state.vcpus).enumerate() {
        vcpu::restore(vm, fd, s).map_err(|err| Error::Vcpu { index, err })?;
    }
    Ok(())
}

/// The VMM's own devices' state, filled by the boot code when it snapshots (serial
/// registers, the lab control device...). A plain struct: add fields as devices learn to
/// save themselves, each with `#[serde(default)]` so older snapshots of the same format
/// still load.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceStates {
    /// The COM1 UART's registers, when saved.
    #[serde(default)]
    pub serial: Option<SerialRegs>,
    /// The lab control device's state, when saved (its own serde encoding).
    #[serde(default)]
    pub labctl: Option<serde_json::Value>,
    /// Other devices by name (virtio-mmio transports and their backends...).
    #[serde(default)]
    pub other: std::collections::BTreeMap<String, serde_json::Value>,
}

/// vm-superio's `SerialState` (which has no serde), field for field: the 16550A's
/// registers and the bytes waiting in its receive buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SerialRegs {
    /// Divisor latch, low byte.
    pub baud_divisor_low: u8,
    /// Divisor latch, high byte.
    pub baud_divisor_high: u8,
    /// IER.
    pub interrupt_enable: u8,
    /// IIR.
    pub interrupt_identification: u8,
    /// LCR.
    pub line_control: u8,
    /// LSR.
    pub line_status: u8,
    /// MCR.
    pub modem_control: u8,
    /// MSR.
    pub modem_status: u8,
    /// SCR.
    pub scratch: u8,
    /// Received bytes the guest has not read.
    pub in_buffer: Vec<u8>,
}

impl From<&vm_superio::serial::SerialState> for SerialRegs {
    fn from(s: &vm_superio::serial::SerialState) -> Self {
        SerialRegs {
            baud_divisor_low: s.baud_divisor_low,
            baud_divisor_high: s.baud_divisor_high,
            interrupt_enable: s.interrupt_enable,
            interrupt_identification: s.interrupt_identification,
            line_control: s.line_control,
            line_status: s.line_status,
            modem_control: s.modem_control,
            modem_status: s.modem_status,
            scratch: s.scratch,
            in_buffer: s.in_buffer.clone(),
        }
    }
}

impl From<&SerialRegs> for vm_superio::serial::SerialState {
    fn from(s: &SerialRegs) -> Self {
        vm_superio::serial::SerialState {
            baud_divisor_low: s.baud_divisor_low,
            baud_divisor_high: s.baud_divisor_high,
            interrupt_enable: s.interrupt_enable,
            interrupt_identification: s.interrupt_identification,
            line_control: s.line_control,
            line_status: s.line_status,
            modem_control: s.modem_control,
            modem_status: s.modem_status,
            scratch: s.scratch,
            in_buffer: s.in_buffer.clone(),
        }
    }
}
