//! The measure step of the isolation probe: one `vclab-workload probe` per row, its line kept.
//!
//! - `bare`: the host workload binary, read-only checks only (no `--escapes` on the host).
//! - `container`: `vclab-container` over the lab rootfs with its defaults (Docker's seccomp
//!   profile and capabilities), and `container-unconfined`: the same with `--seccomp unconfined`
//!   (when the launcher has the option).
//! - `crun`, `runc`: the compare bundle over the same rootfs with Docker's capabilities, `runc
//!   spec`'s masked and read-only paths, a read-only /sys and a cgroup namespace, and no seccomp
//!   profile (`runc spec` writes none: Docker adds its own).
//!
//! Each probe gets the harness's pid as `--target-pid`: a process outside the container, for the
//! ptrace check.

use std::ffi::OsString;
use std::time::Duration;

use serde_json::{json, Value};

use super::{Isolation, RowProbe, VmSurface};
use crate::compare::oci::{Bundle, OciRuntime};
use crate::runtime::{Env, Launch, Runtime, RuntimeId};
use crate::spawn::{Policy, SpawnSpec, Spawned};

/// How long one probe may take (it takes about a second here).
const TIMEOUT: Duration = Duration::from_secs(60);
/// A bundle sequence number no measured run uses.
const SEQ: u64 = 900_000;

/// Errors of one row's probe (saved as the row's `failure` text).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The row cannot run here.
    #[error("not run: {0}")]
    Unavailable(String),
    /// Its files could not be prepared.
    #[error("cannot prepare the probe: {0}")]
    Setup(String),
    /// The launch failed or timed out.
    #[error("the probe did not run: {0}")]
    Launch(String),
    /// It ran but printed no probe line.
    #[error("no probe line (exit {code}; is the workload in the rootfs older than the probe? run scripts/guest-images.sh all): {stderr}")]
    NoLine {
        /// Exit code.
        code: i32,
        /// Its stderr, trimmed.
        stderr: String,
    },
}

/// The rows the probe covers, by name, with the registry row that must be in the run.
const ROWS: [(&str, RuntimeId); 5] = [
    ("bare", RuntimeId::Bare),
    ("container", RuntimeId::Container),
    ("container-unconfined", RuntimeId::Container),
    ("crun", RuntimeId::Crun),
    ("runc", RuntimeId::Runc),
];

/// Probes every covered row that is in `rows`, and counts the VMM's side.
pub fn probe(env: &Env, rows: &[Box<dyn Runtime>]) -> Isolation {
    let mut out = Isolation {
        rows: Vec::new(),
        vm: vm_surface(),
    };
    for (name, id) in ROWS {
        let Some(rt) = rows.iter().find(|r| r.id() == id) else {
            continue;
        };
        let config = config_text(name);
        let result = match rt.unavailable(env) {
            Some(why) => Err(ProbeError::Unavailable(why)),
            None => run_row(env, name),
        };
        eprintln!(
            "vclab compare: isolation probe {name}: {}",
            match &result {
                Ok(_) => "done".to_string(),
                Err(e) => e.to_string(),
            }
        );
        out.rows.push(RowProbe {
            row: name.into(),
            config: config.into(),
            line: result.as_ref().ok().cloned(),
            failure: result.err().map(|e| e.to_string()),
        });
    }
    out
}

/// How each row is configured, for the table.
fn config_text(row: &str) -> &'static str {
    match row {
        "bare" => "host process (read-only checks only)",
        "container" => "vclab-container defaults (Docker's seccomp profile and capabilities)",
        "container-unconfined" => "vclab-container --seccomp unconfined",
        _ => "Docker's capabilities, runc spec's masked paths, no seccomp profile (runc spec's default)",
    }
}

/// The probe's arguments inside a container.
fn probe_args(escapes: bool) -> Vec<String> {
    let mut args = vec!["probe".to_string()];
    if escapes {
        args.push("--escapes".into());
    }
    args.extend(["--target-pid".into(), std::process::id().to_string()]);
    args
}

/// Runs one row's probe and returns its line.
fn run_row(env: &Env, row: &str) -> Result<Value, ProbeError> {
    let setup = ProbeError::Setup;
    let (spec, _bundle) = match row {
        "bare" => {
            let bin = env.workload().map_err(setup)?;
            let mut argv: Vec<OsString> = vec![bin.into()];
            argv.extend(probe_args(false).into_iter().map(Into::into));
            (spec_of(env, argv, false), None)
        }
        "container" | "container-unconfined" => {
            let rootfs = env.artifact("rootfs").map_err(setup)?;
            let mut argv = env.launcher_argv();
            if row == "container-unconfined" {
                if !launcher_has_seccomp(&argv) {
                    return Err(ProbeError::Unavailable(
                        "this vclab-container has no --seccomp option".into(),
                    ));
                }
                argv.extend(["--seccomp", "unconfined"].map(OsString::from));
            }
            argv.extend([OsString::from("--rootfs"), rootfs.into(), "--".into()]);
            argv.push("/bin/vclab-workload".into());
            argv.extend(probe_args(true).into_iter().map(Into::into));
            (spec_of(env, argv, false), None)
        }
        _ => {
            let runtime = if row == "crun" {
                OciRuntime::Crun
            } else {
                OciRuntime::Runc
            };
            let bin = env.peer(row).map_err(setup)?;
            let rootfs = env.artifact("rootfs").map_err(setup)?;
            let mut args = vec!["/bin/vclab-workload".to_string()];
            args.extend(probe_args(true));
            let bundle = Bundle::create(runtime, bin, &rootfs, &args, SEQ, env.harness.clone())
                .map_err(|e| ProbeError::Setup(e.to_string()))?;
            harden_bundle(bundle.path()).map_err(ProbeError::Setup)?;
            let spec = spec_of(env, bundle.run_argv(), runtime == OciRuntime::Crun);
            (spec, Some(bundle))
        }
    };
    let launch = Launch {
        spawn: spec,
        policy: Policy::RunToExit,
        timeout: TIMEOUT,
        files: None,
    };
    let obs = Spawned::spawn(&launch.spawn)
        .and_then(|s| s.run(launch.policy, launch.timeout))
        .map_err(|e| ProbeError::Launch(e.to_string()))?;
    obs.lines
        .iter()
        .rev()
        .map(|(_, l)| l.trim())
        .find(|l| l.starts_with("{\"probe\":"))
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| ProbeError::NoLine {
            code: obs.exit_code,
            stderr: obs.stderr.trim().chars().take(400).collect(),
        })
}

fn spec_of(env: &Env, argv: Vec<OsString>, private_mount_ns: bool) -> SpawnSpec {
    SpawnSpec {
        argv,
        private_mount_ns,
        cpu: env.instance_cpu,
    }
}

/// Whether the launcher's help lists `--seccomp`.
fn launcher_has_seccomp(argv: &[OsString]) -> bool {
    let Some((bin, rest)) = argv.split_first() else {
        return false;
    };
    std::process::Command::new(bin)
        .args(rest)
        .arg("--help")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--seccomp"))
}

/// `runc spec`'s masked and read-only paths.
const MASKED: [&str; 9] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
];
const READ_ONLY: [&str; 6] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
    "/proc/scsi",
];

/// Adds Docker's capabilities, `runc spec`'s masks, a read-only /sys and a cgroup namespace to
/// the compare bundle's config.json (the compare runs keep the plain bundle).
fn harden_bundle(config: &std::path::Path) -> Result<(), String> {
    let text = std::fs::read_to_string(config)
        .map_err(|e| format!("cannot read {}: {e}", config.display()))?;
    let mut v: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not JSON: {e}", config.display()))?;
    harden(&mut v);
    std::fs::write(config, v.to_string())
        .map_err(|e| format!("cannot write {}: {e}", config.display()))
}

/// The changes of [`harden_bundle`] on a parsed config.
pub fn harden(v: &mut Value) {
    let caps: Vec<&str> = vclab_container::caps::DOCKER_DEFAULT.to_vec();
    v["process"]["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps
    });
    v["linux"]["maskedPaths"] = json!(MASKED);
    v["linux"]["readonlyPaths"] = json!(READ_ONLY);
    if let Some(ns) = v["linux"]["namespaces"].as_array_mut() {
        ns.push(json!({"type": "cgroup"}));
    }
    if let Some(m) = v["mounts"].as_array_mut() {
        m.push(
            json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"]}),
        );
    }
}

/// The VMM's side, from the VMM itself: syscalls its seccomp filters allow, the exit kinds its
/// handler distinguishes and the device registers (ports and MMIO addresses) it claims.
pub fn vm_surface() -> VmSurface {
    let mut vm = VmSurface::default();
    match vclab_vmm::seccomp::surface() {
        Ok(s) => {
            vm.syscalls_vcpu = Some(s.vcpu_syscalls);
            vm.syscalls_main = Some(s.main_syscalls);
            vm.syscalls_single = Some(s.single_vcpu_syscalls);
            vm.exit_kinds = Some(s.exit_kinds);
            vm.device_registers = Some(s.port_registers + s.mmio_registers);
        }
        Err(e) => vm.notes.push(format!("VMM surface counts: {e}")),
    }
    vm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardening_adds_capabilities_masks_sys_and_cgroup_namespace() {
        let mut v = crate::compare::oci::oci_config(
            std::path::Path::new("/nonexistent"),
            &["/bin/true".into()],
            "/x",
        );
        harden(&mut v);
        assert_eq!(
            v["process"]["capabilities"]["bounding"]
                .as_array()
                .map(Vec::len),
            Some(vclab_container::caps::DOCKER_DEFAULT.len())
        );
        assert_eq!(v["linux"]["readonlyPaths"][3], "/proc/sys");
        assert!(v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "cgroup"));
        assert_eq!(
            v["mounts"].as_array().unwrap().last().unwrap()["destination"],
            "/sys"
        );
    }

    #[test]
    fn probe_args_pass_the_harness_pid() {
        let a = probe_args(true);
        assert_eq!(a[..2], ["probe", "--escapes"]);
        assert_eq!(a[3], std::process::id().to_string());
        assert!(!probe_args(false).contains(&"--escapes".to_string()));
    }

    #[test]
    fn the_vm_side_counts_the_filters() {
        let vm = vm_surface();
        assert!(vm.syscalls_vcpu.is_some_and(|n| n > 0), "{vm:?}");
        assert!(vm.syscalls_single >= vm.syscalls_vcpu, "{vm:?}");
        assert!(vm.exit_kinds.is_some_and(|n| n > 0), "{vm:?}");
        assert!(vm.device_registers.is_some_and(|n| n > 0), "{vm:?}");
    }
}
