//! The runtimes (rows) of the comparison: how each is launched for one
//! workload, what it needs from this host, and how its output becomes a
//! [`Sample`]. A row that cannot run here carries the reason instead.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use vclab_vmm::cache::Manifest;
use vclab_vmm::host::KvmKind;

use super::measure::Observed;
use super::oci::{Bundle, OciRuntime};
use super::record::{Sample, WorkloadSpec};
use super::vm_report;
use super::workload_line::WorkloadLine;
use crate::host::HostRecord;

/// Marker of a Linux guest timed to its init handoff.
pub const INIT_HANDOFF: &str =
    "time to the Linux kernel's init handoff (kvm_pvm: guest userspace cannot run)";
/// The console line the Linux kernel prints when it hands over to init.
const INIT_LINE: &str = "Run /init as init process";
/// The unikernel's ready line on a UART (peers without the lab device).
const READY_LINE: &str = "{\"ready\":true}";
/// Guest RAM given to peer VMMs, MiB.
const PEER_GUEST_MIB: u64 = 128;

/// What a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The workload as a host process.
    Bare,
    /// `vclab container run` over the cache rootfs.
    Container,
    /// `runc run` of an OCI bundle over the same rootfs.
    Runc,
    /// `crun run` of the same bundle (in a private mount namespace).
    Crun,
    /// `vclab vm run` of the unikernel.
    MicrovmUnikernel,
    /// QEMU microvm booting the unikernel through PVH.
    QemuMicrovm,
    /// Firecracker booting the unikernel.
    Firecracker,
    /// cloud-hypervisor booting the unikernel.
    CloudHypervisor,
    /// `vclab vm run` of the micro-VM Linux kernel with the initramfs.
    MicrovmLinux,
    /// `vclab vm run` of Debian's cloud kernel with the initramfs.
    VmDistro,
    /// QEMU microvm booting the same micro-VM Linux kernel and initramfs: the
    /// reference for the Linux boot line (timed to the init handoff).
    QemuMicrovmLinux,
}

/// One row and whether it can run.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// Row name.
    pub name: &'static str,
    /// What it is.
    pub kind: Kind,
    /// Why it cannot run here (`None`: it runs).
    pub skip: Option<String>,
    /// A Linux guest row: one boot, timed to init handoff where userspace cannot run.
    pub linux_boot: bool,
}

/// What the rows need: binaries and artifacts found on this host.
#[derive(Debug, Clone)]
pub struct Env {
    /// The `vclab` binary (this program).
    pub vclab: PathBuf,
    /// The host `vclab-workload` binary.
    pub workload: Option<PathBuf>,
    /// The guest-images manifest, or why it is missing.
    pub manifest: Result<Manifest, String>,
    /// The host record (peers, KVM kind).
    pub host: HostRecord,
    /// TSC frequency for guests without the VMM's figure, kHz.
    pub tsc_khz: Option<u64>,
    /// Boot the Linux rows.
    pub linux: bool,
    /// Also boot QEMU's Linux reference where Linux boots are slow (kvm_pvm).
    pub linux_reference: bool,
}

impl Env {
    /// The command that runs one VM: the small `vclab-vmm` binary built next
    /// to this program, else `vclab vm run` (same arguments, same code).
    fn vmm_argv(&self) -> Vec<OsString> {
        self.sibling_or("vclab-vmm", &["vm", "run"])
    }

    /// The command that runs one container: the small `vclab-container`
    /// binary next to this program, else `vclab container run`.
    fn launcher_argv(&self) -> Vec<OsString> {
        self.sibling_or("vclab-container", &["container", "run"])
    }

    fn sibling_or(&self, name: &str, subcommand: &[&str]) -> Vec<OsString> {
        match self.vclab.parent().map(|d| d.join(name)) {
            Some(bin) if bin.is_file() => vec![bin.into()],
            _ => {
                let mut argv = vec![self.vclab.clone().into()];
                argv.extend(os(subcommand));
                argv
            }
        }
    }

    fn artifact(&self, name: &str) -> Result<PathBuf, String> {
        let m = self.manifest.as_ref().map_err(Clone::clone)?;
        let p = m.path(name).map_err(|e| e.to_string())?;
        if p.exists() {
            Ok(p)
        } else {
            Err(format!(
                "artifact '{name}' is missing at {} (rebuild: scripts/guest-images.sh)",
                p.display()
            ))
        }
    }

    fn peer(&self, name: &str) -> Result<PathBuf, String> {
        self.host
            .peer(name)
            .and_then(|p| p.path.clone())
            .ok_or_else(|| format!("{name} is not installed"))
    }

    fn vm_works(&self) -> Result<(), String> {
        if self.host.kvm_kind == Some(KvmKind::Absent) {
            return Err("no /dev/kvm on this host".into());
        }
        Ok(())
    }
}

/// The TSC frequency in kHz, from /proc/cpuinfo's `cpu MHz` (the figure guests get without the VMM).
pub fn host_tsc_khz() -> Option<u64> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mhz: f64 = cpuinfo
        .lines()
        .find(|l| l.starts_with("cpu MHz"))?
        .split_once(':')?
        .1
        .trim()
        .parse()
        .ok()?;
    Some((mhz * 1000.0).round() as u64)
}

/// Finds the host workload binary: the manifest's `workload`, else next to this program, else $PATH.
pub fn find_workload(manifest: &Result<Manifest, String>, vclab: &Path) -> Option<PathBuf> {
    if let Ok(Ok(p)) = manifest.as_ref().map(|m| m.path("workload")) {
        if p.is_file() {
            return Some(p);
        }
    }
    let sibling = vclab.with_file_name("vclab-workload");
    if sibling.is_file() {
        return Some(sibling);
    }
    crate::host::which("vclab-workload")
}

fn check_all(parts: &[Result<(), String>]) -> Option<String> {
    parts.iter().find_map(|p| p.as_ref().err().cloned())
}

fn need(r: Result<PathBuf, String>) -> Result<(), String> {
    r.map(|_| ())
}

/// All rows in display order, each with its skip reason for this host.
pub fn rows(env: &Env) -> Vec<Runtime> {
    let pvm_linux = !env.host.kvm_kind.is_some_and(|k| k.runs_linux_userspace());
    let linux_skip = |art: &str| {
        check_all(&[
            env.vm_works(),
            need(env.artifact(art)),
            need(env.artifact("initramfs")),
            if env.linux {
                Ok(())
            } else {
                Err("Linux guest boots take two to four minutes on kvm_pvm: skipped in --quick (add --linux)".into())
            },
        ])
    };
    let workload = env
        .workload
        .clone()
        .ok_or_else(|| "vclab-workload is not built (cargo build -p vclab-workload --release, or scripts/guest-images.sh)".to_string());
    vec![
        Runtime {
            name: "bare",
            kind: Kind::Bare,
            skip: check_all(&[need(workload)]),
            linux_boot: false,
        },
        Runtime {
            name: "container",
            kind: Kind::Container,
            skip: check_all(&[need(env.artifact("rootfs"))]),
            linux_boot: false,
        },
        Runtime {
            name: "runc",
            kind: Kind::Runc,
            skip: check_all(&[need(env.peer("runc")), need(env.artifact("rootfs"))]),
            linux_boot: false,
        },
        Runtime {
            name: "crun",
            kind: Kind::Crun,
            skip: check_all(&[need(env.peer("crun")), need(env.artifact("rootfs"))]),
            linux_boot: false,
        },
        Runtime {
            name: "microvm-unikernel",
            kind: Kind::MicrovmUnikernel,
            skip: check_all(&[env.vm_works(), need(env.artifact("unikernel"))]),
            linux_boot: false,
        },
        Runtime {
            name: "qemu-microvm",
            kind: Kind::QemuMicrovm,
            skip: check_all(&[
                env.vm_works(),
                need(env.peer("qemu-system-x86_64")),
                need(env.artifact("unikernel")),
            ]),
            linux_boot: false,
        },
        Runtime {
            name: "firecracker",
            kind: Kind::Firecracker,
            skip: check_all(&[
                env.vm_works(),
                need(env.peer("firecracker")).map_err(|e| format!("{e} (give --firecracker PATH)")),
                need(env.artifact("unikernel")),
            ]),
            linux_boot: false,
        },
        Runtime {
            name: "cloud-hypervisor",
            kind: Kind::CloudHypervisor,
            skip: check_all(&[
                env.vm_works(),
                need(env.peer("cloud-hypervisor"))
                    .map_err(|e| format!("{e} (give --cloud-hypervisor PATH)")),
                need(env.artifact("unikernel")),
            ]),
            linux_boot: false,
        },
        Runtime {
            name: "microvm-linux",
            kind: Kind::MicrovmLinux,
            skip: linux_skip("vmlinux"),
            linux_boot: pvm_linux,
        },
        Runtime {
            name: "qemu-microvm-linux",
            kind: Kind::QemuMicrovmLinux,
            skip: linux_skip("vmlinux").or_else(|| {
                check_all(&[
                    need(env.peer("qemu-system-x86_64")),
                    if pvm_linux && !env.linux_reference {
                        Err("on kvm_pvm QEMU's Linux boot takes about four minutes: add --linux to \
                             include this reference"
                            .into())
                    } else {
                        Ok(())
                    },
                ])
            }),
            // Always a boot line: QEMU has no lab control device to time the workload by.
            linux_boot: true,
        },
        Runtime {
            name: "vm-distro",
            kind: Kind::VmDistro,
            skip: if env.host.kvm_kind == Some(KvmKind::Pvm) {
                Some(
                    "Debian's cloud kernel cannot boot on kvm_pvm: its INT3 self-test stops the boot \
                     and cannot be switched off without the lab's kernel patch (needs hardware KVM)"
                        .into(),
                )
            } else {
                linux_skip("distro-kernel")
            },
            linux_boot: pvm_linux,
        },
    ]
}

/// A short account of a failed VM run: the VMM's end reason and phase times,
/// else the last output lines.
fn vm_failure(report: Option<&vclab_vmm::VmReport>, obs: &Observed) -> String {
    match report {
        Some(r) => vm_report::describe_end(r, obs.exit_code),
        None => format!("exit {}; output ended: {}", obs.exit_code, obs.tail()),
    }
}

/// The cgroup fields of the vclab launcher's `--json` report (its last stdout
/// line; `RunReport` in `container/src/lib.rs`). Read apart from the rest of
/// the report so that older reports, which lack both, still give a sample.
#[derive(Debug, Default, Deserialize, PartialEq)]
struct LauncherCgroup {
    /// `clone-into`, `migrated` or `none`.
    cgroup_placement: Option<String>,
    /// Time spent writing the child's pid to `cgroup.procs`, ns.
    cgroup_attach_ns: Option<u64>,
}

impl LauncherCgroup {
    /// The fields of `last_line`; none when it is not a JSON object.
    fn parse(last_line: Option<&str>) -> Self {
        last_line
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_default()
    }

    /// Keeps them in `s`.
    fn fill(self, s: &mut Sample) {
        s.cgroup_placement = self.cgroup_placement;
        s.cgroup_attach_ms = self.cgroup_attach_ns.map(|ns| ns as f64 / 1e6);
    }
}

/// One prepared launch: the command line plus what must be cleaned up after it.
pub struct Launch {
    /// The command to observe.
    pub argv: Vec<OsString>,
    /// Enter a private mount namespace without the cgroup2 mount (crun on hybrid hosts).
    pub private_mount_ns: bool,
    /// Kill the run after this long.
    pub timeout: Duration,
    /// An OCI bundle to remove (and its container to delete) after the run.
    pub bundle: Option<Bundle>,
    /// End the run once a stdout line contains this (what is measured has happened).
    pub stop_on_line: Option<&'static str>,
}

fn os(items: &[&str]) -> Vec<OsString> {
    items.iter().map(OsString::from).collect()
}

fn workload_args(spec: &WorkloadSpec) -> Vec<String> {
    vec![
        "run".into(),
        spec.kernel.clone(),
        "--size".into(),
        spec.size.to_string(),
        "--iterations".into(),
        spec.iterations.to_string(),
        "--seed".into(),
        spec.seed.to_string(),
    ]
}

/// QEMU microvm under KVM with one serial console on stdio, no firmware
/// extras, and the peers' guest RAM.
fn qemu_microvm_args() -> Vec<OsString> {
    os(&[
        "-M",
        "microvm,x-option-roms=off,rtc=off",
        "-enable-kvm",
        // The brief's `-cpu host` aborts on kvm_pvm ("failed to set MSR
        // 0x10a"): the host CPU minus IA32_ARCH_CAPABILITIES boots.
        "-cpu",
        "host,-arch-capabilities",
        "-m",
        &PEER_GUEST_MIB.to_string(),
        "-nodefaults",
        "-no-user-config",
        "-nographic",
        "-serial",
        "stdio",
    ])
}

/// The guest command line for the unikernel running `spec`.
pub fn unikernel_cmdline(spec: &WorkloadSpec, tsc_khz: Option<u64>) -> String {
    let mut s = format!(
        "vclab.kernel={} vclab.size={} vclab.iterations={} vclab.seed={}",
        spec.kernel, spec.size, spec.iterations, spec.seed
    );
    if let Some(k) = tsc_khz {
        s += &format!(" vclab.tsc_khz={k}");
    }
    s
}

impl Runtime {
    /// Prepares the launch of `spec` (`seq` makes names unique).
    pub fn launch(&self, env: &Env, spec: &WorkloadSpec, seq: u64) -> Result<Launch, String> {
        let short = Duration::from_secs(60);
        let mut l = Launch {
            argv: Vec::new(),
            private_mount_ns: false,
            timeout: short,
            bundle: None,
            stop_on_line: None,
        };
        match self.kind {
            Kind::Bare => {
                let w = env.workload.clone().ok_or("vclab-workload is not built")?;
                l.argv.push(w.into());
                l.argv
                    .extend(workload_args(spec).into_iter().map(OsString::from));
            }
            Kind::Container => {
                l.argv = env.launcher_argv();
                l.argv.push("--rootfs".into());
                l.argv.push(env.artifact("rootfs")?.into());
                l.argv.extend(os(&["--json", "--", "/bin/vclab-workload"]));
                l.argv
                    .extend(workload_args(spec).into_iter().map(OsString::from));
            }
            Kind::Runc | Kind::Crun => {
                let (rt, name) = if self.kind == Kind::Runc {
                    (OciRuntime::Runc, "runc")
                } else {
                    (OciRuntime::Crun, "crun")
                };
                let bin = env.peer(name)?;
                let mut args = vec!["/bin/vclab-workload".to_string()];
                args.extend(workload_args(spec));
                let bundle = Bundle::create(rt, bin, &env.artifact("rootfs")?, &args, seq)
                    .map_err(|e| e.to_string())?;
                l.argv = bundle.run_argv();
                l.private_mount_ns = rt == OciRuntime::Crun;
                l.bundle = Some(bundle);
            }
            Kind::MicrovmUnikernel => {
                l.argv = env.vmm_argv();
                l.argv.push("--kernel".into());
                l.argv.push(env.artifact("unikernel")?.into());
                l.argv.push("--cmdline".into());
                l.argv.push(unikernel_cmdline(spec, None).into());
                l.argv.extend(os(&["--console", "off", "--json"]));
            }
            Kind::QemuMicrovm => {
                l.argv.push(env.peer("qemu-system-x86_64")?.into());
                l.argv.extend(qemu_microvm_args());
                l.argv.extend(os(&["-device", "isa-debug-exit", "-kernel"]));
                l.argv.push(env.artifact("unikernel")?.into());
                l.argv.push("-append".into());
                l.argv.push(unikernel_cmdline(spec, env.tsc_khz).into());
            }
            Kind::Firecracker => {
                let bin = env.peer("firecracker")?;
                let cfg = super::oci::firecracker_config(
                    &env.artifact("unikernel")?,
                    &unikernel_cmdline(spec, env.tsc_khz),
                    PEER_GUEST_MIB,
                    seq,
                )
                .map_err(|e| e.to_string())?;
                l.argv.push(bin.into());
                l.argv.extend(os(&["--no-api", "--config-file"]));
                l.argv.push(cfg.path().into());
                l.bundle = Some(cfg);
            }
            Kind::CloudHypervisor => {
                l.argv.push(env.peer("cloud-hypervisor")?.into());
                l.argv.push("--kernel".into());
                l.argv.push(env.artifact("unikernel")?.into());
                l.argv.push("--cmdline".into());
                l.argv.push(unikernel_cmdline(spec, env.tsc_khz).into());
                l.argv.extend(os(&[
                    "--cpus",
                    "boot=1",
                    "--memory",
                    &format!("size={PEER_GUEST_MIB}M"),
                    "--serial",
                    "tty",
                    "--console",
                    "off",
                ]));
            }
            Kind::QemuMicrovmLinux => {
                let kvm_kind = env.host.kvm_kind;
                let cmdline = vclab_vmm::cmdline::build(
                    &vclab_vmm::cmdline::Parts {
                        linux: true,
                        // The init handoff line is printed at info level.
                        quiet: false,
                        pvm_quirks: kvm_kind == Some(KvmKind::Pvm),
                        pvm_smp_quirks: false,
                        tsc_khz: None,
                        user: &unikernel_cmdline(spec, None),
                    },
                    2048,
                )
                .map_err(|e| e.to_string())?;
                l.argv.push(env.peer("qemu-system-x86_64")?.into());
                l.argv.extend(qemu_microvm_args());
                l.argv.extend(os(&["-smp", "1", "-no-reboot", "-kernel"]));
                l.argv.push(env.artifact("vmlinux")?.into());
                l.argv.push("-initrd".into());
                l.argv.push(env.artifact("initramfs")?.into());
                l.argv.push("-append".into());
                l.argv.push(cmdline.into());
                // microvm has no i8042 for reboot=k, and on kvm_pvm the kernel's
                // triple-fault reset (reboot=t) uses INT3, which cannot be emulated
                // there: QEMU would not exit by itself. The handoff is what is timed.
                l.stop_on_line = Some(INIT_LINE);
                l.timeout = Duration::from_secs(430);
            }
            Kind::MicrovmLinux | Kind::VmDistro => {
                let kernel = if self.kind == Kind::MicrovmLinux {
                    env.artifact("vmlinux")?
                } else {
                    env.artifact("distro-kernel")?
                };
                // The VMM composes the Linux defaults and the kvm_pvm workarounds
                // itself, and on kvm_pvm stops at the init handoff (--stop-at auto).
                l.argv = env.vmm_argv();
                l.argv.push("--kernel".into());
                l.argv.push(kernel.into());
                l.argv.push("--initrd".into());
                l.argv.push(env.artifact("initramfs")?.into());
                l.argv.push("--cmdline".into());
                l.argv.push(unikernel_cmdline(spec, None).into());
                l.argv
                    .extend(os(&["--console", "off", "--timeout", "420", "--json"]));
                l.timeout = Duration::from_secs(430);
            }
        }
        Ok(l)
    }

    /// Turns one observed run into a sample, checking its result line.
    pub fn interpret(&self, obs: &Observed, spec: &WorkloadSpec) -> Result<Sample, String> {
        let mut s = Sample {
            total_ms: obs.total.as_secs_f64() * 1e3,
            peak_rss_kib: obs.peak_rss_kib,
            peak_pss_kib: obs.peak_pss_kib,
            leftover_processes: obs.leftover,
            cpu_user_ms: obs.cpu_user.as_secs_f64() * 1e3,
            cpu_sys_ms: obs.cpu_sys.as_secs_f64() * 1e3,
            ..Sample::default()
        };
        let report = vm_report::parse(obs.last_line());
        if self.linux_boot {
            let from_report = report.as_ref().and_then(|r| {
                vm_report::since_launch_ms(r, r.init_handoff_ns, obs.launch_monotonic_ns)
            });
            let from_console = obs.line_time(INIT_LINE).map(|t| t.as_secs_f64() * 1e3);
            s.start_latency_ms = from_report.or(from_console);
            // QEMU keeps running (or stops on the guest's fault) after the
            // handoff: the handoff line is what counts there, not its exit.
            let ended_ok = obs.exit_code == 0 || self.kind == Kind::QemuMicrovmLinux;
            if s.start_latency_ms.is_none() || !ended_ok {
                return Err(format!(
                    "the kernel never reached its init handoff (no '{INIT_LINE}'): {}",
                    vm_failure(report.as_ref(), obs)
                ));
            }
            if let Some(r) = &report {
                s.guest_ram_kib = Some(r.guest_ram_kib);
                s.guest_touched_kib = r.guest_touched_kib;
            }
            return Ok(s);
        }
        let report_lines = report.iter().flat_map(|r| r.guest_lines.iter());
        let line = WorkloadLine::find(obs.lines.iter().map(|(_, l)| l.as_str()))
            .or_else(|| WorkloadLine::find(report_lines.map(String::as_str)))
            .ok_or_else(|| {
                format!(
                    "no workload result line in the output: {}",
                    vm_failure(report.as_ref(), obs)
                )
            })?;
        line.check(spec)?;
        s.checksum = Some(line.checksum.clone());
        s.score_ops_per_s = line.score();
        let ok_exit = match self.kind {
            // QEMU's isa-debug-exit: (status << 1) | 1.
            Kind::QemuMicrovm => obs.exit_code == 1,
            // Firecracker and cloud-hypervisor end on the guest's reset; their code says nothing.
            Kind::Firecracker | Kind::CloudHypervisor => true,
            _ => obs.exit_code == 0,
        };
        if !ok_exit {
            return Err(format!(
                "exited with status {} after printing its result: {}",
                obs.exit_code,
                obs.tail()
            ));
        }
        match self.kind {
            Kind::Bare | Kind::Container | Kind::Runc | Kind::Crun => {
                if line.start_monotonic_ns >= obs.launch_monotonic_ns {
                    s.start_latency_ms =
                        Some((line.start_monotonic_ns - obs.launch_monotonic_ns) as f64 / 1e6);
                }
                if self.kind == Kind::Container {
                    LauncherCgroup::parse(obs.last_line()).fill(&mut s);
                }
            }
            Kind::MicrovmUnikernel | Kind::MicrovmLinux | Kind::VmDistro => {
                let report = report.as_ref().ok_or_else(|| {
                    format!(
                        "the VMM (vclab-vmm) printed no JSON report as its last line: {}",
                        obs.tail()
                    )
                })?;
                s.start_latency_ms = vm_report::since_launch_ms(
                    report,
                    report.guest_ready_ns,
                    obs.launch_monotonic_ns,
                );
                s.guest_ram_kib = Some(report.guest_ram_kib);
                s.guest_touched_kib = report.guest_touched_kib;
            }
            Kind::QemuMicrovm | Kind::Firecracker | Kind::CloudHypervisor => {
                s.start_latency_ms = obs.line_time(READY_LINE).map(|t| t.as_secs_f64() * 1e3);
                s.guest_ram_kib = Some(PEER_GUEST_MIB * 1024);
            }
            // Only ever a boot line (handled above).
            Kind::QemuMicrovmLinux => {}
        }
        if s.start_latency_ms.is_none() {
            return Err(format!(
                "no start time could be read from the run: {}",
                obs.tail()
            ));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unikernel_cmdline_carries_the_spec() {
        let spec = WorkloadSpec {
            kernel: "mem-bw".into(),
            size: 4096,
            iterations: 3,
            seed: 9,
        };
        assert_eq!(
            unikernel_cmdline(&spec, Some(2_600_000)),
            "vclab.kernel=mem-bw vclab.size=4096 vclab.iterations=3 vclab.seed=9 vclab.tsc_khz=2600000"
        );
    }

    /// An environment with nothing found: no workload, no manifest, no peers.
    fn bare_env(vclab: PathBuf) -> Env {
        Env {
            vclab,
            workload: None,
            manifest: Err("no manifest".into()),
            host: HostRecord::default(),
            tsc_khz: None,
            linux: false,
            linux_reference: false,
        }
    }

    #[test]
    fn small_binaries_next_to_vclab_are_preferred() {
        let dir = tempfile::tempdir().unwrap();
        let mut env = bare_env(dir.path().join("vclab"));
        let argv = |v: Vec<OsString>| {
            v.iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        let vclab = env.vclab.display().to_string();
        assert_eq!(argv(env.vmm_argv()), [vclab.as_str(), "vm", "run"]);
        assert_eq!(
            argv(env.launcher_argv()),
            [vclab.as_str(), "container", "run"]
        );
        for name in ["vclab-vmm", "vclab-container"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        assert_eq!(
            argv(env.vmm_argv()),
            [dir.path().join("vclab-vmm").display().to_string()]
        );
        assert_eq!(
            argv(env.launcher_argv()),
            [dir.path().join("vclab-container").display().to_string()]
        );
        env.vclab = PathBuf::from("vclab");
        assert_eq!(argv(env.vmm_argv()), ["vclab", "vm", "run"]);
    }

    const WORKLOAD: &str = "{\"kernel\":\"cpu\",\"size\":4096,\"iterations\":2,\"seed\":1,\"checksum\":\"ab12\",\"ops\":8192,\"elapsed_ns\":1000000,\"start_monotonic_ns\":5000000}";

    /// A container row's run: the workload's line, then the launcher's report.
    fn container_run(kind: Kind, report: &str) -> Result<Sample, String> {
        let spec = WorkloadSpec {
            kernel: "cpu".into(),
            size: 4096,
            iterations: 2,
            seed: 1,
        };
        let obs = Observed {
            launch_monotonic_ns: 1_000_000,
            total: Duration::from_millis(30),
            lines: vec![
                (Duration::from_millis(5), WORKLOAD.into()),
                (Duration::from_millis(29), report.into()),
            ],
            ..Observed::default()
        };
        let rt = Runtime {
            name: "container",
            kind,
            skip: None,
            linux_boot: false,
        };
        rt.interpret(&obs, &spec)
    }

    #[test]
    fn the_launchers_cgroup_attach_is_kept() {
        let report = r#"{"id":"x","cgroup_mode":"hybrid","rootless":false,"start_monotonic_ns":1200000,"exec_monotonic_ns":4900000,"cgroup_placement":"migrated","cgroup_attach_ns":12345678,"exit_monotonic_ns":9000000,"exit_code":0,"signal":null,"oom_killed":false}"#;
        let s = container_run(Kind::Container, report).unwrap();
        assert_eq!(s.start_latency_ms, Some(4.0));
        assert_eq!(s.cgroup_placement.as_deref(), Some("migrated"));
        assert_eq!(s.cgroup_attach_ms, Some(12.345678));

        let born = report
            .replace("\"migrated\"", "\"clone-into\"")
            .replace("12345678", "0");
        let s = container_run(Kind::Container, &born).unwrap();
        assert_eq!(s.cgroup_placement.as_deref(), Some("clone-into"));
        assert_eq!(s.cgroup_attach_ms, Some(0.0));
    }

    #[test]
    fn older_reports_and_other_rows_have_no_cgroup_attach() {
        // A launcher from before cgroup_placement and cgroup_attach_ns.
        let old = r#"{"id":"x","cgroup_mode":"hybrid","rootless":false,"start_monotonic_ns":1200000,"exec_monotonic_ns":4900000,"exit_monotonic_ns":9000000,"exit_code":0,"signal":null,"oom_killed":false}"#;
        let s = container_run(Kind::Container, old).unwrap();
        assert_eq!(s.start_latency_ms, Some(4.0));
        assert_eq!((s.cgroup_placement, s.cgroup_attach_ms), (None, None));
        // No report at all (the workload's line is the last one).
        let s = container_run(Kind::Container, WORKLOAD).unwrap();
        assert_eq!((s.cgroup_placement, s.cgroup_attach_ms), (None, None));
        // crun prints no report: nothing is read from its output.
        let report = r#"{"cgroup_placement":"migrated","cgroup_attach_ns":5000000}"#;
        let s = container_run(Kind::Crun, report).unwrap();
        assert_eq!((s.cgroup_placement, s.cgroup_attach_ms), (None, None));
    }

    #[test]
    fn rows_without_artifacts_have_reasons() {
        let env = bare_env(PathBuf::from("/nonexistent/vclab"));
        let rows = rows(&env);
        assert_eq!(rows.len(), 11);
        assert!(rows.iter().all(|r| r.skip.is_some()), "{rows:?}");
    }
}
