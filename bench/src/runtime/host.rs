//! The host process row: `vclab-workload` run directly, the reference every
//! other row is compared with.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use vclab_contract::FailureReport;

use super::env::{first_reason, need};
use super::interpret::{base_sample, entry_latency_ms, expect_exit, need_start, result_line};
use super::{fail, needs_disk, Env, Launch, Runtime, RuntimeId, Workload};
use crate::compare::record::{Sample, WorkloadSpec};
use crate::spawn::Observed;

/// `vclab-workload`'s arguments for `workload`; the io kernel reads `disk` (`--disk PATH`, the
/// path as the workload sees it), which the other kernels ignore.
pub fn workload_args(workload: &Workload, disk: Option<&Path>) -> Vec<OsString> {
    let mut words: Vec<String> = match workload {
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
    let mut argv: Vec<OsString> = words.drain(..).map(OsString::from).collect();
    if let (true, Some(disk)) = (needs_disk(workload), disk) {
        argv.push("--disk".into());
        argv.push(disk.into());
    }
    argv
}

/// The run's io disk image when `workload` is the io kernel (`None` for the other kernels), or
/// the setup failure of not having one.
pub fn disk_for(env: &Env, workload: &Workload) -> Result<Option<PathBuf>, FailureReport> {
    if !needs_disk(workload) {
        return Ok(None);
    }
    env.io_disk()
        .map(|p| Some(p.to_path_buf()))
        .map_err(|e| fail(vclab_contract::Failure::SetupFailed, e))
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

    fn io_skip(&self, env: &Env) -> Option<String> {
        env.io_disk().err()
    }

    fn launch(&self, env: &Env, workload: &Workload, _seq: u64) -> Result<Launch, FailureReport> {
        let bin = env
            .workload()
            .map_err(|e| fail(vclab_contract::Failure::SetupFailed, e))?;
        let disk = disk_for(env, workload)?;
        let mut argv = vec![bin.into()];
        argv.extend(workload_args(workload, disk.as_deref()));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kernel: &str) -> Workload {
        Workload::Run(WorkloadSpec {
            kernel: kernel.into(),
            size: 16 << 20,
            iterations: 8,
            seed: 3,
        })
    }

    fn words(argv: &[OsString]) -> Vec<String> {
        argv.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn only_the_io_kernel_gets_the_disk() {
        let disk = Path::new("/var/tmp/vclab-io-1.img");
        let io = words(&workload_args(&spec("io"), Some(disk)));
        assert_eq!(&io[..2], ["run", "io"]);
        assert_eq!(&io[io.len() - 2..], ["--disk", "/var/tmp/vclab-io-1.img"]);
        let cpu = words(&workload_args(&spec("cpu"), Some(disk)));
        assert!(!cpu.iter().any(|w| w == "--disk"), "{cpu:?}");
        assert_eq!(words(&workload_args(&Workload::Idle, Some(disk))), ["idle"]);
    }

    #[test]
    fn bare_runs_io_on_the_image_or_says_why_not() {
        let mut env = Env::bare("/x/vclab".into());
        env.workload = Some("/x/vclab-workload".into());
        assert!(Bare.io_skip(&env).is_some());
        let e = Bare.launch(&env, &spec("io"), 1).unwrap_err();
        assert_eq!(e.kind, vclab_contract::Failure::SetupFailed);
        env.io_disk = Some("/var/tmp/vclab-io-7.img".into());
        assert_eq!(Bare.io_skip(&env), None);
        let l = Bare.launch(&env, &spec("io"), 1).unwrap();
        let argv = words(&l.spawn.argv);
        assert_eq!(argv[0], "/x/vclab-workload");
        assert_eq!(
            &argv[argv.len() - 2..],
            ["--disk", "/var/tmp/vclab-io-7.img"]
        );
    }
}
