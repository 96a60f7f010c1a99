//! The restore recipe (`--restore DIR`), Firecracker's `build_microvm_from_snapshot` order:
//! snapshot checked and loaded → KVM and the VM → guest memory from the memory file in the
//! asked mode (`mmap`, `eager`, `uffd`) and its KVM slots → irqchip and PIT → vCPUs created
//! and their state restored, then the VM-wide state → devices (the lab device answers the
//! guest's params register with `--cmdline-after-restore`) → seccomp filters, as a boot.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use crate::boot::Error as BootError;
use crate::config::{ProcFiles, RestoreReport, RestoreSpec, VmConfig};
use crate::devices::Clock;
use crate::exit::Policy;
use crate::host::KvmKind;
use crate::loader::KernelFormat;
use crate::snapshot::pause::{BootRecord, BOOT_KEY};
use crate::snapshot::{self, format, memory as snap_memory};
use crate::vcpu::{self, Shared};
use crate::vm::{Facts, Vmm};
use crate::{attach, kvm, memory, signals};

/// Errors of restoring a VM.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The snapshot directory or its files.
    #[error(transparent)]
    Format(#[from] format::Error),
    /// Guest memory from the memory file.
    #[error(transparent)]
    Memory(#[from] snap_memory::Error),
    /// The KVM state.
    #[error(transparent)]
    State(#[from] snapshot::Error),
    /// Options a restore cannot take.
    #[error("--restore {dir}: {what}")]
    Option {
        /// The snapshot directory.
        dir: String,
        /// What to drop.
        what: &'static str,
    },
}

/// Builds a VM from the snapshot `spec` names, ready to run.
pub fn build(config: &VmConfig, spec: &RestoreSpec) -> Result<Vmm, BootError> {
    let clock = Clock::new(config.origin);
    let start_ns = clock.now_ns();
    refuse_boot_options(config, spec)?;
    let proc_files = config.proc_files.clone().or_else(|| ProcFiles::open().ok());
    signals::take_pending();
    signals::install(config.stop_signals)?;
    let kind = config.kvm_kind.unwrap_or_else(KvmKind::detect);

    // The snapshot, checked whole before KVM is touched.
    let loaded = format::load(&spec.dir, format::Expect::default()).map_err(Error::from)?;
    let vcpu_count = loaded.manifest.vcpus;

    // KVM, guest memory and its slots, then the interrupt controllers (slots first, as a boot).
    let kvm = kvm::open(vcpu_count)?;
    let vm = Arc::new(kvm::create_vm(&kvm)?);
    let restored = snap_memory::restore(
        &loaded.memory_path,
        &loaded.manifest.regions,
        spec.mode,
        config.hugepages,
    )
    .map_err(Error::from)?;
    memory::register(&vm, &restored.mem)?;
    kvm::create_irqchip(&vm)?;

    // vCPUs, their state and the VM's (irqchip, PIT, clock).
    let vcpu_fds = (0..vcpu_count)
        .map(|i| vcpu::create(&vm, i))
        .collect::<Result<Vec<_>, _>>()?;
    snapshot::restore_state(&vm, &vcpu_fds, &loaded.state).map_err(Error::from)?;

    // Devices: the UART's registers back, the lab device with the after-restore text.
    let saved = &loaded.state.devices;
    let disks = attach::Disks::none();
    let mut devices = super::devices::build(
        config,
        &vm,
        &restored.mem,
        &disks,
        clock,
        saved.serial.as_ref(),
    )?;
    devices.labctl.after_restore = Some(spec.cmdline_after.clone().unwrap_or_default());
    let booted: Option<BootRecord> = saved
        .other
        .get(BOOT_KEY)
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    let shared = Arc::new(Shared {
        devices: Mutex::new(devices),
        stop: AtomicBool::new(false),
        policy: Policy::default(),
        first_run_ns: Mutex::new(None),
        last_rip: Mutex::new(vec![None; vcpu_count as usize]),
        snapshot: None,
    });
    let facts = Facts {
        vm_built_ns: 0,
        format: booted
            .as_ref()
            .map_or(KernelFormat::Elf, |b| b.kernel_format),
        linux: booted.as_ref().is_some_and(|b| b.linux),
        cmdline: booted
            .as_ref()
            .map(|b| b.cmdline.clone())
            .unwrap_or_default(),
        tsc_khz: booted.as_ref().and_then(|b| b.tsc_khz),
        kind,
        proc_files,
        restore: Some(RestoreReport {
            dir: spec.dir.display().to_string(),
            mode: spec.mode.to_string(),
            restore_ns: clock.now_ns().saturating_sub(start_ns),
            uffd_faults: None,
        }),
    };
    Vmm::finish(
        config,
        vm,
        restored.mem,
        vcpu_fds,
        shared,
        disks,
        restored.uffd,
        clock,
        facts,
    )
}

/// A restored VM is the snapshot's: options that would shape a booted one are refused
/// rather than silently ignored.
fn refuse_boot_options(config: &VmConfig, spec: &RestoreSpec) -> Result<(), Error> {
    let what = if !config.disks.is_empty() {
        Some("a restored VM has the snapshot's devices; drop --disk")
    } else if config.snapshot.is_some() {
        Some("a restored VM cannot take a snapshot at its ready signal (it was given already); drop --snapshot-at")
    } else if config.initrd.is_some() {
        Some("the snapshot holds the guest's memory; drop --initrd")
    } else {
        None
    };
    match what {
        Some(what) => Err(Error::Option {
            dir: spec.dir.display().to_string(),
            what,
        }),
        None => Ok(()),
    }
}
