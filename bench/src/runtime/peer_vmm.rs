//! The peer VMMs, booting the same unikernel as the lab's VMM (QEMU microvm
//! through PVH, Firecracker, Cloud Hypervisor) and, for the Linux boot line,
//! QEMU microvm booting the same Linux kernel and initramfs. Without the lab
//! device the unikernel prints its ready and result lines on the UART, writes
//! its status to QEMU's isa-debug-exit, powers off through Cloud Hypervisor's
//! ACPI shutdown port, then resets: each peer is timed by the ready line read
//! from its stdout.

use std::ffi::OsString;

use vclab_contract::cmdline::{GuestCmdline, Mode};
use vclab_contract::lines::{INIT_HANDOFF_MARKER, READY_LINE};
use vclab_contract::params::Kernel;
use vclab_contract::{Failure, FailureReport};

use super::env::{first_reason, need};
use super::hold::{self, Held, HoldOptions};
use super::host::disk_for;
use super::interpret::{base_sample, expect_exit, need_start, result_line};
use super::vm::{interpret_boot, linux_skip, LINUX_TIMEOUT};
use super::{fail, Env, Launch, Runtime, RuntimeId, Workload, PEER_GUEST_MIB};
use crate::compare::record::{Sample, WorkloadSpec};
use crate::spawn::{Observed, Policy};

/// The guest command line for the unikernel running `workload` (`tsc_khz`
/// for a guest whose VMM does not give it the TSC frequency).
pub fn guest_cmdline(workload: &Workload, tsc_khz: Option<u64>) -> String {
    let mut c = GuestCmdline {
        tsc_khz,
        ..GuestCmdline::default()
    };
    match workload {
        Workload::Run(spec) => {
            c.mode = Kernel::from_name(&spec.kernel).map(Mode::Run);
            c.size = Some(spec.size);
            c.iterations = Some(spec.iterations);
            c.seed = Some(spec.seed);
        }
        Workload::Idle => c.mode = Some(Mode::Idle),
    }
    c.to_string()
}

/// Which peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Qemu,
    Firecracker,
    CloudHypervisor,
    QemuLinux,
}

/// A peer VMM row.
pub struct PeerVmm {
    id: RuntimeId,
    peer: Peer,
}

impl PeerVmm {
    /// QEMU microvm with the unikernel.
    pub fn qemu() -> Self {
        PeerVmm {
            id: RuntimeId::QemuMicrovm,
            peer: Peer::Qemu,
        }
    }

    /// Firecracker with the unikernel.
    pub fn firecracker() -> Self {
        PeerVmm {
            id: RuntimeId::Firecracker,
            peer: Peer::Firecracker,
        }
    }

    /// Cloud Hypervisor with the unikernel.
    pub fn cloud_hypervisor() -> Self {
        PeerVmm {
            id: RuntimeId::CloudHypervisor,
            peer: Peer::CloudHypervisor,
        }
    }

    /// QEMU microvm with the Linux kernel (the boot reference).
    pub fn qemu_linux() -> Self {
        PeerVmm {
            id: RuntimeId::QemuMicrovmLinux,
            peer: Peer::QemuLinux,
        }
    }

    /// The peer's binary name in the host record.
    fn program(&self) -> &'static str {
        match self.peer {
            Peer::Qemu | Peer::QemuLinux => "qemu-system-x86_64",
            Peer::Firecracker => "firecracker",
            Peer::CloudHypervisor => "cloud-hypervisor",
        }
    }
}

/// QEMU microvm under KVM with one serial console on stdio, no firmware
/// extras, and the peers' guest RAM.
fn qemu_microvm_args() -> Vec<OsString> {
    [
        "-M",
        "microvm,x-option-roms=off,rtc=off",
        "-enable-kvm",
        // `-cpu host` aborts on kvm_pvm ("failed to set MSR 0x10a"): the
        // host CPU minus IA32_ARCH_CAPABILITIES boots.
        "-cpu",
        "host,-arch-capabilities",
        "-m",
        &PEER_GUEST_MIB.to_string(),
        "-nodefaults",
        "-no-user-config",
        "-nographic",
        "-serial",
        "stdio",
    ]
    .iter()
    .map(OsString::from)
    .collect()
}

/// QEMU's arguments attaching `disk` as the io kernel's virtio-blk disk: a modern (version 2)
/// virtio-mmio transport, with ACPI off so that microvm appends the transport's
/// `virtio_mmio.device=` to the guest command line (the unikernel reads it there); the drive
/// with `cache=none` (O_DIRECT: no host page cache, as vclab-vmm's `--disk …,direct` and bare's
/// O_DIRECT reads).
pub fn qemu_disk_args(argv: &mut Vec<OsString>, disk: &std::path::Path) {
    if let Some(m) = argv.iter().position(|a| a == "-M").map(|i| i + 1) {
        if let Some(machine) = argv.get_mut(m) {
            machine.push(",acpi=off");
        }
    }
    argv.extend(["-global", "virtio-mmio.force-legacy=false", "-drive"].map(OsString::from));
    let mut drive = OsString::from("id=d0,format=raw,if=none,cache=none,file=");
    drive.push(disk);
    argv.push(drive);
    argv.extend(["-device", "virtio-blk-device,drive=d0"].map(OsString::from));
}

/// Gives a peer's launch `mib` of guest RAM instead of [`PEER_GUEST_MIB`].
fn set_guest_mib(peer: Peer, launch: &mut Launch, mib: u64) -> Result<(), FailureReport> {
    let argv = &mut launch.spawn.argv;
    let done = match peer {
        Peer::Qemu | Peer::QemuLinux => hold::set_arg_after(argv, "-m", &mib.to_string()),
        Peer::CloudHypervisor => hold::set_arg_after(argv, "--memory", &format!("size={mib}M")),
        Peer::Firecracker => {
            let path = launch.files.as_ref().map(|f| f.path().to_path_buf());
            let rewrite = |p: &std::path::Path| -> Result<(), String> {
                let text = std::fs::read_to_string(p).map_err(|e| e.to_string())?;
                let mut v: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| e.to_string())?;
                v["machine-config"]["mem_size_mib"] = mib.into();
                std::fs::write(p, v.to_string()).map_err(|e| e.to_string())
            };
            match path {
                Some(p) => rewrite(&p)
                    .map_err(|e| fail(Failure::SetupFailed, format!("{}: {e}", p.display())))
                    .map(|()| true)?,
                None => false,
            }
        }
    };
    if done {
        Ok(())
    } else {
        Err(fail(
            Failure::SetupFailed,
            "cannot set the peer's guest memory on its command line",
        ))
    }
}

impl Runtime for PeerVmm {
    fn id(&self) -> RuntimeId {
        self.id
    }

    fn unavailable(&self, env: &Env) -> Option<String> {
        let installed = need(env.peer(self.program())).map_err(|e| match self.peer {
            Peer::Firecracker => format!("{e} (give --firecracker PATH; README: peer VMMs)"),
            Peer::CloudHypervisor => {
                format!("{e} (give --cloud-hypervisor PATH; README: peer VMMs)")
            }
            _ => e,
        });
        if self.peer == Peer::QemuLinux {
            return linux_skip(env, "vmlinux").or_else(|| {
                first_reason(&[
                    installed,
                    if env.pvm() && !env.linux_reference {
                        Err(
                            "on kvm_pvm QEMU's Linux boot takes about four minutes: add --linux \
                             to include this reference"
                                .into(),
                        )
                    } else {
                        Ok(())
                    },
                ])
            });
        }
        first_reason(&[env.vm_works(), installed, need(env.artifact("unikernel"))])
    }

    fn io_skip(&self, env: &Env) -> Option<String> {
        match self.peer {
            Peer::Qemu => env.io_disk().err(),
            Peer::Firecracker => {
                Some("the io disk is not wired into Firecracker's `drives` config yet".into())
            }
            Peer::CloudHypervisor => {
                Some("the io disk is not wired into Cloud Hypervisor's --disk yet".into())
            }
            Peer::QemuLinux => Some("a Linux boot reference only".into()),
        }
    }

    fn boot_only(&self, _env: &Env) -> bool {
        // QEMU has no lab control device to time a Linux guest's workload by.
        self.peer == Peer::QemuLinux
    }

    fn launch(&self, env: &Env, workload: &Workload, seq: u64) -> Result<Launch, FailureReport> {
        let setup = |e: String| fail(Failure::SetupFailed, e);
        let bin = env.peer(self.program()).map_err(setup)?;
        let cmdline = guest_cmdline(workload, env.tsc_khz);
        let mut argv: Vec<OsString> = vec![bin.into()];
        let mut files = None;
        match self.peer {
            Peer::Qemu => {
                argv.extend(qemu_microvm_args());
                argv.extend(["-device", "isa-debug-exit", "-kernel"].map(Into::into));
                argv.push(env.artifact("unikernel").map_err(setup)?.into());
                argv.push("-append".into());
                argv.push(cmdline.into());
                if let Some(disk) = disk_for(env, workload)? {
                    qemu_disk_args(&mut argv, &disk);
                }
            }
            Peer::Firecracker => {
                let cfg = crate::compare::oci::firecracker_config(
                    &env.artifact("unikernel").map_err(setup)?,
                    &cmdline,
                    PEER_GUEST_MIB,
                    seq,
                    env.harness.as_deref(),
                )
                .map_err(|e| setup(e.to_string()))?;
                // Firecracker's own log goes to a file, not into the guest's serial on stdout.
                argv.extend(["--no-api", "--level", "Warn", "--log-path"].map(Into::into));
                argv.push(cfg.dir().join("firecracker.log").into());
                argv.push("--config-file".into());
                argv.push(cfg.path().into());
                files = Some(cfg);
            }
            Peer::CloudHypervisor => {
                argv.push("--kernel".into());
                argv.push(env.artifact("unikernel").map_err(setup)?.into());
                argv.push("--cmdline".into());
                argv.push(cmdline.into());
                argv.extend(
                    [
                        "--cpus",
                        "boot=1",
                        "--memory",
                        &format!("size={PEER_GUEST_MIB}M"),
                        "--serial",
                        "tty",
                        "--console",
                        "off",
                    ]
                    .map(Into::into),
                );
            }
            Peer::QemuLinux => {
                let linux_cmdline = vclab_vmm::cmdline::build(
                    &vclab_vmm::cmdline::Parts {
                        linux: true,
                        // The init handoff line is printed at info level.
                        quiet: false,
                        pvm_quirks: env.pvm(),
                        pvm_smp_quirks: false,
                        tsc_khz: None,
                        virtio_mmio: &[],
                        user: &guest_cmdline(workload, None),
                    },
                    2048,
                )
                .map_err(|e| setup(e.to_string()))?;
                argv.extend(qemu_microvm_args());
                argv.extend(["-smp", "1", "-no-reboot", "-kernel"].map(Into::into));
                argv.push(env.artifact("vmlinux").map_err(setup)?.into());
                argv.push("-initrd".into());
                argv.push(env.artifact("initramfs").map_err(setup)?.into());
                argv.push("-append".into());
                argv.push(linux_cmdline.into());
            }
        }
        let mut l = Launch::argv(env, argv);
        l.files = files;
        if self.peer == Peer::QemuLinux {
            // microvm has no i8042 for reboot=k, and on kvm_pvm the kernel's
            // triple-fault reset (reboot=t) uses INT3, which cannot be emulated
            // there: QEMU would not exit by itself. The handoff is what is timed.
            l.policy = Policy::StopAtMarker(INIT_HANDOFF_MARKER);
            l.timeout = LINUX_TIMEOUT;
        }
        Ok(l)
    }

    /// Held as the VMM's process, ready at the unikernel's UART ready line;
    /// `opts.guest_mib` replaces the peers' guest RAM.
    fn hold(
        &self,
        env: &Env,
        opts: &HoldOptions,
        seq: u64,
    ) -> Result<Box<dyn Held>, FailureReport> {
        let mut launch = self.launch(env, &Workload::Idle, seq)?;
        if let Some(mib) = opts.guest_mib {
            set_guest_mib(self.peer, &mut launch, mib)?;
        }
        hold::hold_launch(launch, self.ready_line(), opts)
    }

    fn interpret(
        &self,
        _env: &Env,
        obs: &Observed,
        spec: &WorkloadSpec,
    ) -> Result<Sample, FailureReport> {
        if self.peer == Peer::QemuLinux {
            // QEMU keeps running (or stops on the guest's fault) after the
            // handoff: the handoff line is what counts there, not its exit.
            return interpret_boot(obs, None, true);
        }
        let mut s = base_sample(obs);
        result_line(obs, None, spec, &mut s)?;
        // QEMU's isa-debug-exit: (status << 1) | 1. Firecracker ends on the
        // guest's reset and Cloud Hypervisor on its ACPI shutdown: their
        // exit code does not carry the guest's status, the result line does.
        let ok = self.peer != Peer::Qemu || obs.exit_code == 1;
        expect_exit(ok, obs)?;
        let start = obs.line_time(READY_LINE).map(|t| t.as_secs_f64() * 1e3);
        s.start_latency_ms = Some(need_start(start, obs)?);
        s.guest_ram_kib = Some(PEER_GUEST_MIB * 1024);
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_cmdline_carries_the_spec() {
        let spec = WorkloadSpec {
            kernel: "mem-bw".into(),
            size: 4096,
            iterations: 3,
            seed: 9,
        };
        assert_eq!(
            guest_cmdline(&Workload::Run(spec), Some(2_600_000)),
            "vclab.kernel=mem-bw vclab.size=4096 vclab.iterations=3 vclab.seed=9 vclab.tsc_khz=2600000"
        );
        assert_eq!(guest_cmdline(&Workload::Idle, None), "vclab.kernel=idle");
    }

    #[test]
    fn qemu_gets_a_modern_virtio_blk_drive_for_io_only() {
        let dir = tempfile::tempdir().unwrap();
        let (qemu, unikernel) = (dir.path().join("qemu"), dir.path().join("uk.elf"));
        std::fs::write(&unikernel, b"").unwrap();
        let mut env = crate::runtime::mock::env_with(
            &[("unikernel", &unikernel)],
            Some("/var/tmp/vclab-io-5.img"),
        );
        env.host.peers.push(crate::host::PeerInfo {
            name: "qemu-system-x86_64".into(),
            path: Some(qemu),
            ..Default::default()
        });
        let io = Workload::Run(WorkloadSpec {
            kernel: "io".into(),
            size: 16 << 20,
            iterations: 4,
            seed: 1,
        });
        let argv =
            crate::runtime::mock::words(&PeerVmm::qemu().launch(&env, &io, 1).unwrap().spawn.argv);
        let at = |flag: &str| {
            let i = argv.iter().position(|a| a == flag).unwrap();
            argv[i + 1].clone()
        };
        assert_eq!(at("-M"), "microvm,x-option-roms=off,rtc=off,acpi=off");
        assert_eq!(at("-global"), "virtio-mmio.force-legacy=false");
        assert_eq!(
            at("-drive"),
            "id=d0,format=raw,if=none,cache=none,file=/var/tmp/vclab-io-5.img"
        );
        assert_eq!(at("-device"), "isa-debug-exit");
        assert!(argv.iter().any(|a| a == "virtio-blk-device,drive=d0"));
        assert!(at("-append").contains("vclab.kernel=io"));
        // Other kernels: no drive, ACPI as before.
        let cpu = Workload::Run(WorkloadSpec {
            kernel: "cpu".into(),
            size: 4096,
            iterations: 1,
            seed: 1,
        });
        let argv =
            crate::runtime::mock::words(&PeerVmm::qemu().launch(&env, &cpu, 2).unwrap().spawn.argv);
        assert!(
            !argv.iter().any(|a| a == "-drive" || a.contains("acpi=off")),
            "{argv:?}"
        );
        // Without the image the io run is a setup failure, and the row says why it skips.
        env.io_disk = None;
        assert!(PeerVmm::qemu().io_skip(&env).is_some());
        assert!(PeerVmm::qemu().launch(&env, &io, 3).is_err());
        assert!(PeerVmm::firecracker().io_skip(&env).is_some());
    }
}
