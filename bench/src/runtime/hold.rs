//! Held instances: one idle instance of a row, launched and ready, kept
//! alive until told to stop (`vclab density`, the classroom demo).
//!
//! Most rows hold a [`Spawned`] (the runtime's own process stays: the
//! launcher, the VMM, the workload), waited on for the row's ready line
//! ([`hold_launch`]). The OCI peers and the vclab container are held *detached* ([`HeldDetached`]):
//! `run --detach` returns once the container runs, no runtime process is
//! kept (as runc and crun are used in production), the container is
//! registered with the harness's guard and deleted on stop.

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use vclab_contract::{Failure, FailureReport};

use super::{fail, spawn_failure, Launch};
use crate::compare::oci::Bundle;
use crate::spawn::guard::{self, Harness};
use crate::spawn::{tree, Spawned};

/// How long a held instance may take to stop after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// How one instance is held.
#[derive(Debug, Clone)]
pub struct HoldOptions {
    /// Give up on an instance that is not ready after this long.
    pub timeout: Duration,
    /// Guest RAM of a VM, MiB (`None`: the row's default).
    pub guest_mib: Option<u64>,
    /// A prefix that makes this harness's instance names unique
    /// (`density-<pid>`): container ids, cgroup names.
    pub name_prefix: String,
}

impl Default for HoldOptions {
    fn default() -> Self {
        HoldOptions {
            timeout: Duration::from_secs(20),
            guest_mib: None,
            name_prefix: format!("density-{}", std::process::id()),
        }
    }
}

/// Whether a held instance still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Its processes run (not a zombie, not stopped).
    Alive,
    /// It ended (or is a zombie, or stopped).
    Exited,
}

/// One held instance.
pub trait Held: Send {
    /// Launch to ready (the row's ready line reached the harness).
    fn ready_after(&self) -> Duration;

    /// The instance's first process on the host (the launcher, the VMM, the
    /// container's init for a detached OCI container).
    fn root_pid(&self) -> i32;

    /// Every process of the instance now (the root's tree).
    fn pids(&self) -> Vec<i32> {
        tree::tree(self.root_pid())
    }

    /// Whether it still runs.
    fn liveness(&mut self) -> Liveness;

    /// Asks the instance to stop without waiting (a teardown signals every
    /// instance first, then waits for each).
    fn begin_stop(&mut self);

    /// Stops the instance and removes what it made; returns how many of its
    /// processes had to be killed as leftovers.
    fn stop(self: Box<Self>) -> Result<u32, FailureReport>;
}

/// A row whose instance stays as a process of the harness: the launch, run
/// until its `ready` line appears.
pub fn hold_launch(
    launch: Launch,
    ready: &str,
    opts: &HoldOptions,
) -> Result<Box<dyn Held>, FailureReport> {
    let mut spawned = Spawned::spawn(&launch.spawn).map_err(spawn_failure)?;
    let ready_after = spawned
        .wait_for_line(ready, opts.timeout)
        .map_err(spawn_failure)?;
    Ok(Box::new(HeldProcess {
        spawned,
        ready_after,
        _files: launch.files,
    }))
}

/// An instance held as a [`Spawned`].
#[derive(Debug)]
pub struct HeldProcess {
    spawned: Spawned,
    ready_after: Duration,
    /// Files the instance runs from (a VMM config), removed after it.
    _files: Option<Bundle>,
}

impl Held for HeldProcess {
    fn ready_after(&self) -> Duration {
        self.ready_after
    }

    fn root_pid(&self) -> i32 {
        self.spawned.pid()
    }

    fn liveness(&mut self) -> Liveness {
        let _ = self.spawned.poll(Duration::ZERO);
        if self.spawned.exited() {
            return Liveness::Exited;
        }
        state_liveness(self.spawned.pid())
    }

    fn begin_stop(&mut self) {
        self.spawned.signal(Signal::SIGTERM);
    }

    fn stop(self: Box<Self>) -> Result<u32, FailureReport> {
        let o = self
            .spawned
            .stop(Signal::SIGTERM, STOP_GRACE)
            .map_err(spawn_failure)?;
        Ok(o.leftover)
    }
}

/// Alive unless `pid` is gone, a zombie or stopped.
fn state_liveness(pid: i32) -> Liveness {
    match tree::state(pid) {
        Some('Z' | 'X' | 'x' | 'T' | 't') | None => Liveness::Exited,
        _ => Liveness::Alive,
    }
}

/// What removes a detached container once its init is dead.
#[derive(Debug)]
enum Owner {
    /// An OCI bundle: its drop deletes the container (`delete -f`), removes
    /// its cgroups and unregisters it from the harness's guard.
    Bundle(Bundle),
    /// A detached vclab container: `BIN delete -f ID`, then forgotten by the
    /// harness's guard.
    Vclab {
        bin: PathBuf,
        id: String,
        harness: Option<Arc<Harness>>,
    },
}

impl Owner {
    fn remove(self) {
        match self {
            Owner::Bundle(b) => drop(b),
            Owner::Vclab { bin, id, harness } => {
                guard::delete_oci("vclab-container", &bin, &id);
                if let Some(h) = harness {
                    h.unregister_oci(&id);
                }
            }
        }
    }
}

/// A detached container (runc or crun `run --detach`, `vclab-container run
/// --detach`): no runtime process is kept; the container's init is a child
/// of this subreaper.
#[derive(Debug)]
pub struct HeldDetached {
    owner: Option<Owner>,
    pid: i32,
    ready_after: Duration,
}

/// Errors reading a detached container's start.
fn detach_fail(kind: Failure, what: impl Into<String>) -> FailureReport {
    fail(kind, what)
}

/// What a detached start printed.
struct Started {
    /// Launch → the ready line.
    ready_after: Duration,
    /// Everything read from the shared stdout (the runtime's and the container's).
    stdout: String,
}

/// Runs `argv` (a runtime's detached start) to its exit, its stdout, which
/// the container inherits, on a pipe read here until a line holding `ready`;
/// its stderr to `stderr_file`.
fn start_detached(
    argv: &[OsString],
    private_mount_ns: bool,
    stderr_file: &Path,
    ready: &str,
    timeout: Duration,
) -> Result<Started, FailureReport> {
    let setup = |what: &str, e: std::io::Error| {
        let kind = if e.raw_os_error() == Some(libc::EMFILE) {
            Failure::LaunchFailed
        } else {
            Failure::SetupFailed
        };
        detach_fail(kind, format!("{what}: {e}"))
    };
    let program = argv
        .first()
        .ok_or_else(|| detach_fail(Failure::SetupFailed, "nothing to run"))?;
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| setup("cannot make the container's stdout pipe", e.into()))?;
    let stderr = std::fs::File::create(stderr_file)
        .map_err(|e| setup(&format!("cannot create {}", stderr_file.display()), e))?;
    let mut cmd = Command::new(program);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::from(stderr));
    if private_mount_ns {
        crate::spawn::enter_private_mount_ns_on_spawn(&mut cmd);
    }
    let t0 = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| setup(&format!("cannot start {}", program.to_string_lossy()), e));
    // The write end went with `cmd`; the container holds its own copy.
    drop(cmd);
    let status = status?;
    if !status.success() {
        let err = std::fs::read_to_string(stderr_file).unwrap_or_default();
        return Err(detach_fail(
            Failure::LaunchFailed,
            format!(
                "{} (detached) failed ({status}): {}",
                program.to_string_lossy(),
                err.trim()
            ),
        ));
    }
    wait_line(&read_end, ready, t0, timeout)
}

/// Starts `bundle` detached: `BIN run --detach --pid-file F --bundle DIR ID`.
/// `private_mount_ns`: crun on a hybrid host.
pub fn hold_oci(
    bundle: Bundle,
    private_mount_ns: bool,
    ready: &str,
    opts: &HoldOptions,
) -> Result<Box<dyn Held>, FailureReport> {
    let mut argv = bundle.run_argv();
    if argv.len() < 2 {
        return Err(detach_fail(
            Failure::SetupFailed,
            "the bundle has no runtime",
        ));
    }
    let pid_file = bundle.dir().join("container.pid");
    let stderr_file = bundle.dir().join("runtime.stderr");
    let extra: [OsString; 3] = [
        "--detach".into(),
        "--pid-file".into(),
        pid_file.clone().into(),
    ];
    argv.splice(2..2, extra);
    // On an error `bundle` drops: the container is deleted.
    let started = start_detached(&argv, private_mount_ns, &stderr_file, ready, opts.timeout)?;
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| {
            detach_fail(
                Failure::LaunchFailed,
                format!("no pid in {}", pid_file.display()),
            )
        })?;
    Ok(Box::new(HeldDetached {
        owner: Some(Owner::Bundle(bundle)),
        pid,
        ready_after: started.ready_after,
    }))
}

/// Starts a vclab container detached: `BIN run --detach --json --id ID
/// ARGS...`; its pid comes from the OCI state it prints; `BIN delete -f ID`
/// removes it. It is recorded with the harness's guard first (one file), so a
/// SIGKILLed harness's guard deletes it too.
pub fn hold_vclab_detached(
    bin: &Path,
    id: &str,
    args: &[OsString],
    ready: &str,
    opts: &HoldOptions,
    harness: Option<Arc<Harness>>,
) -> Result<Box<dyn Held>, FailureReport> {
    if let Some(h) = &harness {
        h.register_oci("vclab-container", bin, id)
            .map_err(|e| fail(Failure::SetupFailed, e.to_string()))?;
    }
    // In the harness's state entry when there is one: its guard removes it also after a SIGKILL
    // of the harness mid-launch (a file in /tmp would stay).
    let stderr_dir = harness
        .as_ref()
        .map_or_else(std::env::temp_dir, |h| h.dir().to_path_buf());
    let owner = Owner::Vclab {
        bin: bin.to_path_buf(),
        id: id.to_string(),
        harness,
    };
    let mut argv: Vec<OsString> = vec![
        bin.into(),
        "run".into(),
        "--detach".into(),
        "--json".into(),
        "--id".into(),
        id.into(),
    ];
    argv.extend(args.iter().cloned());
    let stderr_file = stderr_dir.join(format!("vclab-{id}.stderr"));
    let started = start_detached(&argv, false, &stderr_file, ready, opts.timeout);
    let _ = std::fs::remove_file(&stderr_file);
    let started = match started {
        Ok(s) => s,
        Err(e) => {
            owner.remove();
            return Err(e);
        }
    };
    let pid = started.stdout.lines().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l.trim()).ok()?;
        v.get("pid")?.as_i64().and_then(|p| i32::try_from(p).ok())
    });
    let Some(pid) = pid.filter(|p| *p > 0) else {
        owner.remove();
        return Err(detach_fail(
            Failure::LaunchFailed,
            format!(
                "{} printed no OCI state with a pid: {}",
                bin.display(),
                started.stdout.trim()
            ),
        ));
    };
    Ok(Box::new(HeldDetached {
        owner: Some(owner),
        pid,
        ready_after: started.ready_after,
    }))
}

/// Reads `fd` until a line containing `marker` (then what else is there);
/// the time since `t0` and the text read.
fn wait_line(
    fd: &OwnedFd,
    marker: &str,
    t0: Instant,
    timeout: Duration,
) -> Result<Started, FailureReport> {
    let mut file = std::fs::File::from(fd.try_clone().map_err(|e| {
        detach_fail(
            Failure::LaunchFailed,
            format!("cannot read the container's stdout: {e}"),
        )
    })?);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let mut ready_after = None;
    loop {
        let left = timeout.saturating_sub(t0.elapsed());
        if left.is_zero() && ready_after.is_none() {
            return Err(detach_fail(
                Failure::Timeout,
                format!(
                    "the container printed no {marker:?} within {} s",
                    timeout.as_secs()
                ),
            ));
        }
        let mut pfd = [libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // Once the line is there, only what is already buffered is read.
        let ms = if ready_after.is_some() {
            0
        } else {
            left.as_millis().min(i32::MAX as u128) as i32
        };
        // SAFETY: `pfd` is a valid, writable array of one pollfd whose fd is open for the call.
        let r = unsafe { libc::poll(pfd.as_mut_ptr(), 1, ms) };
        if r <= 0 || pfd[0].revents & libc::POLLIN == 0 {
            if let Some(t) = ready_after {
                return Ok(Started {
                    ready_after: t,
                    stdout: String::from_utf8_lossy(&buf).into_owned(),
                });
            }
            if r > 0 {
                return Err(detach_fail(
                    Failure::LaunchFailed,
                    format!("the container closed its stdout before printing {marker:?}"),
                ));
            }
            continue;
        }
        let n = file.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            return match ready_after {
                Some(t) => Ok(Started {
                    ready_after: t,
                    stdout: String::from_utf8_lossy(&buf).into_owned(),
                }),
                None => Err(detach_fail(
                    Failure::LaunchFailed,
                    format!(
                        "the container closed its stdout before printing {marker:?}: {}",
                        String::from_utf8_lossy(&buf).trim()
                    ),
                )),
            };
        }
        buf.extend_from_slice(&chunk[..n]);
        if ready_after.is_none() && String::from_utf8_lossy(&buf).contains(marker) {
            ready_after = Some(t0.elapsed());
        }
    }
}

impl Held for HeldDetached {
    fn ready_after(&self) -> Duration {
        self.ready_after
    }

    fn root_pid(&self) -> i32 {
        self.pid
    }

    fn liveness(&mut self) -> Liveness {
        state_liveness(self.pid)
    }

    fn begin_stop(&mut self) {
        // The container's init is killed directly: `kill` through the runtime
        // would cost a runtime process per container; `delete -f` cleans the rest.
        let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
    }

    fn stop(mut self: Box<Self>) -> Result<u32, FailureReport> {
        self.begin_stop();
        reap(self.pid, STOP_GRACE);
        if let Some(o) = self.owner.take() {
            o.remove();
        }
        Ok(0)
    }
}

impl Drop for HeldDetached {
    fn drop(&mut self) {
        if let Some(o) = self.owner.take() {
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
            reap(self.pid, STOP_GRACE);
            o.remove();
        }
    }
}

/// Waits up to `wait` for `pid` to end and reaps it if it is a child of
/// this subreaper (a detached container's init is re-parented here).
fn reap(pid: i32, wait: Duration) {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let deadline = Instant::now() + wait;
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            // Reaped, or not our child (then init reaps it): done when it is gone.
            Ok(_) => return,
            Err(_) => {
                if tree::state(pid).is_none_or(|s| s == 'Z') {
                    return;
                }
            }
        }
        if Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Replaces the value after `flag` in `argv` (`-m 128` → `-m MIB`).
pub fn set_arg_after(argv: &mut [OsString], flag: &str, value: &str) -> bool {
    match argv.iter().position(|a| a == flag) {
        Some(i) if i + 1 < argv.len() => {
            argv[i + 1] = value.into();
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spawn::{Policy, SpawnSpec};

    fn launch(args: &[&str]) -> Launch {
        Launch {
            spawn: SpawnSpec {
                argv: args.iter().map(OsString::from).collect(),
                ..SpawnSpec::default()
            },
            policy: Policy::RunToExit,
            timeout: Duration::from_secs(10),
            files: None,
        }
    }

    #[test]
    fn holds_a_process_until_stopped() {
        let l = launch(&["sh", "-c", "echo '{\"ready\":true}'; exec sleep 30"]);
        let mut h = hold_launch(l, "\"ready\"", &HoldOptions::default()).unwrap();
        assert!(h.ready_after() < Duration::from_secs(10));
        assert_eq!(h.liveness(), Liveness::Alive);
        let pid = h.root_pid();
        assert_eq!(h.pids(), vec![pid]);
        h.begin_stop();
        assert_eq!(h.stop().unwrap(), 0);
        assert!(tree::state(pid).is_none(), "reaped");
    }

    #[test]
    fn an_instance_that_dies_is_seen() {
        let l = launch(&["sh", "-c", "echo ready; sleep 0.05; exit 3"]);
        let mut h = hold_launch(l, "ready", &HoldOptions::default()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert!(h.liveness() == Liveness::Exited);
        h.stop().unwrap();
    }

    #[test]
    fn a_slow_instance_is_a_timeout() {
        let l = launch(&["sleep", "30"]);
        let opts = HoldOptions {
            timeout: Duration::from_millis(200),
            ..HoldOptions::default()
        };
        let e = hold_launch(l, "ready", &opts).err().unwrap();
        assert_eq!(e.kind, Failure::Timeout);
    }

    #[test]
    fn replaces_a_flags_value() {
        let mut argv: Vec<OsString> = ["qemu", "-m", "128", "-x"].map(Into::into).to_vec();
        assert!(set_arg_after(&mut argv, "-m", "16"));
        assert_eq!(argv[2], "16");
        assert!(!set_arg_after(&mut argv, "-x", "1"));
        assert!(!set_arg_after(&mut argv, "--memory", "1"));
    }
}
