//! `RUN`: the command in the lab's own launcher (`vclab_container`), on an
//! overlay of the parent layers' directories with a fresh upper directory,
//! which becomes the step's layer. The overlay is mounted in the
//! container's mount namespace, so it is gone when the container ends.

use std::path::{Path, PathBuf};

use vclab_container::{namespaces::Namespace, rootfs::Layers, ContainerConfig};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The launcher could not run the container.
    #[error("the container launcher failed: {0}")]
    Launch(#[from] vclab_container::Error),
    /// The command ran and failed.
    #[error("the command exited with {code}{signal}; no layer was committed: fix the command and build again")]
    Failed {
        /// The exit code (128+N for signal N).
        code: i32,
        /// `" (signal N)"`, or empty.
        signal: String,
    },
    /// The upper or work directory could not be made.
    #[error("cannot create {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What one RUN step runs.
#[derive(Debug, Clone)]
pub struct RunStep<'a> {
    /// argv (`/bin/sh -c TEXT` for the shell form).
    pub args: Vec<String>,
    /// The environment (ENV and ARG values).
    pub env: Vec<String>,
    /// The working directory ("/" when none set).
    pub cwd: String,
    /// uid and gid.
    pub user: (u32, u32),
    /// The lower directories, topmost first (at least one).
    pub lower: Vec<PathBuf>,
    /// The upper directory that becomes the layer.
    pub upper: &'a Path,
    /// overlayfs's work directory (same file system as `upper`).
    pub work: &'a Path,
}

/// Runs `step` to completion; Ok when it exited 0.
pub fn run(step: &RunStep<'_>) -> Result<(), Error> {
    for d in [step.upper, step.work] {
        std::fs::create_dir_all(d).map_err(|source| Error::Dir {
            path: d.to_path_buf(),
            source,
        })?;
    }
    let top = step.lower.first().cloned().unwrap_or_default();
    let mut cfg = ContainerConfig::new(top, step.args.clone());
    cfg.id = Some(format!(
        "build-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    cfg.env = step.env.clone();
    cfg.cwd = if step.cwd.is_empty() {
        "/".into()
    } else {
        step.cwd.clone()
    };
    (cfg.uid, cfg.gid) = step.user;
    // A reaping init as PID 1: a step's many processes are reaped, and a
    // Ctrl-C the launcher forwards reaches the command (a shell as PID 1
    // would ignore it), so the step fails and nothing is committed.
    cfg.init = true;
    // Network "host" for now: a build step may fetch things.
    cfg.namespaces.retain(|n| *n != Namespace::Network);
    cfg.layers = Some(Layers {
        lower: step.lower.clone(),
        upper: step.upper.to_path_buf(),
        work: step.work.to_path_buf(),
    });
    let report = vclab_container::run(&cfg)?;
    if report.exit_code != 0 {
        return Err(Error::Failed {
            code: report.exit_code,
            signal: report
                .signal
                .map(|s| format!(" (signal {s})"))
                .unwrap_or_default(),
        });
    }
    Ok(())
}

static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The argv of a RUN, CMD or ENTRYPOINT command: the exec form as is, the
/// shell form through `/bin/sh -c`.
pub fn argv(cmd: &crate::containerfile::Command) -> Vec<String> {
    match cmd {
        crate::containerfile::Command::Exec(a) => a.clone(),
        crate::containerfile::Command::Shell(s) => {
            vec!["/bin/sh".into(), "-c".into(), s.clone()]
        }
    }
}
