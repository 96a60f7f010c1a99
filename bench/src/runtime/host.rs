//! The host process row: `vclab-workload` run directly, the reference every
//! other row is compared with.

use std::ffi::OsString;

use vclab_contract::FailureReport;

use super::env::{first_reason, need};
use super::interpret::{base_sample, entry_latency_ms, expect_exit, need_start, result_line};
use super::{fail, Env, Launch, Runtime, RuntimeId, Workload};
use crate::compare::record::{Sample, WorkloadSpec};
use crate::spawn::Observed;

/// `vclab-workload`'s arguments for `workload`.
pub fn workload_args(workload: &Workload) -> Vec<OsString> {
    let words: Vec<String> = match workload {
        Workload::Run(spec) => vec![
            "run".into(),
            spec.kernel.clone(),
            "--size".into(),
            spec.size.to_string(),
            "--iterations".into(),
            spec.iterations.to_string(),
            "--seed".into(),
            spec.seed.to_string(),
        ],
        Workload::Idle => vec!["idle".into()],
    };
    words.into_iter().map(OsString::from).collect()
}

/// Reads a run of the workload as a process (bare, in a container): its
/// result line, exit 0, start at its process entry.
pub fn interpret_process(obs: &Observed, spec: &WorkloadSpec) -> Result<Sample, FailureReport> {
    let mut s = base_sample(obs);
    let line = result_line(obs, None, spec, &mut s)?;
    expect_exit(obs.exit_code == 0, obs)?;
    s.start_latency_ms = Some(need_start(entry_latency_ms(&line, obs), obs)?);
    Ok(s)
}

/// The bare host row.
pub struct Bare;

impl Runtime for Bare {
    fn id(&self) -> RuntimeId {
        RuntimeId::Bare
    }

    fn unavailable(&self, env: &Env) -> Option<String> {
        first_reason(&[need(env.workload())])
    }

    fn launch(&self, env: &Env, workload: &Workload, _seq: u64) -> Result<Launch, FailureReport> {
        let bin = env
            .workload()
            .map_err(|e| fail(vclab_contract::Failure::SetupFailed, e))?;
        let mut argv = vec![bin.into()];
        argv.extend(workload_args(workload));
        Ok(Launch::argv(env, argv))
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
