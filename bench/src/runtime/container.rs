//! The lab's own container row: `vclab-container --json` over the cache
//! rootfs. Its start is the workload's process entry, like bare's; its
//! report (the last stdout line, `RunReport` in the contract crate) adds how
//! the container got into its cgroup.

use vclab_contract::container::RunReport;
use vclab_contract::{Failure, FailureReport};

use super::env::{first_reason, need};
use super::hold::{self, Held, HoldOptions};
use super::host::{disk_for, interpret_process, workload_args};
use super::{fail, Env, Launch, Runtime, RuntimeId, Workload, CONTAINER_DISK};
use crate::compare::record::{Sample, WorkloadSpec};
use crate::spawn::Observed;

/// The vclab container row.
pub struct VclabContainer;

/// The small `vclab-container` next to `vclab`, if it can run a container
/// detached (`--detach` in its help; asked once).
fn detaching_launcher(env: &Env) -> Option<std::path::PathBuf> {
    static DETACH: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    DETACH
        .get_or_init(|| {
            let [bin] = <[std::ffi::OsString; 1]>::try_from(env.launcher_argv()).ok()?;
            let bin = std::path::PathBuf::from(bin);
            let help = std::process::Command::new(&bin)
                .arg("--help")
                .output()
                .ok()?;
            String::from_utf8_lossy(&help.stdout)
                .contains("--detach")
                .then_some(bin)
        })
        .clone()
}

impl Runtime for VclabContainer {
    fn id(&self) -> RuntimeId {
        RuntimeId::Container
    }

    fn unavailable(&self, env: &Env) -> Option<String> {
        first_reason(&[need(env.artifact("rootfs"))])
    }

    fn io_skip(&self, env: &Env) -> Option<String> {
        env.io_disk().err()
    }

    fn launch(&self, env: &Env, workload: &Workload, _seq: u64) -> Result<Launch, FailureReport> {
        let rootfs = env
            .artifact("rootfs")
            .map_err(|e| fail(Failure::SetupFailed, e))?;
        let disk = disk_for(env, workload)?;
        let mut argv = env.launcher_argv();
        argv.push("--rootfs".into());
        argv.push(rootfs.into());
        if let Some(disk) = &disk {
            // The image, read-write (the io kernel writes its scratch area).
            let mut bind = std::ffi::OsString::from(disk);
            bind.push(format!(":{CONTAINER_DISK}"));
            argv.push("-v".into());
            argv.push(bind);
        }
        argv.extend(["--json", "--", "/bin/vclab-workload"].map(Into::into));
        let inside = disk.as_ref().map(|_| std::path::Path::new(CONTAINER_DISK));
        argv.extend(workload_args(workload, inside));
        Ok(Launch::argv(env, argv))
    }

    /// Held detached (`vclab-container run --detach`: no launcher process
    /// is kept, as with runc and crun), registered with the harness's guard;
    /// with an older launcher that cannot detach, held attached (the
    /// launcher stays, its container dies with it). The id names the state
    /// directory and the cgroups (`vclab-<prefix>-<seq>`), so a teardown can
    /// check that they are gone.
    fn hold(
        &self,
        env: &Env,
        opts: &HoldOptions,
        seq: u64,
    ) -> Result<Box<dyn Held>, FailureReport> {
        let id = format!("{}-{seq}", opts.name_prefix);
        if let Some(bin) = detaching_launcher(env) {
            let rootfs = env
                .artifact("rootfs")
                .map_err(|e| fail(Failure::SetupFailed, e))?;
            let mut args: Vec<std::ffi::OsString> = vec!["--rootfs".into(), rootfs.into()];
            args.extend(["--", "/bin/vclab-workload"].map(Into::into));
            args.extend(workload_args(&Workload::Idle, None));
            return hold::hold_vclab_detached(
                &bin,
                &id,
                &args,
                self.ready_line(),
                opts,
                env.harness.clone(),
            );
        }
        let mut launch = self.launch(env, &Workload::Idle, seq)?;
        let at = env.launcher_argv().len();
        launch.spawn.argv.splice(at..at, ["--id".into(), id.into()]);
        hold::hold_launch(launch, self.ready_line(), opts)
    }

    fn interpret(
        &self,
        _env: &Env,
        obs: &Observed,
        spec: &WorkloadSpec,
    ) -> Result<Sample, FailureReport> {
        let mut s = interpret_process(obs, spec)?;
        // Reports of older launchers lack the cgroup fields (serde defaults), or are absent.
        if let Some(r) = obs
            .last_line()
            .and_then(|l| serde_json::from_str::<RunReport>(l).ok())
        {
            s.cgroup_placement = Some(r.cgroup_placement);
            s.cgroup_attach_ms = Some(r.cgroup_attach_ns as f64 / 1e6);
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use vclab_contract::container::Placement;

    const WORKLOAD: &str = "{\"kernel\":\"cpu\",\"size\":4096,\"iterations\":2,\"seed\":1,\"checksum\":\"ab12\",\"ops\":8192,\"elapsed_ns\":1000000,\"start_monotonic_ns\":5000000}";

    fn spec() -> WorkloadSpec {
        WorkloadSpec {
            kernel: "cpu".into(),
            size: 4096,
            iterations: 2,
            seed: 1,
        }
    }

    /// A container row's run: the workload's line, then the launcher's report.
    fn container_run(rt: &dyn Runtime, report: &str) -> Result<Sample, FailureReport> {
        let obs = Observed {
            launch_monotonic_ns: 1_000_000,
            total: Duration::from_millis(30),
            lines: vec![
                (Duration::from_millis(5), WORKLOAD.into()),
                (Duration::from_millis(29), report.into()),
            ],
            ..Observed::default()
        };
        rt.interpret(&Env::bare("/x".into()), &obs, &spec())
    }

    const REPORT: &str = r#"{"id":"x","cgroup_mode":"hybrid","rootless":false,"start_monotonic_ns":1200000,"exec_monotonic_ns":4900000,"cgroup_placement":"migrated","cgroup_attach_ns":12345678,"exit_monotonic_ns":9000000,"exit_code":0,"signal":null,"oom_killed":false,"memory_peak_bytes":null,"cpu_usage_ns":null,"launcher_peak_rss_kib":null}"#;

    #[test]
    fn the_launchers_cgroup_attach_is_kept() {
        let s = container_run(&VclabContainer, REPORT).unwrap();
        assert_eq!(s.start_latency_ms, Some(4.0));
        assert_eq!(s.cgroup_placement, Some(Placement::Migrated));
        assert_eq!(s.cgroup_attach_ms, Some(12.345678));

        let born = REPORT
            .replace("\"migrated\"", "\"clone-into\"")
            .replace("12345678", "0");
        let s = container_run(&VclabContainer, &born).unwrap();
        assert_eq!(s.cgroup_placement, Some(Placement::CloneInto));
        assert_eq!(s.cgroup_attach_ms, Some(0.0));
    }

    #[test]
    fn no_report_and_other_rows_have_no_cgroup_attach() {
        // No report at all (the workload's line is the last one).
        let s = container_run(&VclabContainer, WORKLOAD).unwrap();
        assert_eq!((s.cgroup_placement, s.cgroup_attach_ms), (None, None));
        // crun prints no report: nothing is read from its output.
        let crun = super::super::of(RuntimeId::Crun);
        let s = container_run(crun.as_ref(), REPORT).unwrap();
        assert_eq!((s.cgroup_placement, s.cgroup_attach_ms), (None, None));
    }

    #[test]
    fn the_io_image_is_bind_mounted_read_write_and_passed_inside() {
        let rootfs = tempfile::tempdir().unwrap();
        let env = crate::runtime::mock::env_with(
            &[("rootfs", rootfs.path())],
            Some("/var/tmp/vclab-io-9.img"),
        );
        let io = Workload::Run(WorkloadSpec {
            kernel: "io".into(),
            ..spec()
        });
        let l = VclabContainer.launch(&env, &io, 1).unwrap();
        let argv = crate::runtime::mock::words(&l.spawn.argv);
        let v = argv.iter().position(|a| a == "-v").unwrap();
        assert_eq!(
            argv[v + 1],
            format!("/var/tmp/vclab-io-9.img:{CONTAINER_DISK}")
        );
        let dashes = argv.iter().position(|a| a == "--").unwrap();
        assert!(v < dashes, "{argv:?}");
        assert_eq!(&argv[argv.len() - 2..], ["--disk", CONTAINER_DISK]);
        // The other kernels get no bind mount.
        let l = VclabContainer
            .launch(&env, &Workload::Run(spec()), 2)
            .unwrap();
        assert!(!l.spawn.argv.iter().any(|a| a == "-v"));
    }

    #[test]
    fn a_wrong_checksum_line_or_exit_is_a_typed_failure() {
        let obs = Observed {
            exit_code: 3,
            lines: vec![(Duration::from_millis(5), WORKLOAD.into())],
            ..Observed::default()
        };
        let e = VclabContainer
            .interpret(&Env::bare("/x".into()), &obs, &spec())
            .unwrap_err();
        assert_eq!(e.kind, Failure::BadExitStatus);
        let obs = Observed {
            lines: vec![(Duration::from_millis(5), "hello".into())],
            ..Observed::default()
        };
        let e = VclabContainer
            .interpret(&Env::bare("/x".into()), &obs, &spec())
            .unwrap_err();
        assert_eq!(e.kind, Failure::NoResultLine);
    }
}
