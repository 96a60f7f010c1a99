//! The jail's own cgroup, `vclab-jail-<id>`, below the VMM's own cgroup: one directory on a
//! cgroup v2 host, one per v1 controller (memory, pids) on a v1 or hybrid host (whose cgroup2
//! mount holds no controller worth a directory). Created before the jailed child runs the guest,
//! the child moved in by writing `cgroup.procs`, removed after it exited.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the cgroup hierarchies are mounted.
pub const ROOT: &str = "/sys/fs/cgroup";
/// The v1 controllers the jail gets a directory in (where mounted).
pub const V1_CONTROLLERS: [&str; 2] = ["memory", "pids"];
/// `statfs` magic of a cgroup2 mount (linux/magic.h).
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// Errors of the jail's cgroup, each naming the path.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// /proc/self/cgroup could not be read.
    #[error("cannot read /proc/self/cgroup: {0} (is /proc mounted?)")]
    Own(io::Error),
    /// The VMM's own cgroup of a hierarchy is not in /proc/self/cgroup.
    #[error("cannot find the VMM's own {0} cgroup in /proc/self/cgroup")]
    NotListed(String),
    /// A directory could not be created.
    #[error("cannot create cgroup {path}: {source} (is the hierarchy mounted and writable? run as root)")]
    Create {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// `cgroup.procs` could not be written.
    #[error("cannot move pid {pid} into cgroup {path}: {source}")]
    Add {
        /// The cgroup.
        path: PathBuf,
        /// The pid.
        pid: i32,
        /// The I/O error.
        source: io::Error,
    },
    /// A directory could not be removed.
    #[error(
        "cannot remove cgroup {path}: {source} (processes still inside? see its cgroup.procs)"
    )]
    Remove {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// Which hierarchies this host has at [`ROOT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A cgroup2 mount at the root.
    V2,
    /// v1 controllers (also hybrid: a controller-less cgroup2 at `unified`).
    V1,
}

/// The host's mode, from `statfs` of [`ROOT`].
pub fn mode() -> Mode {
    // SAFETY: statfs is plain data, filled by the call.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let path = c"/sys/fs/cgroup";
    // SAFETY: `path` is NUL-terminated and `st` writable for the call.
    let rc = unsafe { libc::statfs(path.as_ptr(), &mut st) };
    if rc == 0 && st.f_type as i64 == CGROUP2_SUPER_MAGIC {
        Mode::V2
    } else {
        Mode::V1
    }
}

/// The path of the `hierarchy` cgroup (`""` for v2, else a v1 controller name) in the text of
/// /proc/self/cgroup (`ID:CONTROLLERS:PATH` lines).
pub fn own_path(text: &str, hierarchy: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = if hierarchy.is_empty() {
            controllers.is_empty()
        } else {
            controllers.split(',').any(|c| c == hierarchy)
        };
        matches.then(|| path.to_string())
    })
}

/// The directories a cgroup named `name` gets on this host, below the VMM's own cgroups.
pub fn dirs(name: &str) -> Result<Vec<PathBuf>, Error> {
    let text = std::fs::read_to_string("/proc/self/cgroup").map_err(Error::Own)?;
    let below = |mount: PathBuf, own: String| mount.join(own.trim_start_matches('/')).join(name);
    match mode() {
        Mode::V2 => {
            let own = own_path(&text, "").ok_or_else(|| Error::NotListed("cgroup2".into()))?;
            Ok(vec![below(PathBuf::from(ROOT), own)])
        }
        Mode::V1 => {
            let mut out = Vec::new();
            for c in V1_CONTROLLERS {
                let mount = Path::new(ROOT).join(c);
                if !mount.join("cgroup.procs").exists() {
                    continue;
                }
                let own = own_path(&text, c).ok_or_else(|| Error::NotListed(c.to_string()))?;
                out.push(below(mount, own));
            }
            Ok(out)
        }
    }
}

/// Creates each directory (an existing one is reused).
pub fn create(dirs: &[PathBuf]) -> Result<(), Error> {
    for d in dirs {
        match std::fs::create_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(Error::Create {
                    path: d.clone(),
                    source,
                })
            }
        }
    }
    Ok(())
}

/// Moves `pid` into each directory.
pub fn add(dirs: &[PathBuf], pid: i32) -> Result<(), Error> {
    for d in dirs {
        std::fs::write(d.join("cgroup.procs"), pid.to_string()).map_err(|source| Error::Add {
            path: d.clone(),
            pid,
            source,
        })?;
    }
    Ok(())
}

/// Removes each directory that exists; a cgroup whose last task was just reaped can stay
/// busy for a moment, so EBUSY is retried for up to a second.
pub fn remove(dirs: &[PathBuf]) -> Result<(), Error> {
    let mut first = None;
    for d in dirs {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            match std::fs::remove_dir(d) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(source) => {
                    first.get_or_insert(Error::Remove {
                        path: d.clone(),
                        source,
                    });
                    break;
                }
            }
        }
    }
    first.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_paths_of_v1_v2_and_hybrid() {
        let hybrid = "12:pids:/process_api/a\n4:memory:/process_api/b\n3:cpu,cpuacct:/c\n0::/u\n";
        assert_eq!(
            own_path(hybrid, "memory").as_deref(),
            Some("/process_api/b")
        );
        assert_eq!(own_path(hybrid, "pids").as_deref(), Some("/process_api/a"));
        assert_eq!(own_path(hybrid, "cpuacct").as_deref(), Some("/c"));
        assert_eq!(own_path(hybrid, "").as_deref(), Some("/u"));
        assert_eq!(own_path("0::/x/y\n", "").as_deref(), Some("/x/y"));
        assert_eq!(own_path("0::/x/y\n", "memory"), None);
    }

    #[test]
    fn create_add_remove_in_a_directory() {
        // A plain directory stands in for a hierarchy: the calls only mkdir, write and rmdir.
        let tmp = tempfile::tempdir().unwrap();
        let d = vec![tmp.path().join("vclab-jail-test")];
        create(&d).unwrap();
        create(&d).unwrap();
        add(&d, 42).unwrap();
        assert_eq!(
            std::fs::read_to_string(d[0].join("cgroup.procs")).unwrap(),
            "42"
        );
        std::fs::remove_file(d[0].join("cgroup.procs")).unwrap();
        remove(&d).unwrap();
        assert!(!d[0].exists());
        remove(&d).unwrap();
    }
}
