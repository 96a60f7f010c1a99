//! Per-run state under `/run/vclab/<id>/` (rootless: `$XDG_RUNTIME_DIR/vclab`
//! or `/tmp/vclab-<uid>`): a `pid` file (launcher pid and start time, then
//! the container's cgroup directories). In the container's mount namespace a
//! tmpfs covers the directory and holds the overlay's `upper`, `work` and
//! `root`, so the host never sees them. A launcher that
//! dies without cleaning up (SIGKILL) leaves this behind; the next run sweeps
//! entries whose launcher is gone.

use std::io;
use std::path::{Path, PathBuf};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The state directory could not be created or written.
    #[error("cannot prepare the state directory {path}: {source} (is it writable?)")]
    Create {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A container with this id is already running.
    #[error("a container with id {0:?} already exists: choose another id")]
    Exists(String),
}

/// The state root for this user.
pub fn state_root(rootless: bool) -> PathBuf {
    if !rootless {
        return PathBuf::from("/run/vclab");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => Path::new(&dir).join("vclab"),
        _ => PathBuf::from(format!("/tmp/vclab-{}", nix::unistd::geteuid())),
    }
}

/// One run's state directory; [`State::remove`] deletes it.
#[derive(Debug)]
pub struct State {
    /// `<root>/<id>`.
    pub dir: PathBuf,
}

fn create_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Create {
        path: path.to_path_buf(),
        source,
    }
}

impl State {
    /// Creates `<root>/<id>`. The overlay's `upper`, `work` and `root` are
    /// made later, by the child, on a tmpfs mounted over this directory in
    /// the container's own mount namespace.
    pub fn create(root: &Path, id: &str) -> Result<Self, Error> {
        let dir = root.join(id);
        if let Err(e) = std::fs::create_dir(&dir) {
            match e.kind() {
                io::ErrorKind::AlreadyExists => return Err(Error::Exists(id.to_string())),
                io::ErrorKind::NotFound => {
                    std::fs::create_dir_all(root).map_err(create_err(root))?;
                    std::fs::create_dir(&dir).map_err(create_err(&dir))?;
                }
                _ => return Err(create_err(&dir)(e)),
            }
        }
        Ok(State { dir })
    }

    /// Writes the `pid` file: the launcher's pid and start time on the first
    /// line, then the container's cgroup directories, one a line.
    pub fn write_owner(&self, cgroup_dirs: &[PathBuf]) -> Result<(), Error> {
        let me = std::process::id();
        let mut text = format!("{me} {}\n", start_time(me).unwrap_or(0));
        for d in cgroup_dirs {
            text.push_str(&d.to_string_lossy());
            text.push('\n');
        }
        let path = self.dir.join("pid");
        std::fs::write(&path, text).map_err(create_err(&path))
    }

    /// Deletes the directory tree.
    pub fn remove(&self) {
        remove_tree(&self.dir);
    }
}

/// Removes a state directory. overlayfs leaves `work/work` with mode 000,
/// which a non-root owner cannot list: open it up first.
fn remove_tree(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(
        dir.join("work/work"),
        std::fs::Permissions::from_mode(0o700),
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The start time (clock ticks since boot, field 22 of `/proc/<pid>/stat`).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Whether `pid` is a zombie (state `Z` in `/proc/<pid>/stat`).
fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let rest = &stat[stat.rfind(')')? + 2..];
            rest.chars().next()
        })
        == Some('Z')
}

/// Whether the launcher recorded in `pid_text` ("pid starttime") still runs.
fn owner_alive(pid_text: &str) -> bool {
    let mut f = pid_text.split_whitespace();
    let (Some(pid), start) = (f.next().and_then(|p| p.parse::<u32>().ok()), f.next()) else {
        return false;
    };
    // A zombie has exited: its parent may reap it late (PID 1 does on some hosts).
    if zombie(pid) {
        return false;
    }
    match (start_time(pid), start.and_then(|s| s.parse::<u64>().ok())) {
        (Some(now), Some(then)) => then == 0 || now == then,
        _ => false,
    }
}

/// An entry without a pid file older than this is a launcher killed between
/// `mkdir` and writing the file.
const ORPHAN_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes what dead launchers left under `root`: mounts below their
/// directory (detached), their cgroups (tasks killed first), their
/// directory. Returns the ids swept. Entries of live launchers, and fresh
/// entries without a pid file yet, are left alone.
pub fn sweep(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut swept = Vec::new();
    for entry in entries.flatten() {
        let dir = entry.path();
        let owner = match std::fs::read_to_string(dir.join("pid")) {
            Ok(text) => text,
            Err(_) => {
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > ORPHAN_AGE);
                if !old {
                    continue;
                }
                String::new()
            }
        };
        if owner_alive(owner.lines().next().unwrap_or("")) {
            continue;
        }
        remove_entry(&dir, &owner);
        swept.push(entry.file_name().to_string_lossy().into_owned());
    }
    swept
}

/// Removes one state entry whose owner is gone: mounts below `dir`
/// (detached), the cgroups listed after the first line of `owner` (the pid
/// file's text; tasks killed first), then the directory.
pub fn remove_entry(dir: &Path, owner: &str) {
    unmount_below(dir);
    for cg in owner.lines().skip(1).filter(|l| !l.is_empty()) {
        let cg = Path::new(cg);
        kill_tasks(cg);
        let _ = crate::cgroups::remove_dir(cg);
    }
    remove_tree(dir);
}

fn unmount_below(dir: &Path) {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    let mut targets: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|t| Path::new(t).starts_with(dir))
        .collect();
    targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
    for t in targets {
        let _ = nix::mount::umount2(t, nix::mount::MntFlags::MNT_DETACH);
    }
}

fn kill_tasks(cgroup: &Path) {
    let Ok(procs) = std::fs::read_to_string(cgroup.join("cgroup.procs")) else {
        return;
    };
    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_then_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let s = State::create(tmp.path(), "a1").unwrap();
        s.write_owner(&[PathBuf::from("/sys/fs/cgroup/pids/vclab-a1")])
            .unwrap();
        let text = std::fs::read_to_string(s.dir.join("pid")).unwrap();
        assert!(
            text.starts_with(&format!("{} ", std::process::id())),
            "{text}"
        );
        assert!(text.ends_with("\n/sys/fs/cgroup/pids/vclab-a1\n"), "{text}");
        assert!(matches!(
            State::create(tmp.path(), "a1"),
            Err(Error::Exists(_))
        ));
        s.remove();
        assert!(!tmp.path().join("a1").exists());
    }

    #[test]
    fn sweep_removes_dead_and_keeps_live() {
        let tmp = tempfile::tempdir().unwrap();
        let live = State::create(tmp.path(), "live").unwrap();
        live.write_owner(&[]).unwrap();
        let dead = tmp.path().join("dead");
        std::fs::create_dir_all(dead.join("upper")).unwrap();
        let gone_cg = tmp.path().join("fake-cgroup");
        std::fs::create_dir(&gone_cg).unwrap();
        // A pid that cannot exist (above pid_max).
        std::fs::write(
            dead.join("pid"),
            format!("99999999 5\n{}\n", gone_cg.display()),
        )
        .unwrap();
        let fresh = tmp.path().join("fresh");
        std::fs::create_dir(&fresh).unwrap();
        assert_eq!(sweep(tmp.path()), vec!["dead".to_string()]);
        assert!(!dead.exists());
        assert!(!gone_cg.exists());
        assert!(live.dir.exists());
        assert!(fresh.exists());
    }

    #[test]
    fn reused_pid_counts_as_dead() {
        let me = std::process::id();
        let start = start_time(me).unwrap();
        assert!(owner_alive(&format!("{me} {start}")));
        assert!(!owner_alive(&format!("{me} {}", start + 1)));
        assert!(!owner_alive("garbage"));
    }
}
