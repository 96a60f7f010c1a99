//! Mock runtimes (as hyperfine's `MockExecutor`): rows that answer
//! [`Runtime::measure`] from a script instead of launching anything, so the
//! runner, the summaries and the course table are unit-tested without KVM.
//! The real rows still run in the end-to-end tests.

use std::sync::atomic::{AtomicU32, Ordering};

use vclab_contract::{Failure, FailureReport};

use super::{fail, Env, Launch, Runtime, RuntimeId, Workload};
use crate::compare::record::{Sample, WorkloadSpec};
use crate::spawn::Observed;

/// What a mock row does on each run.
#[derive(Debug, Clone)]
pub enum Script {
    /// Succeeds with this start (ms), score (ops/s) and checksum.
    Ok {
        /// Start latency, ms.
        start_ms: f64,
        /// Score, ops/s.
        score: f64,
        /// Checksum.
        checksum: &'static str,
    },
    /// Fails with this kind from the n-th run on (0 = the first).
    FailFrom(u32, Failure),
}

/// A scripted row.
#[derive(Debug)]
pub struct MockRuntime {
    /// The row it stands for.
    pub id: RuntimeId,
    /// Why it cannot run (None: it can).
    pub unavailable: Option<String>,
    /// What each run does.
    pub script: Script,
    /// How many times `measure` was called.
    pub calls: AtomicU32,
}

impl MockRuntime {
    /// A row that succeeds with `start_ms` and `score`, checksum `ab`.
    pub fn ok(id: RuntimeId, start_ms: f64, score: f64) -> Box<dyn Runtime> {
        Box::new(MockRuntime {
            id,
            unavailable: None,
            script: Script::Ok {
                start_ms,
                score,
                checksum: "ab",
            },
            calls: AtomicU32::new(0),
        })
    }

    /// A row with `script`.
    pub fn scripted(id: RuntimeId, script: Script) -> Box<dyn Runtime> {
        Box::new(MockRuntime {
            id,
            unavailable: None,
            script,
            calls: AtomicU32::new(0),
        })
    }

    /// A row that cannot run here.
    pub fn unavailable(id: RuntimeId, why: &str) -> Box<dyn Runtime> {
        Box::new(MockRuntime {
            id,
            unavailable: Some(why.into()),
            script: Script::FailFrom(0, Failure::SetupFailed),
            calls: AtomicU32::new(0),
        })
    }
}

impl Runtime for MockRuntime {
    fn id(&self) -> RuntimeId {
        self.id
    }

    fn unavailable(&self, _env: &Env) -> Option<String> {
        self.unavailable.clone()
    }

    fn launch(&self, _env: &Env, _w: &Workload, _seq: u64) -> Result<Launch, FailureReport> {
        Err(fail(Failure::SetupFailed, "a mock launches nothing"))
    }

    fn interpret(
        &self,
        _env: &Env,
        _o: &Observed,
        _s: &WorkloadSpec,
    ) -> Result<Sample, FailureReport> {
        Err(fail(Failure::SetupFailed, "a mock interprets nothing"))
    }

    fn measure(
        &self,
        _env: &Env,
        _spec: &WorkloadSpec,
        _seq: u64,
    ) -> Result<Sample, FailureReport> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        match &self.script {
            Script::Ok {
                start_ms,
                score,
                checksum,
            } => {
                // A little spread, the same for every row of a round.
                let wobble = 1.0 + 0.01 * f64::from(n % 3);
                Ok(Sample {
                    start_latency_ms: Some(start_ms * wobble),
                    total_ms: start_ms * wobble + 10.0,
                    score_ops_per_s: Some(score / wobble),
                    checksum: Some((*checksum).to_string()),
                    peak_rss_kib: Some(2048),
                    cpu_user_ms: 5.0,
                    ..Sample::default()
                })
            }
            Script::FailFrom(from, kind) if n >= *from => {
                Err(fail(*kind, format!("scripted failure on run {n}")))
            }
            Script::FailFrom(..) => Ok(Sample {
                start_latency_ms: Some(1.0),
                total_ms: 11.0,
                score_ops_per_s: Some(100.0),
                checksum: Some("ab".into()),
                ..Sample::default()
            }),
        }
    }
}

/// An environment whose manifest lists `artifacts` (name, path) and whose io disk image is
/// `io_disk`: for the argv tests of the rows.
pub fn env_with(artifacts: &[(&str, &std::path::Path)], io_disk: Option<&str>) -> Env {
    let mut env = Env::bare("/x/vclab".into());
    let artifacts = artifacts
        .iter()
        .map(|(name, path)| {
            let a = vclab_vmm::cache::Artifact {
                path: path.to_path_buf(),
                kind: "file".into(),
                size: 0,
                sha256: String::new(),
            };
            (name.to_string(), a)
        })
        .collect();
    env.manifest = Ok(vclab_vmm::cache::Manifest {
        version: 1,
        artifacts,
    });
    env.io_disk = io_disk.map(Into::into);
    env
}

/// `argv` as strings.
pub fn words(argv: &[std::ffi::OsString]) -> Vec<String> {
    argv.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}
