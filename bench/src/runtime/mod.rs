//! The runtime registry: one [`Runtime`] implementation per family (host
//! process, vclab container, OCI peer, vclab VM, peer VMM), each saying what
//! it needs from this host (or why it cannot run here), how it launches one
//! instance of a workload, what its "start" moment is and how its output
//! becomes a [`Sample`]. Row names live in [`RuntimeId`]; `vclab compare`,
//! `cargo bench`, and later density and the demo all iterate [`registry`].

mod container;
pub mod env;
pub mod hold;
mod host;
pub mod ids;
mod interpret;
#[cfg(test)]
pub mod mock;
mod oci_peer;
mod peer_vmm;
mod vm;

use std::time::Duration;

use vclab_contract::{Failure, FailureReport};

pub use env::Env;
pub use hold::{Held, HoldOptions, Liveness};
pub use ids::{Family, RuntimeId};

use crate::compare::oci::Bundle;
use crate::compare::record::{Sample, WorkloadSpec};
use crate::spawn::{Observed, Policy, SpawnError, SpawnSpec, Spawned};

/// Where the container rows see the io disk image (bind-mounted read-write): under `/dev`, a
/// tmpfs in every container, so no mount point is created in the shared read-only rootfs.
pub const CONTAINER_DISK: &str = "/dev/vclab-io.img";

/// Whether `workload` runs the io kernel (it needs the run's disk image).
pub fn needs_disk(workload: &Workload) -> bool {
    matches!(workload, Workload::Run(s) if vclab_contract::params::Kernel::from_name(&s.kernel).is_some_and(|k| k.needs_disk()))
}

/// Guest RAM given to peer VMMs, MiB.
pub const PEER_GUEST_MIB: u64 = 128;

/// What one instance runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Workload {
    /// A workload kernel to its result line, then exit.
    Run(WorkloadSpec),
    /// Ready, then idle until stopped (`vclab-workload idle`, `vclab.kernel=idle`).
    Idle,
}

/// What a row's "start" is: the moment its start latency is timed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartClock {
    /// CLOCK_MONOTONIC at the workload's process entry (its result line's
    /// `start_monotonic_ns`), against the harness's clock before the spawn.
    WorkloadEntry,
    /// The VMM's own stamp of the guest's ready write on the lab device (one
    /// VM exit), put on the harness's clock through the report's origin.
    LabDevice,
    /// The guest's `{"ready":true}` line as the harness reads it from the
    /// VMM's stdout (written byte by byte to a UART: one VM exit per byte).
    ConsoleReadyLine,
    /// The Linux kernel's init handoff (the VMM's stamp, else the console line).
    InitHandoff,
    /// A restored unikernel's first lab-device event: it asks for its parameters (the VMM's
    /// guest_params_ns), its first useful work after the restore.
    RestoredParams,
}

impl StartClock {
    /// Every clock, in the order the reports explain them.
    pub const ALL: [StartClock; 5] = [
        StartClock::WorkloadEntry,
        StartClock::LabDevice,
        StartClock::RestoredParams,
        StartClock::ConsoleReadyLine,
        StartClock::InitHandoff,
    ];

    /// A short label for table cells.
    pub const fn label(self) -> &'static str {
        match self {
            StartClock::WorkloadEntry => "process entry",
            StartClock::LabDevice => "lab device",
            StartClock::RestoredParams => "restored: params",
            StartClock::ConsoleReadyLine => "UART line",
            StartClock::InitHandoff => "init handoff",
        }
    }

    /// What the start latency is, in full, for the reports.
    pub const fn meaning(self) -> &'static str {
        match self {
            StartClock::WorkloadEntry => "launch (CLOCK_MONOTONIC before spawn) to the workload's own start_monotonic_ns at process entry; containers share the host's clock",
            StartClock::LabDevice => "launch (CLOCK_MONOTONIC before spawning `vclab-vmm`) to the guest's ready write to the lab device (one VM exit; the VMM's guest_ready_ns put on the harness's clock through its origin_monotonic_ns)",
            StartClock::RestoredParams => "launch (CLOCK_MONOTONIC before spawning `vclab-vmm --restore`) to the restored guest's request for its parameters on the lab device, its first work after the restore (the VMM's guest_params_ns on the harness's clock)",
            StartClock::ConsoleReadyLine => "launch to the moment the unikernel's {\"ready\":true} line, written byte by byte to the UART (one VM exit per byte), reached the harness through the VMM's stdout",
            StartClock::InitHandoff => "launch to the Linux kernel's init handoff (\"Run /init as init process\"), as far as a Linux guest gets on kvm_pvm",
        }
    }
}

/// One prepared launch: the command plus what must be removed after it.
#[derive(Debug)]
pub struct Launch {
    /// The command to spawn.
    pub spawn: SpawnSpec,
    /// When the run counts as ended.
    pub policy: Policy,
    /// Kill the run after this long.
    pub timeout: Duration,
    /// Files (an OCI bundle, a VMM config) removed, and the container deleted, after the run.
    pub files: Option<Bundle>,
}

impl Launch {
    /// A launch of `argv` run to its exit within a minute.
    fn argv(env: &Env, argv: Vec<std::ffi::OsString>) -> Launch {
        Launch {
            spawn: SpawnSpec {
                argv,
                private_mount_ns: false,
                cpu: env.instance_cpu,
            },
            policy: Policy::RunToExit,
            timeout: Duration::from_secs(60),
            files: None,
        }
    }
}

/// A failure of `kind` with `detail`.
pub fn fail(kind: Failure, detail: impl Into<String>) -> FailureReport {
    FailureReport::new(kind, detail)
}

/// The failure a spawn error is.
pub fn spawn_failure(e: SpawnError) -> FailureReport {
    let kind = match e {
        SpawnError::Timeout { .. } => Failure::Timeout,
        _ => Failure::LaunchFailed,
    };
    fail(kind, e.to_string())
}

/// One row of the comparison.
pub trait Runtime: Send + Sync {
    /// The row.
    fn id(&self) -> RuntimeId;

    /// Why it cannot run on this host (`None`: it can).
    fn unavailable(&self, env: &Env) -> Option<String>;

    /// Whether the row only times a Linux boot to its init handoff here
    /// (guest userspace cannot run the workload).
    fn boot_only(&self, _env: &Env) -> bool {
        false
    }

    /// Why the row cannot run the io kernel (`None`: it can, with [`Env::io_disk`] attached).
    fn io_skip(&self, _env: &Env) -> Option<String> {
        Some("this row has no way to attach the io kernel's disk image".into())
    }

    /// Prepares one instance of `workload` (`seq` makes names unique).
    fn launch(&self, env: &Env, workload: &Workload, seq: u64) -> Result<Launch, FailureReport>;

    /// Turns one observed run of `spec` into a sample, checking its result.
    fn interpret(
        &self,
        env: &Env,
        obs: &Observed,
        spec: &WorkloadSpec,
    ) -> Result<Sample, FailureReport>;

    /// The stdout line that says a held instance is ready.
    fn ready_line(&self) -> &'static str {
        vclab_contract::lines::READY_LINE
    }

    /// Launches one idle instance and holds it once ready (its
    /// [`Runtime::ready_line`] seen): `vclab density`. By default the
    /// runtime's process is kept ([`hold::hold_launch`]); the OCI peers run
    /// detached.
    fn hold(
        &self,
        env: &Env,
        opts: &HoldOptions,
        seq: u64,
    ) -> Result<Box<dyn Held>, FailureReport> {
        let launch = self.launch(env, &Workload::Idle, seq)?;
        hold::hold_launch(launch, self.ready_line(), opts)
    }

    /// Launches, observes and interprets one run of `spec`. Mock runtimes
    /// (unit tests of the runner and the reports) answer here directly.
    fn measure(&self, env: &Env, spec: &WorkloadSpec, seq: u64) -> Result<Sample, FailureReport> {
        let launch = self.launch(env, &Workload::Run(spec.clone()), seq)?;
        let observed = Spawned::spawn(&launch.spawn)
            .and_then(|s| s.run(launch.policy, launch.timeout))
            .map_err(spawn_failure);
        drop(launch.files);
        self.interpret(env, &observed?, spec)
    }
}

/// Every row, in display order.
pub fn registry() -> Vec<Box<dyn Runtime>> {
    RuntimeId::ALL.iter().map(|id| of(*id)).collect()
}

/// The implementation of one row.
pub fn of(id: RuntimeId) -> Box<dyn Runtime> {
    match id {
        RuntimeId::Bare => Box::new(host::Bare),
        RuntimeId::Container => Box::new(container::VclabContainer),
        RuntimeId::Runc => Box::new(oci_peer::OciPeer::runc()),
        RuntimeId::Crun => Box::new(oci_peer::OciPeer::crun()),
        RuntimeId::MicrovmUnikernel => Box::new(vm::VclabVm::unikernel(true)),
        RuntimeId::MicrovmUnikernelUart => Box::new(vm::VclabVm::unikernel(false)),
        RuntimeId::MicrovmUnikernelRestore => Box::new(vm::VclabVm::restore()),
        RuntimeId::MicrovmLinux => Box::new(vm::VclabVm::linux()),
        RuntimeId::VmDistro => Box::new(vm::VclabVm::distro()),
        RuntimeId::QemuMicrovm => Box::new(peer_vmm::PeerVmm::qemu()),
        RuntimeId::Firecracker => Box::new(peer_vmm::PeerVmm::firecracker()),
        RuntimeId::CloudHypervisor => Box::new(peer_vmm::PeerVmm::cloud_hypervisor()),
        RuntimeId::QemuMicrovmLinux => Box::new(peer_vmm::PeerVmm::qemu_linux()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_has_every_row_once_in_order() {
        let ids: Vec<RuntimeId> = registry().iter().map(|r| r.id()).collect();
        assert_eq!(ids, RuntimeId::ALL);
    }

    #[test]
    fn rows_without_artifacts_have_reasons() {
        let env = Env::bare(std::path::PathBuf::from("/nonexistent/vclab"));
        for rt in registry() {
            assert!(rt.unavailable(&env).is_some(), "{}", rt.id());
        }
    }
}
