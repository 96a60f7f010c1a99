//! The OCI runtime verbs after `create` ([`crate::create`]), with runc's
//! meaning, on the state entries under the state root ([`crate::state`]):
//! - [`start`]: a `created` container runs its program (its process was
//!   blocked opening `exec.fifo`); then the poststart hooks.
//! - [`state`]: the OCI state; `stopped` once its process has exited.
//! - [`kill`]: a signal to a `created` or `running` container's process.
//! - [`delete`]: a `stopped` (or `created`) container's cgroups and state go,
//!   then the poststop hooks; a `running` one only with `force` (killed first).
//! - [`list`]: every container; the entries of dead launchers (a SIGKILLed
//!   attached run, a `create` killed half-way) are swept first, so they are
//!   not listed. A created container whose process exited stays, `stopped`,
//!   until `delete` (as with runc).
//!
//! The container's process is identified by pid and start time, so a
//! recycled pid is never signalled.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::Signal;

use crate::hooks;
use crate::state::{self, ContainerStatus, Entry, OciState};

/// How long `start` waits for the container's process to take its FIFO.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `delete` waits for a killed container to exit.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of the lifecycle verbs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The state entry could not be read (or no container has the id).
    #[error(transparent)]
    State(#[from] state::Error),
    /// The verb does not apply in the container's status.
    #[error("container {id:?} is {status}: {hint}")]
    Status {
        /// The container.
        id: String,
        /// Its status.
        status: ContainerStatus,
        /// What the user can do.
        hint: &'static str,
    },
    /// An attached run's container: its launcher owns it.
    #[error("container {0:?} belongs to a launcher that still runs (an attached run): stop it with kill, or delete --force")]
    Attached(String),
    /// The FIFO of a created container could not be opened.
    #[error("cannot open {path}: {source}")]
    Fifo {
        /// The FIFO.
        path: std::path::PathBuf,
        /// The error.
        source: Errno,
    },
    /// The container's process exited before it started its program.
    #[error("container {0:?} exited before it started: see its stderr; delete it")]
    DiedBeforeStart(String),
    /// The container's process did not take its FIFO in time.
    #[error("container {0:?} did not start within 10 s: delete it and create it again")]
    StartTimeout(String),
    /// A signal could not be sent.
    #[error("cannot send {signal} to container {id:?} (pid {pid}): {source}")]
    Kill {
        /// The container.
        id: String,
        /// Its process.
        pid: i32,
        /// The signal.
        signal: Signal,
        /// The error.
        source: Errno,
    },
    /// A killed container did not exit.
    #[error("container {0:?} did not exit within 10 s of SIGKILL: see /proc/<pid>/stat")]
    KillTimeout(String),
    /// A cgroup could not be removed.
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::Error),
}

impl Error {
    /// The exit code: 1 for a missing container or a verb that does not
    /// apply (bad input, as runc), 125 for a failure of the launcher.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::State(state::Error::NotFound(_) | state::Error::InvalidId(_))
            | Error::Status { .. }
            | Error::Attached(_) => 1,
            _ => 125,
        }
    }
}

/// Opens the entry of `id`; an entry a dead launcher left (no container
/// behind it) is swept and reported as missing.
fn open(root: &Path, id: &str) -> Result<Entry, Error> {
    let e = Entry::open(root, id)?;
    if !e.container_owned() && !e.owner.is_empty() && !e.launcher_alive() {
        e.remove();
        return Err(state::Error::NotFound(id.to_string()).into());
    }
    Ok(e)
}

/// The OCI state of container `id`.
pub fn state(root: &Path, id: &str) -> Result<OciState, Error> {
    Ok(open(root, id)?.oci_state())
}

/// Every container under `root`, sorted by id, after sweeping the entries
/// of dead launchers.
pub fn list(root: &Path) -> Vec<OciState> {
    state::sweep_all(root);
    state::entries(root).iter().map(Entry::oci_state).collect()
}

/// Starts a created container: opens its FIFO for reading, which lets its
/// process through its blocking open; it writes one byte and execs. Then the
/// poststart hooks run (a failure is a warning).
pub fn start(root: &Path, id: &str) -> Result<(), Error> {
    use nix::fcntl::OFlag;
    let e = open(root, id)?;
    let status = e.status();
    if status != ContainerStatus::Created {
        return Err(Error::Status {
            id: id.to_string(),
            status,
            hint: "start works once, on a created container (create it first)",
        });
    }
    let Some(record) = e.record.clone() else {
        return Err(state::Error::NotFound(id.to_string()).into());
    };
    let path = e.dir.join(state::FIFO);
    let fifo = nix::fcntl::open(
        &path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|source| Error::Fifo {
        path: path.clone(),
        source,
    })?;
    // From here on the container counts as running (runc: no FIFO, alive).
    let _ = std::fs::remove_file(&path);
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let mut fds = [nix::poll::PollFd::new(
            fifo.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(20u16));
        let mut b = [0u8; 1];
        match nix::unistd::read(&fifo, &mut b) {
            Ok(1) => break,
            Ok(_) | Err(Errno::EAGAIN | Errno::EINTR) => {}
            Err(source) => return Err(Error::Fifo { path, source }),
        }
        if !record.init.alive() {
            return Err(Error::DiedBeforeStart(id.to_string()));
        }
        if Instant::now() > deadline {
            return Err(Error::StartTimeout(id.to_string()));
        }
    }
    let mut st = e.oci_state();
    st.status = ContainerStatus::Running;
    st.pid = record.init.pid;
    hooks::run_warn("poststart", &record.poststart, &st);
    Ok(())
}

/// A pidfd for the container's process, checked against its start time.
fn pidfd(e: &Entry) -> Option<(i32, OwnedFd)> {
    let init = e.init()?;
    // SAFETY: pidfd_open takes a pid and flags, no pointers.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, init.pid, 0) };
    if raw < 0 {
        return None;
    }
    // SAFETY: `raw` is a new descriptor owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    // Opened first, checked second: if the pid was recycled meanwhile, the
    // start time differs and the pidfd (of the newcomer) is not used.
    init.alive().then_some((init.pid, fd))
}

fn send(fd: &OwnedFd, sig: Signal) -> Result<(), Errno> {
    // SAFETY: pidfd_send_signal takes a pidfd, a signal number, a null
    // siginfo pointer (the kernel fills in a default one) and flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Sends `sig` to a created or running container's process.
pub fn kill(root: &Path, id: &str, sig: Signal) -> Result<(), Error> {
    let e = open(root, id)?;
    let status = e.status();
    let Some((pid, fd)) = pidfd(&e).filter(|_| status != ContainerStatus::Stopped) else {
        return Err(Error::Status {
            id: id.to_string(),
            status: ContainerStatus::Stopped,
            hint: "it is not running (delete it)",
        });
    };
    send(&fd, sig).map_err(|source| Error::Kill {
        id: id.to_string(),
        pid,
        signal: sig,
        source,
    })
}

/// Waits until the pidfd's process has exited (it may stay a zombie).
fn wait_exit(fd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let mut fds = [nix::poll::PollFd::new(
            fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        if let Ok(n) = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(50u16)) {
            if n > 0 {
                return true;
            }
        }
        if Instant::now() > deadline {
            return false;
        }
    }
}

/// Deletes a container: a `stopped` or `created` one (the latter is killed
/// first, as runc does), a `running` one only with `force` (SIGKILL, then
/// wait). Its cgroups (tasks killed first) and state directory are removed,
/// then the poststop hooks run. With `force` a missing container is no error.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<(), Error> {
    let e = match open(root, id) {
        Err(Error::State(state::Error::NotFound(_))) if force => return Ok(()),
        other => other?,
    };
    let status = e.status();
    if !e.container_owned() && e.launcher_alive() {
        // An attached run (or a create in progress): its launcher cleans up
        // once its container is gone.
        if !force {
            return Err(Error::Attached(id.to_string()));
        }
        if let Some((_, fd)) = pidfd(&e) {
            let _ = send(&fd, Signal::SIGKILL);
        }
        return Ok(());
    }
    if status == ContainerStatus::Running && !force {
        return Err(Error::Status {
            id: id.to_string(),
            status,
            hint: "stop it first (kill) or delete it with --force",
        });
    }
    if let Some((pid, fd)) = pidfd(&e) {
        send(&fd, Signal::SIGKILL).map_err(|source| Error::Kill {
            id: id.to_string(),
            pid,
            signal: Signal::SIGKILL,
            source,
        })?;
        if !wait_exit(&fd, KILL_TIMEOUT) {
            return Err(Error::KillTimeout(id.to_string()));
        }
    }
    let cgroups = e.cgroups();
    e.remove();
    // remove_entry ignores errors; say so if a cgroup is still there.
    crate::cgroups::remove_dirs(&cgroups)?;
    // A lean container was accounted in the shared memory cgroup: the last
    // one deleted removes it.
    if let Some(shared) = crate::cgroups::v1::shared_dir() {
        crate::cgroups::v1::release_shared(&shared);
    }
    if let Some(r) = &e.record {
        hooks::run_warn(
            "poststop",
            &r.poststop,
            &r.oci_state(ContainerStatus::Stopped),
        );
    }
    Ok(())
}

/// Parses a signal as `kill` takes it: a name with or without `SIG`, in any
/// case (`TERM`, `sigkill`), or a number.
pub fn parse_signal(text: &str) -> Option<Signal> {
    if let Ok(n) = text.parse::<i32>() {
        return Signal::try_from(n).ok();
    }
    let up = text.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse().ok()
}

/// The `list` table (runc's columns): ID, PID, STATUS, BUNDLE, CREATED, OWNER.
pub fn table(states: &[OciState], owners: &[String]) -> String {
    let mut rows = vec![[
        "ID".to_string(),
        "PID".into(),
        "STATUS".into(),
        "BUNDLE".into(),
        "CREATED".into(),
        "OWNER".into(),
    ]];
    for (s, owner) in states.iter().zip(owners) {
        rows.push([
            s.id.clone(),
            s.pid.to_string(),
            s.status.to_string(),
            s.bundle.clone(),
            s.created.clone().unwrap_or_default(),
            owner.clone(),
        ]);
    }
    let mut widths = [0usize; 6];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(widths).enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}   "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The user name of `uid` from /etc/passwd (no NSS), else the number.
pub fn user_name(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
        })
        .unwrap_or_else(|| uid.to_string())
}

/// The owner (creating uid) of each state, for the table.
pub fn owners(root: &Path, states: &[OciState]) -> Vec<String> {
    states
        .iter()
        .map(|s| {
            Entry::open(root, &s.id)
                .ok()
                .and_then(|e| e.record.map(|r| user_name(r.owner_uid)))
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("TERM"), Some(Signal::SIGTERM));
        assert_eq!(parse_signal("sigkill"), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("9"), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("Usr1"), Some(Signal::SIGUSR1));
        assert_eq!(parse_signal("NOPE"), None);
        assert_eq!(parse_signal("999"), None);
    }

    #[test]
    fn table_aligns_columns() {
        let st = OciState {
            oci_version: "1.0.2".into(),
            id: "abc".into(),
            status: ContainerStatus::Running,
            pid: 42,
            bundle: "/b".into(),
            annotations: Default::default(),
            created: Some("2026-12-01T00:00:00.000000000Z".into()),
        };
        let t = table(&[st], &["root".into()]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("ID    PID   STATUS"), "{t}");
        assert!(lines[1].starts_with("abc   42    running"), "{t}");
        assert!(lines[1].ends_with("root"), "{t}");
        assert_eq!(user_name(0), "root");
    }

    #[test]
    fn missing_containers_are_bad_input() {
        let tmp = tempfile::tempdir().unwrap();
        let e = state(tmp.path(), "nope").unwrap_err();
        assert_eq!(e.exit_code(), 1, "{e}");
        assert!(e.to_string().contains("does not exist"), "{e}");
        delete(tmp.path(), "nope", true).unwrap();
        assert_eq!(
            delete(tmp.path(), "nope", false).unwrap_err().exit_code(),
            1
        );
        assert!(list(tmp.path()).is_empty());
    }
}
