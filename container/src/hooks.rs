//! The runtime spec's hooks (`config.json` `hooks`): each runs on the host,
//! in the launcher's namespaces, with the container's OCI state as JSON on
//! its stdin, its output on the launcher's stderr (stdout stays the
//! container's and the `--json` report's), and a timeout.
//!
//! When they run (runtime-spec `runtime.md`, "Lifecycle"):
//! - `createRuntime` (and the deprecated `prestart` before it): during
//!   `create`, once the container's namespaces exist and before its root is
//!   built. A failure fails the create: the container is killed and
//!   everything it had is removed (then `poststop` runs).
//! - `poststart`: after the user's program started (`start`, or an attached
//!   run once it exec'd); a failure is a warning.
//! - `poststop`: after the container was deleted (`delete`, or the end of an
//!   attached run); a failure is a warning.

use std::io::Write;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use crate::state::Hook;
use crate::state::OciState;

/// Seconds a hook may run when its `timeout` is not set.
pub const DEFAULT_TIMEOUT: u64 = 30;

/// Errors of a hook.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The hook could not be started.
    #[error("cannot run the {kind} hook {path}: {source} (is it an executable file at an absolute path?)")]
    Spawn {
        /// Which hook list.
        kind: &'static str,
        /// The program.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The hook exited unsuccessfully.
    #[error(
        "the {kind} hook {path} failed ({status}): fix the hook or remove it from config.json"
    )]
    Failed {
        /// Which hook list.
        kind: &'static str,
        /// The program.
        path: PathBuf,
        /// How it ended.
        status: std::process::ExitStatus,
    },
    /// The hook outlived its timeout and was killed.
    #[error(
        "the {kind} hook {path} did not finish within {secs} s and was killed (raise its timeout)"
    )]
    Timeout {
        /// Which hook list.
        kind: &'static str,
        /// The program.
        path: PathBuf,
        /// The timeout.
        secs: u64,
    },
}

/// The hook lists a container keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hooks {
    /// `prestart` (deprecated) then `createRuntime`.
    #[serde(default)]
    pub create_runtime: Vec<Hook>,
    /// `poststart`.
    #[serde(default)]
    pub poststart: Vec<Hook>,
    /// `poststop`.
    #[serde(default)]
    pub poststop: Vec<Hook>,
}

/// Runs `hooks` in order; the first failure stops the list and is returned.
pub fn run_all(kind: &'static str, hooks: &[Hook], state: &OciState) -> Result<(), Error> {
    if hooks.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_vec(state).unwrap_or_default();
    hooks.iter().try_for_each(|h| run_one(kind, h, &json))
}

/// Runs `hooks` in order, each whatever the others did; failures are
/// printed as warnings (poststart, poststop).
pub fn run_warn(kind: &'static str, hooks: &[Hook], state: &OciState) {
    if hooks.is_empty() {
        return;
    }
    let json = serde_json::to_vec(state).unwrap_or_default();
    for h in hooks {
        if let Err(e) = run_one(kind, h, &json) {
            eprintln!("vclab: warning: {e}");
        }
    }
}

fn run_one(kind: &'static str, hook: &Hook, state_json: &[u8]) -> Result<(), Error> {
    let path = hook.path.clone();
    let spawn_err = |source| Error::Spawn {
        kind,
        path: path.clone(),
        source,
    };
    let mut cmd = Command::new(&hook.path);
    if let Some((argv0, rest)) = hook.args.split_first() {
        use std::os::unix::process::CommandExt;
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in &hook.env {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let stderr = || -> std::io::Result<Stdio> {
        Ok(Stdio::from(std::io::stderr().as_fd().try_clone_to_owned()?))
    };
    cmd.stdin(Stdio::piped())
        .stdout(stderr().map_err(spawn_err)?)
        .stderr(stderr().map_err(spawn_err)?);
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin may have exited: EPIPE is fine.
        let _ = stdin.write_all(state_json);
    }
    let secs = hook.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut pause = Duration::from_micros(100);
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(Error::Failed { kind, path, status }),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(10));
            }
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Timeout { kind, path, secs });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ContainerStatus;

    fn state() -> OciState {
        OciState {
            oci_version: "1.0.2".into(),
            id: "h1".into(),
            status: ContainerStatus::Created,
            pid: 42,
            bundle: "/b".into(),
            annotations: Default::default(),
            created: None,
        }
    }

    fn sh(script: &str, timeout: Option<u64>) -> Hook {
        Hook {
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["OUT=x".into()],
            timeout,
        }
    }

    #[test]
    fn hooks_get_the_state_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("log");
        let l = log.display();
        let hooks = [
            sh(&format!("cat > {l}.json; echo one >> {l}"), None),
            sh(&format!("echo two $OUT >> {l}"), None),
        ];
        run_all("poststart", &hooks, &state()).unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "one\ntwo x\n");
        let json = std::fs::read_to_string(format!("{l}.json")).unwrap();
        let back: OciState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, state());
    }

    #[test]
    fn failure_stops_the_list() {
        let tmp = tempfile::tempdir().unwrap();
        let mark = tmp.path().join("ran");
        let hooks = [
            sh("exit 3", None),
            sh(&format!("touch {}", mark.display()), None),
        ];
        let e = run_all("createRuntime", &hooks, &state()).unwrap_err();
        assert!(matches!(e, Error::Failed { .. }), "{e}");
        assert!(e.to_string().contains("createRuntime"), "{e}");
        assert!(!mark.exists());
        run_warn("poststop", &hooks, &state());
        assert!(mark.exists(), "warn mode runs every hook");
    }

    #[test]
    fn slow_hook_is_killed() {
        let start = Instant::now();
        let e = run_all("createRuntime", &[sh("sleep 5", Some(1))], &state()).unwrap_err();
        assert!(matches!(e, Error::Timeout { secs: 1, .. }), "{e}");
        assert!(start.elapsed() < Duration::from_secs(3));
        let missing = Hook {
            path: "/nonexistent/hook".into(),
            ..Hook::default()
        };
        let e = run_all("poststart", &[missing], &state()).unwrap_err();
        assert!(matches!(e, Error::Spawn { .. }), "{e}");
    }
}
