//! A VM in three steps: built, either for a boot (`boot::build`: kernel, command line,
//! boot_params, fresh vCPUs) or from a snapshot (`restore::build`: memory from the file,
//! vCPU and VM state from the state file); then run ([`Vmm::run`], `runner.rs`); then
//! reported (`report.rs`). Firecracker's `build_microvm_for_boot` and
//! `build_microvm_from_snapshot` return the same `Vmm` the same way.

pub mod devices;
pub mod restore;

use std::sync::Arc;
use std::time::Duration;

use kvm_ioctls::{VcpuFd, VmFd};
use vm_memory::GuestMemoryMmap;

use crate::attach::Disks;
use crate::config::{ProcFiles, RestoreReport, VmConfig, VmReport};
use crate::devices::Clock;
use crate::exit::EndReason;
use crate::host::KvmKind;
use crate::loader::KernelFormat;
use crate::runner::{self, Guard};
use crate::seccomp::Filters;
use crate::snapshot::uffd;
use crate::vcpu::Shared;
use crate::{boot, report};

/// What the build step knows that the report shows.
#[derive(Debug, Clone)]
pub struct Facts {
    /// When the VM was ready to run, ns since the origin.
    pub vm_built_ns: u64,
    /// The kernel's format.
    pub format: KernelFormat,
    /// Whether the kernel is treated as Linux.
    pub linux: bool,
    /// The command line the guest got (at boot: a restored guest read it before the snapshot).
    pub cmdline: String,
    /// KVM_GET_TSC_KHZ.
    pub tsc_khz: Option<u32>,
    /// The host's KVM kind.
    pub kind: KvmKind,
    /// This process's /proc files for the report, opened before any filter.
    pub proc_files: Option<ProcFiles>,
    /// How the restore went (a VM built from a snapshot).
    pub restore: Option<RestoreReport>,
}

/// A built VM, ready to run: the KVM VM, guest memory, the vCPUs not yet run, the devices
/// and the seccomp filters its threads will install.
pub struct Vmm {
    /// The KVM VM (shared with a pending snapshot).
    pub vm: Arc<VmFd>,
    /// Guest memory.
    pub mem: GuestMemoryMmap,
    /// The vCPUs, in index order.
    pub vcpus: Vec<VcpuFd>,
    /// Devices and run state shared with the vCPUs.
    pub shared: Arc<Shared>,
    /// The threads' seccomp filters.
    pub filters: Filters,
    /// The virtio disks and their I/O thread.
    pub disks: Disks,
    /// The userfaultfd handler of a `--restore-mode uffd` restore.
    pub uffd: Option<uffd::Handler>,
    /// The run's clock.
    pub clock: Clock,
    /// What the report shows of the build.
    pub facts: Facts,
}

/// A VM that ran to its end.
pub struct Ran {
    /// Devices and run state.
    pub shared: Arc<Shared>,
    /// Guest memory (its resident size is reported).
    pub mem: GuestMemoryMmap,
    /// Why it ended.
    pub reason: EndReason,
    /// When it ended, ns since the origin.
    pub exit_ns: u64,
    /// The filters its threads ran under.
    pub filters: Filters,
    /// Page faults the userfaultfd handler answered.
    pub uffd_faults: Option<u64>,
    /// What the build step knew.
    pub facts: Facts,
}

impl Vmm {
    /// The last build steps of a booted or restored VM: seccomp filters built (installed by each
    /// thread on itself once it runs), the I/O thread started.
    #[allow(clippy::too_many_arguments)]
    pub fn finish(
        config: &VmConfig,
        vm: Arc<kvm_ioctls::VmFd>,
        mem: GuestMemoryMmap,
        vcpus: Vec<kvm_ioctls::VcpuFd>,
        shared: Arc<Shared>,
        mut disks: Disks,
        uffd: Option<crate::snapshot::uffd::Handler>,
        clock: Clock,
        mut facts: Facts,
    ) -> Result<Vmm, boot::Error> {
        let filters = Filters::for_vm(
            config.seccomp,
            vcpus.len() as u32,
            disks.any(),
            shared.snapshot.is_some(),
        )?;
        disks.start(filters.io.clone())?;
        facts.vm_built_ns = clock.now_ns();
        Ok(Vmm {
            vm,
            mem,
            vcpus,
            shared,
            filters,
            disks,
            uffd,
            clock,
            facts,
        })
    }

    /// Runs the vCPUs to the VM's end (`--timeout` ends it after `timeout`); `selftest`
    /// makes the vCPU's self-test call under its filter.
    pub fn run(self, timeout: Option<Duration>, selftest: bool) -> Result<Ran, boot::Error> {
        let guard = Guard {
            filters: &self.filters,
            selftest,
        };
        let reason = runner::run_vcpus(self.vcpus, &self.shared, timeout, guard)?;
        let exit_ns = self.clock.now_ns();
        drop(self.disks);
        let uffd_faults = self.uffd.as_ref().map(uffd::Handler::faults);
        if let Some(failure) = self.uffd.as_ref().and_then(uffd::Handler::failure) {
            log::warn!("userfaultfd handler: {failure}");
        }
        Ok(Ran {
            shared: self.shared,
            mem: self.mem,
            reason,
            exit_ns,
            filters: self.filters,
            uffd_faults,
            facts: self.facts,
        })
    }
}

/// Builds one VM as `config` says (booted, or restored with `--restore`), runs it to its
/// end and reports.
pub fn run(config: &VmConfig) -> Result<VmReport, boot::Error> {
    let vmm = match &config.restore {
        Some(spec) => restore::build(config, spec)?,
        None => boot::build(config)?,
    };
    let ran = vmm.run(config.timeout, config.seccomp_selftest)?;
    Ok(report::report(config, &ran))
}
