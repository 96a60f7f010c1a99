//! cgroup v2: one directory in the unified hierarchy below the launcher's own
//! cgroup. The parent's `cgroup.subtree_control` is read, never changed.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use super::{below, own_path, read_key, read_u64, write_file, Error, Limits, Usage};

/// A container's v2 cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    /// The cgroup directory.
    pub dir: PathBuf,
}

impl Cgroup {
    /// Creates `name` below the launcher's cgroup under `root` (normally
    /// `/sys/fs/cgroup`), after checking that the controllers the `limits`
    /// need are enabled for children there.
    pub fn create(
        root: &Path,
        proc_cgroup: &str,
        name: &str,
        limits: &Limits,
    ) -> Result<Self, Error> {
        let own = own_path(proc_cgroup, "").ok_or(Error::OwnCgroup("unified"))?;
        let dir = below(root, own, name);
        let parent = dir.parent().unwrap_or(root).to_path_buf();
        check_controllers(&parent, limits)?;
        std::fs::create_dir(&dir).map_err(|source| Error::Create {
            path: dir.clone(),
            source,
        })?;
        Ok(Cgroup { dir })
    }

    /// Writes the limits.
    pub fn apply(&self, limits: &Limits) -> Result<(), Error> {
        write_limits(&self.dir, limits)
    }

    /// Opens the directory (read-only, close-on-exec) for `clone3`'s
    /// `CLONE_INTO_CGROUP`.
    pub fn open_dir(&self) -> std::io::Result<OwnedFd> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&self.dir)?;
        Ok(dir.into())
    }

    /// Moves `pid` into the cgroup.
    pub fn add(&self, pid: i32) -> Result<(), Error> {
        write_file(&self.dir, "cgroup.procs", &pid.to_string())
    }

    /// Reads the usage figures.
    pub fn usage(&self) -> Usage {
        read_usage(&self.dir)
    }

    /// Removes the directory.
    pub fn remove(&self) -> Result<(), Error> {
        super::remove_dir(&self.dir)
    }
}

/// Checks that `parent/cgroup.subtree_control` enables every controller the
/// limits need.
pub fn check_controllers(parent: &Path, limits: &Limits) -> Result<(), Error> {
    let enabled =
        std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
    let has = |c: &str| enabled.split_whitespace().any(|x| x == c);
    let needs: [(bool, &'static str, &'static str); 3] = [
        (limits.memory_bytes.is_some(), "memory", "--memory"),
        (limits.cpu_quota_us.is_some(), "cpu", "--cpus"),
        (limits.pids.is_some(), "pids", "--pids"),
    ];
    for (wanted, controller, limit) in needs {
        if wanted && !has(controller) {
            return Err(Error::Controller {
                controller,
                path: parent.to_path_buf(),
                limit,
            });
        }
    }
    Ok(())
}

/// Writes `memory.max` (and `memory.swap.max` = 0 when present), `cpu.max`
/// and `pids.max`.
pub fn write_limits(dir: &Path, limits: &Limits) -> Result<(), Error> {
    if let Some(bytes) = limits.memory_bytes {
        write_file(dir, "memory.max", &bytes.to_string())?;
        if dir.join("memory.swap.max").exists() {
            write_file(dir, "memory.swap.max", "0")?;
        }
    }
    if let Some(quota) = limits.cpu_quota_us {
        write_file(dir, "cpu.max", &format!("{quota} {}", limits.cpu_period_us))?;
    }
    if let Some(max) = limits.pids {
        write_file(dir, "pids.max", &max.to_string())?;
    }
    Ok(())
}

/// Reads `memory.peak` (else `memory.current`), `cpu.stat usage_usec` and
/// `memory.events oom_kill`.
pub fn read_usage(dir: &Path) -> Usage {
    Usage {
        memory_peak_bytes: read_u64(dir, "memory.peak").or_else(|| read_u64(dir, "memory.current")),
        cpu_usage_ns: read_key(dir, "cpu.stat", "usage_usec").map(|us| us * 1000),
        oom_killed: read_key(dir, "memory.events", "oom_kill").is_some_and(|n| n > 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_written_to_files() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("memory.swap.max"), "max").unwrap();
        let limits = Limits {
            memory_bytes: Some(256 << 20),
            cpu_quota_us: Some(50_000),
            cpu_period_us: 100_000,
            pids: Some(16),
        };
        write_limits(tmp.path(), &limits).unwrap();
        let read = |f: &str| std::fs::read_to_string(tmp.path().join(f)).unwrap();
        assert_eq!(read("memory.max"), "268435456");
        assert_eq!(read("memory.swap.max"), "0");
        assert_eq!(read("cpu.max"), "50000 100000");
        assert_eq!(read("pids.max"), "16");
    }

    #[test]
    fn usage_prefers_peak_and_reads_oom() {
        let tmp = tempfile::tempdir().unwrap();
        let w = |f: &str, v: &str| std::fs::write(tmp.path().join(f), v).unwrap();
        w("memory.current", "100\n");
        w(
            "cpu.stat",
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
        );
        w("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
        let u = read_usage(tmp.path());
        assert_eq!(u.memory_peak_bytes, Some(100));
        assert_eq!(u.cpu_usage_ns, Some(1_500_000));
        assert!(u.oom_killed);
        w("memory.peak", "4096\n");
        w("memory.events", "oom 0\noom_kill 0\n");
        let u = read_usage(tmp.path());
        assert_eq!(u.memory_peak_bytes, Some(4096));
        assert!(!u.oom_killed);
    }

    #[test]
    fn undelegated_controller_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("cgroup.subtree_control"), "cpu pids\n").unwrap();
        let mut limits = Limits {
            cpu_quota_us: Some(1000),
            cpu_period_us: 100_000,
            pids: Some(3),
            ..Default::default()
        };
        check_controllers(tmp.path(), &limits).unwrap();
        limits.memory_bytes = Some(1 << 20);
        let err = check_controllers(tmp.path(), &limits).unwrap_err();
        assert!(err.to_string().contains("memory"), "{err}");
    }

    #[test]
    fn create_under_own_cgroup() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("user/a")).unwrap();
        let cg = Cgroup::create(tmp.path(), "0::/user/a\n", "vclab-z", &Limits::default()).unwrap();
        assert_eq!(cg.dir, tmp.path().join("user/a/vclab-z"));
        assert!(cg.dir.is_dir());
        cg.remove().unwrap();
        assert!(!cg.dir.exists());
    }
}
