//! `--snapshot-at ready`: everything the snapshot needs is made ready before the guest runs
//! ([`Pending::prepare`]: the directory and its files created, the MSR list read), so that at
//! the guest's ready signal its only vCPU, under its seccomp filter, just reads the KVM state
//! and writes the files ([`Pending::take`]), then re-enters the guest (Firecracker's
//! pause → snapshot → resume, in one run).

use std::path::Path;
use std::sync::Arc;

use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use serde::{Deserialize, Serialize};
use vclab_contract::KernelFormat;
use vm_memory::GuestMemoryMmap;

use super::{format, vcpu, DeviceStates, Error, SaveMode};
use crate::config::SnapshotReport;
use crate::devices::Clock;

/// The key of [`BootRecord`] in [`DeviceStates::other`].
pub const BOOT_KEY: &str = "boot";

/// What the snapshotted VM was booted with, for the restored run's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootRecord {
    /// The kernel's format.
    pub kernel_format: KernelFormat,
    /// Whether it was treated as Linux.
    pub linux: bool,
    /// The command line the guest got at boot.
    pub cmdline: String,
    /// KVM_GET_TSC_KHZ at boot.
    pub tsc_khz: Option<u32>,
}

/// A snapshot waiting for the guest's ready signal.
pub struct Pending {
    vm: Arc<VmFd>,
    mem: GuestMemoryMmap,
    msr_indices: Vec<u32>,
    prepared: Option<format::Prepared>,
    mode: SaveMode,
    boot: BootRecord,
    clock: Clock,
    /// What the snapshot cost, once taken.
    pub taken: Option<SnapshotReport>,
}

impl Pending {
    /// Makes `dir` ready (an older snapshot there is deleted now, not inside the pause) and
    /// reads the MSR list, before any seccomp filter.
    pub fn prepare(
        dir: &Path,
        kvm: &Kvm,
        vm: Arc<VmFd>,
        mem: GuestMemoryMmap,
        mode: SaveMode,
        boot: BootRecord,
        clock: Clock,
    ) -> Result<Pending, Error> {
        let msr_indices = vcpu::msr_indices(kvm).map_err(|err| Error::Vcpu { index: 0, err })?;
        let prepared = format::prepare(dir)?;
        format::remove_stale(dir)?;
        Ok(Pending {
            vm,
            mem,
            msr_indices,
            prepared: Some(prepared),
            mode,
            boot,
            clock,
            taken: None,
        })
    }

    /// Takes the snapshot of the paused VM whose only vCPU is `fd` (out of KVM_RUN, on this
    /// thread), with `devices` as the device states. A second call does nothing.
    pub fn take(&mut self, fd: &mut VcpuFd, mut devices: DeviceStates) -> Result<(), Error> {
        let Some(prepared) = self.prepared.take() else {
            return Ok(());
        };
        let paused_ns = self.clock.now_ns();
        let dir = prepared.dir().display().to_string();
        vcpu::settle(fd).map_err(|err| Error::Vcpu { index: 0, err })?;
        let cpu = vcpu::save(&self.vm, fd, &self.msr_indices)
            .map_err(|err| Error::Vcpu { index: 0, err })?;
        if let Ok(v) = serde_json::to_value(&self.boot) {
            devices.other.insert(BOOT_KEY.to_string(), v);
        }
        let state = format::State {
            vm: super::vm::save(&self.vm)?,
            vcpus: vec![cpu],
            devices,
        };
        let written = format::commit(prepared, &state, &self.mem, self.mode)?;
        let snapshot_ns = self.clock.now_ns().saturating_sub(paused_ns);
        let m = &written.manifest;
        self.taken = Some(SnapshotReport {
            dir,
            paused_ns,
            snapshot_ns,
            memory_bytes: m.memory.size,
            memory_written_bytes: written.memory_written,
            state_bytes: m.state.size,
            manifest_bytes: serde_json::to_vec_pretty(m).map_or(0, |b| b.len() as u64),
        });
        Ok(())
    }
}
