//! The lab's own VM rows: `vclab-vmm` of the unikernel (timed by the lab
//! device, or with the device hidden: the UART path and stdout timing of
//! the peer VMMs), of the micro-VM Linux kernel, and of Debian's cloud kernel.

use std::time::Duration;

use vclab_contract::lines::READY_LINE;
use vclab_contract::vm::ExitReason;
use vclab_contract::{Failure, FailureReport};
use vclab_vmm::VmReport;

use super::env::{first_reason, need};
use super::hold::{self, Held, HoldOptions};
use super::host::disk_for;
use super::interpret::{base_sample, expect_exit, need_start, result_line, vm_failure};
use super::peer_vmm::guest_cmdline;
use super::{fail, Env, Launch, Runtime, RuntimeId, Workload};
use crate::compare::record::{Sample, WorkloadSpec};
use crate::compare::vm_report;
use crate::spawn::Observed;

/// How long a Linux boot may take on kvm_pvm (minutes there; about a second on hardware KVM).
pub const LINUX_TIMEOUT: Duration = Duration::from_secs(430);

/// Which guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guest {
    /// The unikernel; `lab` gives it the lab control device.
    Unikernel { lab: bool },
    /// The unikernel restored from the run's snapshot (taken at its ready signal); its
    /// workload parameters come from the lab device after the restore.
    Restored,
    /// The micro-VM Linux kernel (`vmlinux`) with the initramfs.
    Linux,
    /// Debian's cloud kernel with the initramfs.
    Distro,
}

/// A `vclab-vmm` row.
pub struct VclabVm {
    id: RuntimeId,
    guest: Guest,
}

impl VclabVm {
    /// The unikernel, with or without the lab device.
    pub fn unikernel(lab: bool) -> Self {
        VclabVm {
            id: if lab {
                RuntimeId::MicrovmUnikernel
            } else {
                RuntimeId::MicrovmUnikernelUart
            },
            guest: Guest::Unikernel { lab },
        }
    }

    /// The unikernel restored from the run's snapshot.
    pub fn restore() -> Self {
        VclabVm {
            id: RuntimeId::MicrovmUnikernelRestore,
            guest: Guest::Restored,
        }
    }

    /// The micro-VM Linux kernel.
    pub fn linux() -> Self {
        VclabVm {
            id: RuntimeId::MicrovmLinux,
            guest: Guest::Linux,
        }
    }

    /// Debian's cloud kernel.
    pub fn distro() -> Self {
        VclabVm {
            id: RuntimeId::VmDistro,
            guest: Guest::Distro,
        }
    }
}

/// Why a Linux row does not boot here, if it does not.
pub fn linux_skip(env: &Env, kernel_artifact: &str) -> Option<String> {
    first_reason(&[
        env.vm_works(),
        need(env.artifact(kernel_artifact)),
        need(env.artifact("initramfs")),
        if env.linux {
            Ok(())
        } else {
            Err(
                "Linux guest boots take two to four minutes on kvm_pvm: skipped in --quick (add --linux)"
                    .into(),
            )
        },
    ])
}

/// Whether `workload` is a memory kernel, run with guest RAM on huge pages.
pub fn memory_bound(workload: &Workload) -> bool {
    matches!(workload, Workload::Run(s) if s.kernel == "mem-bw" || s.kernel == "mem-lat")
}

/// Reads the VMM's `--json` report, the last stdout line.
fn report(obs: &Observed) -> Option<VmReport> {
    vm_report::parse(obs.last_line())
}

/// Reads a Linux boot timed to its init handoff.
pub fn interpret_boot(
    obs: &Observed,
    report: Option<&VmReport>,
    ended_ok: bool,
) -> Result<Sample, FailureReport> {
    let mut s = base_sample(obs);
    let from_report = report
        .and_then(|r| vm_report::since_launch_ms(r, r.init_handoff_ns, obs.launch_monotonic_ns));
    let from_console = obs
        .line_time(vclab_contract::lines::INIT_HANDOFF_MARKER)
        .map(|t| t.as_secs_f64() * 1e3);
    s.start_latency_ms = from_report.or(from_console);
    if s.start_latency_ms.is_none() || !ended_ok {
        let kind = report
            .and_then(|r| r.exit_reason.failure())
            .unwrap_or(Failure::NoStartTime);
        return Err(fail(
            kind,
            format!(
                "the kernel never reached its init handoff (no '{}'): {}",
                vclab_contract::lines::INIT_HANDOFF_MARKER,
                vm_failure(report, obs)
            ),
        ));
    }
    if let Some(r) = report {
        s.guest_ram_kib = Some(r.guest_ram_kib);
        s.guest_touched_kib = r.guest_touched_kib;
    }
    Ok(s)
}

impl Runtime for VclabVm {
    fn id(&self) -> RuntimeId {
        self.id
    }

    fn unavailable(&self, env: &Env) -> Option<String> {
        match self.guest {
            Guest::Unikernel { .. } => {
                first_reason(&[env.vm_works(), need(env.artifact("unikernel"))])
            }
            Guest::Restored => first_reason(&[
                env.vm_works(),
                need(env.artifact("unikernel")),
                env.snapshot.as_ref().map(|_| ()).map_err(Clone::clone),
            ]),
            Guest::Linux => linux_skip(env, "vmlinux"),
            Guest::Distro if env.pvm() => Some(
                "Debian's cloud kernel cannot boot on kvm_pvm: its INT3 self-test stops the boot \
                 and cannot be switched off without the lab's kernel patch (needs hardware KVM)"
                    .into(),
            ),
            Guest::Distro => linux_skip(env, "distro-kernel"),
        }
    }

    fn boot_only(&self, env: &Env) -> bool {
        !matches!(self.guest, Guest::Unikernel { .. } | Guest::Restored) && !env.linux_userspace()
    }

    fn io_skip(&self, env: &Env) -> Option<String> {
        match self.guest {
            Guest::Unikernel { .. } => env.io_disk().err(),
            Guest::Restored => Some(
                "snapshots of a VM with a virtio disk are not supported yet (its queue state is \
                 not saved)"
                    .into(),
            ),
            Guest::Linux | Guest::Distro => Some(
                "the Linux guest's init does not run the io kernel on /dev/vda yet (and on kvm_pvm \
                 its userspace cannot run at all)"
                    .into(),
            ),
        }
    }

    fn launch(&self, env: &Env, workload: &Workload, _seq: u64) -> Result<Launch, FailureReport> {
        let setup = |e: String| fail(Failure::SetupFailed, e);
        let mut argv = env.vmm_argv();
        let cmdline = guest_cmdline(workload, None);
        match self.guest {
            Guest::Unikernel { lab } => {
                argv.push("--kernel".into());
                argv.push(env.artifact("unikernel").map_err(setup)?.into());
                argv.push("--cmdline".into());
                argv.push(cmdline.into());
                if lab {
                    argv.extend(["--console", "off"].map(Into::into));
                } else {
                    // The UART on stdout, as under the peer VMMs.
                    argv.extend(["--lab-device", "off"].map(Into::into));
                }
                if let Some(disk) = disk_for(env, workload)? {
                    // virtio-blk over the image, read-write, O_DIRECT as bare's and the
                    // containers' reads (no host page cache on any row); the VMM appends
                    // virtio_mmio.device=.
                    argv.push("--disk".into());
                    let mut spec = std::ffi::OsString::from(disk);
                    spec.push(",direct");
                    argv.push(spec);
                }
                if memory_bound(workload) {
                    // Guest RAM on transparent huge pages, as QEMU madvises its own.
                    argv.extend(["--hugepages", "on"].map(Into::into));
                }
                argv.push("--json".into());
                Ok(Launch::argv(env, argv))
            }
            Guest::Restored => {
                // The snapshot's guest, memory size and command line; the workload's
                // parameters reach the guest through the lab device after the restore.
                let dir = env.snapshot.as_ref().map_err(|e| setup(e.clone()))?;
                argv.push("--restore".into());
                argv.push(dir.into());
                argv.extend(["--restore-mode", "mmap", "--cmdline-after-restore"].map(Into::into));
                argv.push(cmdline.into());
                argv.extend(["--console", "off", "--json"].map(Into::into));
                Ok(Launch::argv(env, argv))
            }
            Guest::Linux | Guest::Distro => {
                let kernel = if self.guest == Guest::Linux {
                    "vmlinux"
                } else {
                    "distro-kernel"
                };
                // The VMM composes the Linux defaults and the kvm_pvm workarounds
                // itself, and on kvm_pvm stops at the init handoff (--stop-at auto).
                argv.push("--kernel".into());
                argv.push(env.artifact(kernel).map_err(setup)?.into());
                argv.push("--initrd".into());
                argv.push(env.artifact("initramfs").map_err(setup)?.into());
                argv.push("--cmdline".into());
                argv.push(cmdline.into());
                argv.extend(["--console", "off", "--timeout", "420", "--json"].map(Into::into));
                let mut l = Launch::argv(env, argv);
                l.timeout = LINUX_TIMEOUT;
                Ok(l)
            }
        }
    }

    /// Held as the VMM's process, ready at the unikernel's `{"ready":true}`
    /// line (a line record on the lab device, printed on the VMM's stdout;
    /// the device's own ready stamp only appears in the final report).
    fn hold(
        &self,
        env: &Env,
        opts: &HoldOptions,
        seq: u64,
    ) -> Result<Box<dyn Held>, FailureReport> {
        if self.guest == Guest::Restored {
            return Err(fail(
                Failure::SetupFailed,
                "microvm-unikernel-restore is not held in density ramps yet (a restored guest is \
                 past the ready line a hold waits for): use microvm-unikernel",
            ));
        }
        let mut launch = self.launch(env, &Workload::Idle, seq)?;
        if let Some(mib) = opts.guest_mib {
            launch
                .spawn
                .argv
                .extend(["--mem".into(), mib.to_string().into()]);
        }
        hold::hold_launch(launch, self.ready_line(), opts)
    }

    fn interpret(
        &self,
        env: &Env,
        obs: &Observed,
        spec: &WorkloadSpec,
    ) -> Result<Sample, FailureReport> {
        let report = report(obs);
        if self.boot_only(env) {
            return interpret_boot(obs, report.as_ref(), obs.exit_code == 0);
        }
        let mut s = base_sample(obs);
        result_line(obs, report.as_ref(), spec, &mut s)?;
        if let Some(kind) = report.as_ref().and_then(|r| r.exit_reason.failure()) {
            return Err(fail(kind, vm_failure(report.as_ref(), obs)));
        }
        expect_exit(obs.exit_code == 0, obs)?;
        let report = report.as_ref().ok_or_else(|| {
            fail(
                Failure::NoResultLine,
                format!(
                    "the VMM (vclab-vmm) printed no JSON report as its last line: {}",
                    obs.tail()
                ),
            )
        })?;
        let start = match self.guest {
            Guest::Unikernel { lab: false } => {
                obs.line_time(READY_LINE).map(|t| t.as_secs_f64() * 1e3)
            }
            // A restored guest is past its ready signal: its first useful work is asking the
            // lab device for its parameters.
            Guest::Restored => {
                vm_report::since_launch_ms(report, report.guest_params_ns, obs.launch_monotonic_ns)
            }
            _ => vm_report::since_launch_ms(report, report.guest_ready_ns, obs.launch_monotonic_ns),
        };
        s.start_latency_ms = Some(need_start(start, obs)?);
        if self.guest == (Guest::Unikernel { lab: false })
            && report.exit_reason != ExitReason::Reset
        {
            return Err(fail(
                Failure::BadExitStatus,
                format!(
                    "without the lab device the unikernel should end by a reset: {}",
                    vm_failure(Some(report), obs)
                ),
            ));
        }
        s.guest_ram_kib = Some(report.guest_ram_kib);
        s.guest_touched_kib = report.guest_touched_kib;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::mock::{env_with, words};

    fn io() -> Workload {
        Workload::Run(WorkloadSpec {
            kernel: "io".into(),
            size: 16 << 20,
            iterations: 4,
            seed: 1,
        })
    }

    #[test]
    fn the_unikernel_rows_attach_the_image_for_io_only() {
        let dir = tempfile::tempdir().unwrap();
        let uk = dir.path().join("uk.elf");
        std::fs::write(&uk, b"").unwrap();
        let env = env_with(&[("unikernel", &uk)], Some("/var/tmp/vclab-io-3.img"));
        for lab in [true, false] {
            let row = VclabVm::unikernel(lab);
            assert_eq!(row.io_skip(&env), None);
            let argv = words(&row.launch(&env, &io(), 1).unwrap().spawn.argv);
            let d = argv.iter().position(|a| a == "--disk").unwrap();
            assert_eq!(argv[d + 1], "/var/tmp/vclab-io-3.img,direct");
            let c = argv.iter().position(|a| a == "--cmdline").unwrap();
            assert!(
                argv[c + 1].starts_with("vclab.kernel=io "),
                "{}",
                argv[c + 1]
            );
            let cpu = Workload::Run(WorkloadSpec {
                kernel: "cpu".into(),
                size: 4096,
                iterations: 1,
                seed: 1,
            });
            let argv = words(&row.launch(&env, &cpu, 2).unwrap().spawn.argv);
            assert!(!argv.iter().any(|a| a == "--disk"));
        }
        assert!(VclabVm::linux().io_skip(&env).is_some());
        let no_image = env_with(&[("unikernel", &uk)], None);
        assert!(VclabVm::unikernel(true).io_skip(&no_image).is_some());
    }

    #[test]
    fn the_restore_row_restores_the_run_snapshot_with_the_workload_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let uk = dir.path().join("uk.elf");
        std::fs::write(&uk, b"").unwrap();
        let mut env = env_with(&[("unikernel", &uk)], Some("/var/tmp/vclab-io-3.img"));
        let row = VclabVm::restore();
        let cpu = Workload::Run(WorkloadSpec {
            kernel: "cpu".into(),
            size: 4096,
            iterations: 2,
            seed: 3,
        });
        // No snapshot taken: the launch fails with the reason, nothing is spawned.
        env.snapshot = Err("the snapshot boot failed".into());
        let e = row.launch(&env, &cpu, 1).unwrap_err();
        assert!(e.detail.contains("the snapshot boot failed"), "{e:?}");
        env.snapshot = Ok("/run/vclab/harness-1/snapshot".into());
        let argv = words(&row.launch(&env, &cpu, 1).unwrap().spawn.argv);
        let at = |flag: &str| argv[argv.iter().position(|a| a == flag).unwrap() + 1].clone();
        assert_eq!(at("--restore"), "/run/vclab/harness-1/snapshot");
        assert_eq!(at("--restore-mode"), "mmap");
        assert!(
            at("--cmdline-after-restore").starts_with("vclab.kernel=cpu vclab.size=4096"),
            "{argv:?}"
        );
        assert!(!argv.iter().any(|a| a == "--kernel" || a == "--disk"));
        assert!(row.io_skip(&env).is_some(), "no disk in a snapshot yet");
        assert!(!row.boot_only(&env));
    }
}
