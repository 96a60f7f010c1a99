//! cgroup v1, v2 and hybrid support: one `vclab-<id>` cgroup per container,
//! created below the launcher's own cgroup for each controller, limits
//! written before the container runs, usage read after it exits, removed at
//! the end. Hybrid hosts are treated as v1 for the controllers.
//!
//! On cgroup v2 the container is born in its cgroup (`clone3` with
//! `CLONE_INTO_CGROUP`, [`Cgroup::clone_into_fd`]); v1 controllers cannot do
//! that, so there the launcher migrates it by writing `cgroup.procs`
//! ([`Cgroup::add`]), which waits for an RCU grace period (7–11 ms measured for
//! the first write on the hybrid lab host).

pub mod v1;
pub mod v2;

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Errors of the cgroup module, each naming the file or directory.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A cgroup directory could not be created.
    #[error("cannot create cgroup {path}: {source} (is the controller mounted and writable?)")]
    Create {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A cgroup file could not be written.
    #[error("cannot write {value:?} to {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The I/O error.
        source: io::Error,
    },
    /// A cgroup directory could not be removed.
    #[error(
        "cannot remove cgroup {path}: {source} (processes still inside? see its cgroup.procs)"
    )]
    Remove {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A controller needed for a limit is not available.
    #[error("the {controller} cgroup controller is not available at {path}: cannot apply the {limit} limit (enable it in the parent's cgroup.subtree_control or drop the limit)")]
    Controller {
        /// Controller name.
        controller: &'static str,
        /// Where it was looked for.
        path: PathBuf,
        /// Which limit needed it.
        limit: &'static str,
    },
    /// The launcher's own cgroup could not be found in `/proc/self/cgroup`.
    #[error("cannot find the launcher's {0} cgroup in /proc/self/cgroup")]
    OwnCgroup(&'static str),
}

/// Resource limits for one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Memory limit in bytes (swap included: no swap on top).
    pub memory_bytes: Option<u64>,
    /// CFS quota in microseconds per `cpu_period_us`.
    pub cpu_quota_us: Option<u64>,
    /// CFS period in microseconds.
    pub cpu_period_us: u64,
    /// Maximum number of tasks.
    pub pids: Option<u64>,
}

/// What a container used, read from its cgroup after it exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    /// Peak memory in bytes (v1 `memory.max_usage_in_bytes`, v2 `memory.peak`
    /// or else `memory.current`).
    pub memory_peak_bytes: Option<u64>,
    /// CPU time in nanoseconds (v1 `cpuacct.usage`, v2 `cpu.stat usage_usec`).
    pub cpu_usage_ns: Option<u64>,
    /// Whether the OOM killer killed a task of the cgroup.
    pub oom_killed: bool,
}

/// Where the host's cgroup hierarchies are and which ones the launcher uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The mode: which writer ([`v1`] or [`v2`]) creates the cgroups.
    pub mode: CgroupMode,
    /// The root of the unified hierarchy the [`v2`] writer uses (normally
    /// `/sys/fs/cgroup`). The v1 controllers are found in `/proc/self/mounts`.
    pub v2_root: PathBuf,
}

impl Host {
    /// The running host as [`detect_mode`] sees it, with the unified
    /// hierarchy at `/sys/fs/cgroup`. A hybrid host stays hybrid: its v1
    /// controllers hold the limits.
    pub fn detect() -> Self {
        Host {
            mode: detect_mode(),
            v2_root: PathBuf::from(V2_ROOT),
        }
    }

    /// The [`v2`] writer on the cgroup2 hierarchy mounted at `root` (for
    /// instance a hybrid host's `/sys/fs/cgroup/unified`, which has no
    /// controllers but takes cgroups and `CLONE_INTO_CGROUP`).
    pub fn v2_at(root: impl Into<PathBuf>) -> Self {
        Host {
            mode: CgroupMode::V2,
            v2_root: root.into(),
        }
    }
}

/// Where a pure v2 host mounts its unified hierarchy.
pub const V2_ROOT: &str = "/sys/fs/cgroup";

/// How the container's first process got into its cgroup, and how the host
/// mounts its cgroup hierarchies (both named in [`crate::RunReport`]; defined
/// in `vclab-contract`).
pub use vclab_contract::{CgroupMode, Placement};

/// One container's cgroup, in whichever hierarchy the host uses.
#[derive(Debug)]
pub enum Cgroup {
    /// v1 (or hybrid) controllers.
    V1(v1::Cgroup),
    /// The unified hierarchy.
    V2(v2::Cgroup),
    /// No cgroup (rootless without delegation, or no cgroup file system).
    None,
}

impl Cgroup {
    /// Creates `vclab-<id>` under the launcher's own cgroup in the
    /// hierarchies `host` names and writes `limits`. On error, whatever was
    /// created is removed again.
    pub fn create(host: &Host, id: &str, limits: &Limits) -> Result<Self, Error> {
        Self::create_as(host, id, limits, false)
    }

    /// [`Cgroup::create`]; `lean` (v1 and hybrid controllers): directories
    /// of its own only in the controllers a limit needs, accounted in the
    /// shared memory cgroup otherwise ([`v1::Cgroup::plan_lean`]). A v2
    /// cgroup is always the container's own.
    pub fn create_as(host: &Host, id: &str, limits: &Limits, lean: bool) -> Result<Self, Error> {
        let name = format!("vclab-{id}");
        let own = || read_small("/proc/self/cgroup");
        let cg = match host.mode {
            CgroupMode::V1 | CgroupMode::Hybrid => {
                let mounts = read_small("/proc/self/mounts");
                Cgroup::V1(if lean {
                    v1::Cgroup::create_lean(&mounts, &own(), &name, limits)?
                } else {
                    v1::Cgroup::create(&mounts, &own(), &name)?
                })
            }
            CgroupMode::V2 => Cgroup::V2(v2::Cgroup::create(&host.v2_root, &own(), &name, limits)?),
            CgroupMode::None => return Ok(Cgroup::None),
        };
        let applied = match &cg {
            Cgroup::V1(c) => c.apply(limits),
            Cgroup::V2(c) => c.apply(limits),
            Cgroup::None => Ok(()),
        };
        if let Err(e) = applied {
            let _ = cg.remove();
            return Err(e);
        }
        Ok(cg)
    }

    /// A directory descriptor for `clone3`'s `CLONE_INTO_CGROUP`: only a v2
    /// cgroup can take a process at birth. `None` for v1 and hybrid
    /// controllers, no cgroup, or a directory that cannot be opened (the
    /// caller then migrates with [`Cgroup::add`], which reports the path).
    pub fn clone_into_fd(&self) -> Option<OwnedFd> {
        match self {
            Cgroup::V2(cg) => cg.open_dir().ok(),
            Cgroup::V1(_) | Cgroup::None => None,
        }
    }

    /// Moves process `pid` into the cgroup (all controllers).
    pub fn add(&self, pid: i32) -> Result<(), Error> {
        match self {
            Cgroup::V1(cg) => cg.add(pid),
            Cgroup::V2(cg) => cg.add(pid),
            Cgroup::None => Ok(()),
        }
    }

    /// Reads peak memory, CPU time and the OOM-kill flag.
    pub fn usage(&self) -> Usage {
        match self {
            Cgroup::V1(cg) => cg.usage(),
            Cgroup::V2(cg) => cg.usage(),
            Cgroup::None => Usage::default(),
        }
    }

    /// The directories of this cgroup (one per v1 hierarchy).
    pub fn dirs(&self) -> Vec<PathBuf> {
        match self {
            Cgroup::V1(cg) => cg.dirs(),
            Cgroup::V2(cg) => vec![cg.dir.clone()],
            Cgroup::None => Vec::new(),
        }
    }

    /// Removes the cgroup directories, waiting for their tasks to leave
    /// (and the shared accounting cgroup of a lean v1 container if it is
    /// empty).
    pub fn remove(&self) -> Result<(), Error> {
        match self {
            Cgroup::V1(cg) => cg.remove(),
            _ => remove_dirs(&self.dirs()),
        }
    }
}

/// Whether an unprivileged user may create cgroups here: a pure v2 host
/// whose cgroup of this process is writable by it (systemd's delegation).
/// v1 and hybrid hierarchies are never delegated.
pub fn delegated(host: &Host) -> bool {
    if host.mode != CgroupMode::V2 {
        return false;
    }
    let own = read_small("/proc/self/cgroup");
    let Some(path) = own_path(&own, "") else {
        return false;
    };
    let dir = host.v2_root.join(path.trim_start_matches('/'));
    nix::unistd::access(&dir, nix::unistd::AccessFlags::W_OK).is_ok()
}

/// Removes one cgroup directory, retrying while its last tasks exit (EBUSY),
/// for up to two seconds. A missing directory counts as removed.
pub fn remove_dir(dir: &Path) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut pause = Duration::from_micros(200);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(source) => {
                return Err(Error::Remove {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Removes every directory ([`remove_dir`]), also after a failure; returns
/// the first error.
pub(crate) fn remove_dirs(dirs: &[PathBuf]) -> Result<(), Error> {
    let mut first = Ok(());
    for dir in dirs {
        if let Err(e) = remove_dir(dir) {
            if first.is_ok() {
                first = Err(e);
            }
        }
    }
    first
}

/// Writes `value` to `dir/file`.
pub(crate) fn write_file(dir: &Path, file: &str, value: &str) -> Result<(), Error> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(|source| Error::Write {
        path,
        value: value.to_string(),
        source,
    })
}

/// Reads `dir/file` as one unsigned number.
pub(crate) fn read_u64(dir: &Path, file: &str) -> Option<u64> {
    std::fs::read_to_string(dir.join(file))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Reads the value of `key` in a flat-keyed file (`key value` lines).
pub(crate) fn read_key(dir: &Path, file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join(file)).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Reads a small proc file; an unreadable one reads as empty.
fn read_small(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Finds the launcher's cgroup path for `controller` in the text of
/// `/proc/self/cgroup` (`""` selects the v2 line `0::/path`).
pub fn own_path<'a>(proc_cgroup: &'a str, controller: &str) -> Option<&'a str> {
    proc_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = if controller.is_empty() {
            ctrls.is_empty()
        } else {
            ctrls.split(',').any(|c| c == controller)
        };
        hit.then_some(path)
    })
}

/// Joins a cgroup path (absolute, as in /proc/self/cgroup) below a mount.
pub(crate) fn below(mount: &Path, cgroup_path: &str, name: &str) -> PathBuf {
    mount.join(cgroup_path.trim_start_matches('/')).join(name)
}

/// Probes the running host's cgroup mode from `/proc/self/mounts`
/// ([`CgroupMode::from_mounts`]).
pub fn detect_mode() -> CgroupMode {
    CgroupMode::from_mounts(&read_small("/proc/self/mounts"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_path_finds_controllers() {
        let text = "9:name=systemd:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/x\n0::/u\n";
        assert_eq!(own_path(text, "memory"), Some("/process_api/abc"));
        assert_eq!(own_path(text, "cpuacct"), Some("/x"));
        assert_eq!(own_path(text, ""), Some("/u"));
        assert_eq!(own_path(text, "pids"), None);
    }

    #[test]
    fn remove_dir_tolerates_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("vclab-x");
        std::fs::create_dir(&d).unwrap();
        remove_dir(&d).unwrap();
        assert!(!d.exists());
        remove_dir(&d).unwrap();
    }

    #[test]
    fn only_v2_cgroups_take_a_process_at_birth() {
        let tmp = tempfile::tempdir().unwrap();
        let v2 = Cgroup::V2(v2::Cgroup {
            dir: tmp.path().into(),
        });
        assert!(v2.clone_into_fd().is_some());
        let gone = Cgroup::V2(v2::Cgroup {
            dir: tmp.path().join("missing"),
        });
        assert!(gone.clone_into_fd().is_none(), "falls back to a migration");
        let v1 = Cgroup::V1(v1::Cgroup {
            memory: Some(tmp.path().into()),
            ..Default::default()
        });
        assert!(v1.clone_into_fd().is_none());
        assert!(Cgroup::None.clone_into_fd().is_none());
    }

    #[test]
    fn v2_writer_at_any_root() {
        let tmp = tempfile::tempdir().unwrap();
        let host = Host::v2_at(tmp.path());
        let cg = Cgroup::create(&host, "t1", &Limits::default()).unwrap();
        let own = read_small("/proc/self/cgroup");
        let own = own_path(&own, "").unwrap_or("/");
        assert_eq!(cg.dirs(), [below(tmp.path(), own, "vclab-t1")]);
        assert!(cg.dirs()[0].is_dir());
        cg.remove().unwrap();
        assert!(!cg.dirs()[0].exists());
        assert_eq!(Host::detect().v2_root, Path::new(V2_ROOT));
    }

    #[test]
    fn placement_names() {
        let names = [
            (Placement::CloneInto, "\"clone-into\""),
            (Placement::Migrated, "\"migrated\""),
            (Placement::None, "\"none\""),
        ];
        for (p, name) in names {
            assert_eq!(serde_json::to_string(&p).unwrap(), name);
        }
    }

    #[test]
    fn modes_from_mounts() {
        let v2 = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n";
        assert_eq!(CgroupMode::from_mounts(v2), CgroupMode::V2);
        let hybrid = "tmpfs /sys/fs/cgroup tmpfs ro 0 0\n\
                      cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n\
                      cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n";
        assert_eq!(CgroupMode::from_mounts(hybrid), CgroupMode::Hybrid);
        let v1 = "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n";
        assert_eq!(CgroupMode::from_mounts(v1), CgroupMode::V1);
        assert_eq!(CgroupMode::from_mounts(""), CgroupMode::None);
    }
}
