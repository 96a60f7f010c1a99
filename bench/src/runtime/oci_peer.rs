//! The OCI runtime peers: `runc run` and `crun run` of a bundle over the
//! same rootfs as the lab's container. crun refuses hybrid cgroups, so it
//! runs in a private mount namespace without the cgroup2 mount (HOST-NOTES.md).

use std::ffi::OsString;

use vclab_contract::{Failure, FailureReport};

use super::env::{first_reason, need};
use super::hold::{self, Held, HoldOptions};
use super::host::{disk_for, interpret_process, workload_args};
use super::{fail, Env, Launch, Runtime, RuntimeId, Workload, CONTAINER_DISK};
use crate::compare::oci::{Bundle, OciRuntime};
use crate::compare::record::{Sample, WorkloadSpec};
use crate::spawn::Observed;

/// runc or crun.
pub struct OciPeer {
    id: RuntimeId,
    runtime: OciRuntime,
}

impl OciPeer {
    /// runc.
    pub fn runc() -> Self {
        OciPeer {
            id: RuntimeId::Runc,
            runtime: OciRuntime::Runc,
        }
    }

    /// crun.
    pub fn crun() -> Self {
        OciPeer {
            id: RuntimeId::Crun,
            runtime: OciRuntime::Crun,
        }
    }
}

impl Runtime for OciPeer {
    fn id(&self) -> RuntimeId {
        self.id
    }

    fn unavailable(&self, env: &Env) -> Option<String> {
        first_reason(&[need(env.peer(self.id.name())), need(env.artifact("rootfs"))])
    }

    fn io_skip(&self, env: &Env) -> Option<String> {
        env.io_disk().err()
    }

    fn launch(&self, env: &Env, workload: &Workload, seq: u64) -> Result<Launch, FailureReport> {
        let setup = |e: String| fail(Failure::SetupFailed, e);
        let bin = env.peer(self.id.name()).map_err(setup)?;
        let rootfs = env.artifact("rootfs").map_err(setup)?;
        let disk = disk_for(env, workload)?;
        let inside = disk.as_ref().map(|_| std::path::Path::new(CONTAINER_DISK));
        let mut args = vec![OsString::from("/bin/vclab-workload")];
        args.extend(workload_args(workload, inside));
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let binds: Vec<(&std::path::Path, &str)> =
            disk.iter().map(|d| (d.as_path(), CONTAINER_DISK)).collect();
        let bundle = Bundle::create_with(
            self.runtime,
            bin,
            &rootfs,
            &args,
            &binds,
            seq,
            env.harness.clone(),
        )
        .map_err(|e| fail(Failure::SetupFailed, e.to_string()))?;
        let mut l = Launch::argv(env, bundle.run_argv());
        l.spawn.private_mount_ns = self.runtime == OciRuntime::Crun;
        l.files = Some(bundle);
        Ok(l)
    }

    /// Held detached (`run --detach`): no runtime process is kept; the
    /// container is registered with the harness's guard and deleted on stop.
    fn hold(
        &self,
        env: &Env,
        opts: &HoldOptions,
        seq: u64,
    ) -> Result<Box<dyn Held>, FailureReport> {
        let mut launch = self.launch(env, &Workload::Idle, seq)?;
        let bundle = launch
            .files
            .take()
            .ok_or_else(|| fail(Failure::SetupFailed, "no bundle was written"))?;
        hold::hold_oci(
            bundle,
            launch.spawn.private_mount_ns,
            self.ready_line(),
            opts,
        )
    }

    fn interpret(
        &self,
        _env: &Env,
        obs: &Observed,
        spec: &WorkloadSpec,
    ) -> Result<Sample, FailureReport> {
        interpret_process(obs, spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::mock::{env_with, words};

    #[test]
    fn the_io_image_is_bound_into_the_bundle_and_passed_to_the_workload() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("dev")).unwrap();
        let mut env = env_with(&[("rootfs", dir.path())], Some("/var/tmp/vclab-io-4.img"));
        env.host.peers.push(crate::host::PeerInfo {
            name: "crun".into(),
            path: Some(dir.path().join("no-crun")),
            ..Default::default()
        });
        let io = Workload::Run(WorkloadSpec {
            kernel: "io".into(),
            size: 16 << 20,
            iterations: 4,
            seed: 1,
        });
        let rt = OciPeer::crun();
        assert_eq!(rt.io_skip(&env), None);
        let l = rt.launch(&env, &io, 1).unwrap();
        let bundle = l.files.as_ref().unwrap();
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(bundle.path()).unwrap()).unwrap();
        let args: Vec<&str> = config["process"]["args"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a.as_str())
            .collect();
        assert_eq!(&args[args.len() - 2..], ["--disk", CONTAINER_DISK]);
        let bind = config["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == CONTAINER_DISK)
            .expect("the image's bind mount");
        assert_eq!(bind["source"], "/var/tmp/vclab-io-4.img");
        assert!(words(&l.spawn.argv).iter().any(|a| a == "run"));
        // No image: the io case is skipped with the reason, and a launch is a setup failure.
        env.io_disk = None;
        assert!(rt.io_skip(&env).is_some());
        assert_eq!(
            rt.launch(&env, &io, 2).unwrap_err().kind,
            Failure::SetupFailed
        );
    }
}
