//! The boot recipe. [`build`] reads top to bottom like the boot sequence:
//! checks → KVM → memory → kernel + initrd + cmdline + boot_params → vCPUs
//! (cpuid → msrs → regs → sregs → fpu → lapic) → devices → seccomp filters; it returns the
//! [`Vmm`] that `vm::run` runs (`runner.rs`) and reports (`report.rs`).

use std::fs::File;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use kvm_bindings::KVM_MAX_CPUID_ENTRIES;
use vm_memory::GuestMemoryMmap;

use crate::config::{ProcFiles, StopAt, VmConfig, VmReport};
use crate::devices::Clock;
use crate::exit::Policy;
use crate::host::KvmKind;
use crate::loader::{self, KernelFormat};
use crate::seccomp;
use crate::snapshot;
use crate::snapshot::pause::{BootRecord, Pending};
use crate::vcpu::{self, Shared};
use crate::vm::{devices as vm_devices, restore, Facts, Vmm};
use crate::{attach, cache, cmdline, cpuid, kvm, memory, mptable, regs, runner, signals};

/// The marker the lab's own Linux kernel carries in its version string.
pub const LAB_KERNEL_MARKER: &str = "vclab";

/// Errors of setting up and running a VM.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--vcpus 0`.
    #[error("a VM needs at least one vCPU; use --vcpus 1 or more")]
    NoVcpus,
    /// KVM could not be opened or set up.
    #[error(transparent)]
    Kvm(#[from] kvm::Error),
    /// Guest memory.
    #[error(transparent)]
    Memory(#[from] memory::Error),
    /// Kernel, initrd, zero page.
    #[error(transparent)]
    Loader(#[from] loader::Error),
    /// Command line.
    #[error(transparent)]
    Cmdline(#[from] cmdline::Error),
    /// MP table.
    #[error(transparent)]
    MpTable(#[from] mptable::Error),
    /// Disks.
    #[error(transparent)]
    Attach(#[from] attach::Error),
    /// Descriptor and page tables.
    #[error(transparent)]
    Regs(#[from] regs::Error),
    /// CPUID.
    #[error(transparent)]
    Cpuid(#[from] cpuid::Error),
    /// vCPUs.
    #[error(transparent)]
    Vcpu(#[from] vcpu::Error),
    /// A distro bzImage on kvm_pvm.
    #[error("kernel {path} (version {version:?}) is not the lab's kernel: on kvm_pvm its INT3 self-test stops the boot and cannot be switched off; boot the lab's vmlinux or bzImage instead")]
    ForeignKernelOnPvm {
        /// The kernel path.
        path: String,
        /// Its version string.
        version: String,
    },
    /// The console file could not be created.
    #[error("cannot open console file {path}: {err} ({hint})")]
    ConsoleFile {
        /// The path.
        path: String,
        /// What to do.
        hint: &'static str,
        /// The I/O error.
        err: std::io::Error,
    },
    /// The serial interrupt eventfd.
    #[error("cannot set up the serial interrupt (eventfd/irqfd): {0}")]
    SerialIrq(String),
    /// Signal handlers, masks or the timeout timer.
    #[error(transparent)]
    Signals(#[from] signals::Error),
    /// The seccomp filters could not be built.
    #[error(transparent)]
    Seccomp(#[from] seccomp::Error),
    /// Running the vCPUs.
    #[error(transparent)]
    Run(#[from] runner::Error),
    /// Preparing or taking a snapshot.
    #[error(transparent)]
    Snapshot(#[from] snapshot::Error),
    /// Restoring from a snapshot.
    #[error(transparent)]
    Restore(#[from] restore::Error),
    /// `--snapshot-at` on a VM it cannot snapshot yet.
    #[error("--snapshot-at: {0}")]
    SnapshotUnsupported(&'static str),
}

/// Boots one VM as `config` says, runs it to its end and reports (see `vm::run`).
pub fn run(config: &VmConfig) -> Result<VmReport, Error> {
    crate::vm::run(config)
}

/// Builds a VM for a boot as `config` says, ready to run.
pub fn build(config: &VmConfig) -> Result<Vmm, Error> {
    let clock = Clock::new(config.origin);
    if config.vcpus == 0 {
        return Err(Error::NoVcpus);
    }
    if config.vcpus > mptable::MAX_VCPUS {
        return Err(mptable::Error::TooManyVcpus(config.vcpus).into());
    }
    if !config.host_checked {
        memory::check_size(config.mem_mib)?;
    }
    // Opened before any filter or jail root hides them; the report reads them at the end.
    let proc_files = config.proc_files.clone().or_else(|| ProcFiles::open().ok());
    // Signals first, so a SIGINT during set-up already ends the run cleanly.
    signals::take_pending();
    signals::install(config.stop_signals)?;
    let kind = config.kvm_kind.unwrap_or_else(KvmKind::detect);
    let (mut kernel_file, info) = loader::probe(&config.kernel)?;
    let linux = config.linux_compat.unwrap_or(info.is_linux);
    refuse_foreign_kernel_on_pvm(config, kind, &info)?;
    let disk_files = attach::open(&config.disks, &config.opened_disks)?;
    if config.snapshot.is_some() {
        check_snapshot_fits(config)?;
    }

    // KVM, the VM and guest RAM (kernel and initrd loaded into it), then
    // the interrupt controllers: memory slots go in before the irqchip (see
    // `kvm::create_irqchip`).
    let kvm = kvm::open(config.vcpus)?;
    let vm = Arc::new(kvm::create_vm(&kvm)?);
    let (mem, loaded, initrd) = load_guest(config, &vm, &mut kernel_file, &info)?;
    drop(kernel_file);
    kvm::create_irqchip(&vm)?;
    let disks = attach::attach(disk_files, &vm, &mem)?;
    let supported = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(cpuid::Error::Supported)?;

    // vCPUs exist before the command line: it carries the boot vCPU's TSC rate.
    let vcpu_fds = (0..config.vcpus)
        .map(|i| vcpu::create(&vm, i))
        .collect::<Result<Vec<_>, _>>()?;
    let tsc_khz = vcpu_fds[0].get_tsc_khz().ok();

    // Command line and boot_params. Linux prints its init handoff line at
    // info level, which `quiet` hides: a run that stops there keeps it visible.
    let stop_at_handoff = match config.stop_at {
        StopAt::Auto => linux && !kind.runs_linux_userspace() && kind != KvmKind::Unknown,
        StopAt::InitHandoff => true,
        StopAt::Never => false,
    };
    let cmdline = cmdline::build(
        &cmdline::Parts {
            linux,
            quiet: !config.verbose_guest && !stop_at_handoff,
            pvm_quirks: linux && kind == KvmKind::Pvm,
            pvm_smp_quirks: linux && kind == KvmKind::Pvm && config.vcpus > 1,
            tsc_khz,
            virtio_mmio: disks.mmio_devices(),
            user: &config.cmdline,
        },
        info.cmdline_size(),
    )?;
    loader::write_cmdline(&mem, &cmdline)?;
    let params = loader::zero_page(info.setup_header, cmdline.len(), initrd, config.mem_mib);
    loader::write_zero_page(&mem, &params)?;
    mptable::write(&mem, config.vcpus)?;
    regs::write_gdt_idt(&mem)?;
    regs::write_page_tables(&mem)?;

    // vCPU state: cpuid → msrs → regs → sregs → fpu → lapic.
    for (i, fd) in vcpu_fds.iter().enumerate() {
        let entry = (i == 0).then_some(loaded.entry.0);
        vcpu::configure(fd, &supported, i as u32, config.vcpus, entry)?;
    }

    // Devices, the snapshot to take at the ready signal, the seccomp filters.
    let mut devices = vm_devices::build(config, &vm, &mem, &disks, clock, None)?;
    devices.labctl.snapshot_at_ready = config.snapshot.is_some();
    let policy = Policy {
        stop_at_init_handoff: stop_at_handoff,
    };
    let snapshot = match &config.snapshot {
        Some(spec) => Some(Mutex::new(Pending::prepare(
            &spec.dir,
            &kvm,
            vm.clone(),
            mem.clone(),
            spec.save_mode,
            BootRecord {
                kernel_format: info.format,
                linux,
                cmdline: cmdline.clone(),
                tsc_khz,
            },
            clock,
        )?)),
        None => None,
    };
    let shared = Arc::new(Shared {
        devices: Mutex::new(devices),
        stop: AtomicBool::new(false),
        policy,
        first_run_ns: Mutex::new(None),
        last_rip: Mutex::new(vec![None; config.vcpus as usize]),
        snapshot,
    });
    let facts = Facts {
        vm_built_ns: 0,
        format: info.format,
        linux,
        cmdline,
        tsc_khz,
        kind,
        proc_files,
        restore: None,
    };
    Vmm::finish(config, vm, mem, vcpu_fds, shared, disks, None, clock, facts)
}

/// What `--snapshot-at` cannot save yet: more than one vCPU (the vCPU that sees the ready
/// signal takes the snapshot on its own thread) and virtio disks (their queue state is not
/// saved); and a VM without the lab device has no ready signal to pause at.
fn check_snapshot_fits(config: &VmConfig) -> Result<(), Error> {
    if config.vcpus != 1 {
        return Err(Error::SnapshotUnsupported(
            "a snapshot is taken of 1-vCPU VMs only; use --vcpus 1",
        ));
    }
    if !config.disks.is_empty() {
        return Err(Error::SnapshotUnsupported(
            "virtio disks are not saved in a snapshot yet; drop --disk",
        ));
    }
    if !config.lab_device {
        return Err(Error::SnapshotUnsupported(
            "the snapshot is taken at the guest's ready signal on the lab device; drop --lab-device off",
        ));
    }
    Ok(())
}

fn refuse_foreign_kernel_on_pvm(
    config: &VmConfig,
    kind: KvmKind,
    info: &loader::KernelInfo,
) -> Result<(), Error> {
    if kind != KvmKind::Pvm || info.format != KernelFormat::BzImage {
        return Ok(());
    }
    let version = info.version.clone().unwrap_or_default();
    if is_lab_kernel(&config.kernel, &version) {
        return Ok(());
    }
    Err(Error::ForeignKernelOnPvm {
        path: config.kernel.display().to_string(),
        version,
    })
}

/// The lab's kernel: its version carries the `vclab` marker, or it is (a
/// copy of) the cache's `bzimage` artifact: same file or same version string.
fn is_lab_kernel(path: &std::path::Path, version: &str) -> bool {
    if version.contains(LAB_KERNEL_MARKER) {
        return true;
    }
    let Some(lab) = cache::artifact(&cache::dir(), "bzimage") else {
        return false;
    };
    let same_file = match (path.canonicalize(), lab.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    same_file
        || loader::probe(&lab)
            .ok()
            .and_then(|(_, info)| info.version)
            .is_some_and(|v| !version.is_empty() && v == version)
}

/// Guest memory, the loaded kernel, and the initrd's (address, size).
type LoadedGuest = (GuestMemoryMmap, loader::Loaded, Option<(u64, u64)>);

/// Guest memory (created and registered with KVM), then the kernel and the
/// initrd loaded into it.
fn load_guest(
    config: &VmConfig,
    vm: &kvm_ioctls::VmFd,
    kernel_file: &mut File,
    info: &loader::KernelInfo,
) -> Result<LoadedGuest, Error> {
    let mem = memory::create(config.mem_mib)?;
    if config.hugepages {
        memory::advise_hugepages(&mem)?;
    }
    memory::register(vm, &mem)?;
    let loaded = loader::load_kernel(&mem, &config.kernel, kernel_file, info, config.mem_mib)?;
    let initrd = match &config.initrd {
        Some(path) => Some(loader::load_initrd(
            &mem,
            path,
            info,
            loaded.kernel_end,
            config.mem_mib,
        )?),
        None => None,
    };
    Ok((mem, loaded, initrd))
}
