//! The OCI runtime peers: `runc run` and `crun run` of a bundle over the
//! same rootfs as the lab's container. crun refuses hybrid cgroups, so it
//! runs in a private mount namespace without the cgroup2 mount (HOST-NOTES.md).

use std::ffi::OsString;

use vclab_contract::{Failure, FailureReport};

use super::env::{first_reason, need};
use super::hold::{self, Held, HoldOptions};
use super::host::{interpret_process, workload_args};
use super::{fail, Env, Launch, Runtime, RuntimeId, Workload};
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

    fn launch(&self, env: &Env, workload: &Workload, seq: u64) -> Result<Launch, FailureReport> {
        let setup = |e: String| fail(Failure::SetupFailed, e);
        let bin = env.peer(self.id.name()).map_err(setup)?;
        let rootfs = env.artifact("rootfs").map_err(setup)?;
        let mut args = vec![OsString::from("/bin/vclab-workload")];
        args.extend(workload_args(workload));
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let bundle = Bundle::create(self.runtime, bin, &rootfs, &args, seq, env.harness.clone())
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
