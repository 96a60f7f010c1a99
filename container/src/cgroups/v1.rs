//! cgroup v1 (and the v1 side of hybrid hosts): one directory per controller
//! hierarchy, each below the launcher's own cgroup in that hierarchy.

use std::path::{Path, PathBuf};

use super::{below, own_path, read_key, read_u64, write_file, Error, Limits, Usage};

/// The v1 controllers a container uses.
pub const CONTROLLERS: [&str; 4] = ["memory", "cpu", "cpuacct", "pids"];

/// The shared accounting cgroup of lean containers (below the launcher's
/// own memory cgroup): `vclab`.
pub const SHARED: &str = "vclab";

/// A container's v1 cgroup: one directory per controller (co-mounted
/// controllers such as `cpu,cpuacct` share one). A lean container
/// ([`Cgroup::create_lean`]) has directories of its own only in the
/// controllers it has a limit in, and is accounted in the [`SHARED`] memory
/// cgroup otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cgroup {
    /// `memory` directory.
    pub memory: Option<PathBuf>,
    /// `cpu` directory.
    pub cpu: Option<PathBuf>,
    /// `cpuacct` directory.
    pub cpuacct: Option<PathBuf>,
    /// `pids` directory.
    pub pids: Option<PathBuf>,
    /// The shared memory cgroup ([`SHARED`]) the container is accounted in
    /// when it has no memory directory of its own: joined, never listed in
    /// [`Cgroup::dirs`], removed (best effort) by the last one to leave.
    pub shared: Option<PathBuf>,
}

/// Finds the mount point of each v1 hierarchy in the text of
/// `/proc/self/mounts`: (mount point, controllers in its options).
pub fn hierarchies(mounts: &str) -> Vec<(PathBuf, Vec<String>)> {
    mounts
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() >= 4 && f[2] == "cgroup").then(|| {
                let ctrls = f[3]
                    .split(',')
                    .filter(|o| CONTROLLERS.contains(o))
                    .map(str::to_string)
                    .collect();
                (PathBuf::from(f[1]), ctrls)
            })
        })
        .collect()
}

impl Cgroup {
    /// Plans the directories (`name` below the launcher's cgroup in each
    /// hierarchy) from the texts of `/proc/self/mounts` and
    /// `/proc/self/cgroup`, without touching the file system.
    pub fn plan(mounts: &str, proc_cgroup: &str, name: &str) -> Self {
        let hier = hierarchies(mounts);
        let dir_of = |ctrl: &str| -> Option<PathBuf> {
            let (mount, _) = hier.iter().find(|(_, c)| c.iter().any(|x| x == ctrl))?;
            let own = own_path(proc_cgroup, ctrl)?;
            Some(below(mount, own, name))
        };
        Cgroup {
            memory: dir_of("memory"),
            cpu: dir_of("cpu"),
            cpuacct: dir_of("cpuacct"),
            pids: dir_of("pids"),
            shared: None,
        }
    }

    /// Plans a lean container's cgroup: directories of its own only in the
    /// controllers `limits` needs (memory for `--memory`, cpu for `--cpus`,
    /// pids for `--pids`); without a memory limit it is accounted in the
    /// shared memory cgroup ([`SHARED`]). Every memory cgroup costs the
    /// kernel a shrinker map sized by every memcg-aware shrinker on the host
    /// (one per superblock: ~10 per container), about 0.7 MiB each once a few
    /// thousand containers have run, so one per container does not scale.
    pub fn plan_lean(mounts: &str, proc_cgroup: &str, name: &str, limits: &Limits) -> Self {
        let full = Self::plan(mounts, proc_cgroup, name);
        let shared = if limits.memory_bytes.is_none() {
            full.memory
                .as_deref()
                .and_then(Path::parent)
                .map(|p| p.join(SHARED))
        } else {
            None
        };
        Cgroup {
            memory: full.memory.filter(|_| limits.memory_bytes.is_some()),
            cpu: full.cpu.clone().filter(|_| limits.cpu_quota_us.is_some()),
            cpuacct: full
                .cpuacct
                .filter(|d| limits.cpu_quota_us.is_some() && full.cpu.as_ref() == Some(d)),
            pids: full.pids.filter(|_| limits.pids.is_some()),
            shared,
        }
    }

    /// Plans ([`Cgroup::plan_lean`]) and creates the directories; the shared
    /// one is made when missing.
    pub fn create_lean(
        mounts: &str,
        proc_cgroup: &str,
        name: &str,
        limits: &Limits,
    ) -> Result<Self, Error> {
        let cg = Self::plan_lean(mounts, proc_cgroup, name, limits);
        cg.make_dirs()?;
        if let Some(shared) = &cg.shared {
            make_shared(shared).inspect_err(|_| {
                let _ = cg.remove();
            })?;
        }
        Ok(cg)
    }

    /// Plans and creates the directories.
    pub fn create(mounts: &str, proc_cgroup: &str, name: &str) -> Result<Self, Error> {
        let cg = Self::plan(mounts, proc_cgroup, name);
        cg.make_dirs()?;
        Ok(cg)
    }

    fn make_dirs(&self) -> Result<(), Error> {
        for dir in self.dirs() {
            if let Err(source) = std::fs::create_dir(&dir) {
                let _ = self.remove();
                return Err(Error::Create { path: dir, source });
            }
        }
        Ok(())
    }

    /// The distinct directories.
    pub fn dirs(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::with_capacity(4);
        for d in [&self.memory, &self.cpu, &self.cpuacct, &self.pids]
            .into_iter()
            .flatten()
        {
            if !out.contains(d) {
                out.push(d.clone());
            }
        }
        out
    }

    /// Writes the limits.
    pub fn apply(&self, limits: &Limits) -> Result<(), Error> {
        if let Some(bytes) = limits.memory_bytes {
            let dir = need(&self.memory, "memory", "--memory")?;
            write_memory(dir, bytes)?;
        }
        if let Some(quota) = limits.cpu_quota_us {
            let dir = need(&self.cpu, "cpu", "--cpus")?;
            write_cpu(dir, quota, limits.cpu_period_us)?;
        }
        if let Some(max) = limits.pids {
            let dir = need(&self.pids, "pids", "--pids")?;
            write_file(dir, "pids.max", &max.to_string())?;
        }
        Ok(())
    }

    /// Moves `pid` into every directory.
    pub fn add(&self, pid: i32) -> Result<(), Error> {
        let text = pid.to_string();
        for dir in self.dirs() {
            write_file(&dir, "cgroup.procs", &text)?;
        }
        if let Some(shared) = &self.shared {
            join_shared(shared, &text)?;
        }
        Ok(())
    }

    /// Reads the usage figures.
    pub fn usage(&self) -> Usage {
        let mem = self.memory.as_deref();
        Usage {
            memory_peak_bytes: mem.and_then(|d| read_u64(d, "memory.max_usage_in_bytes")),
            cpu_usage_ns: self
                .cpuacct
                .as_deref()
                .and_then(|d| read_u64(d, "cpuacct.usage")),
            oom_killed: mem
                .and_then(|d| read_key(d, "memory.oom_control", "oom_kill"))
                .is_some_and(|n| n > 0),
        }
    }

    /// Removes every directory of its own, then the shared one if it is
    /// empty.
    pub fn remove(&self) -> Result<(), Error> {
        let r = super::remove_dirs(&self.dirs());
        if let Some(shared) = &self.shared {
            release_shared(shared);
        }
        r
    }
}

fn make_shared(dir: &Path) -> Result<(), Error> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(Error::Create {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Writes `pid` to the shared cgroup's `cgroup.procs`; if the last member's
/// clean-up removed the directory in between, makes it again (a few times).
fn join_shared(dir: &Path, pid: &str) -> Result<(), Error> {
    let mut tries = 0;
    loop {
        match write_file(dir, "cgroup.procs", pid) {
            Err(Error::Write { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && tries < 5 =>
            {
                tries += 1;
                make_shared(dir)?;
            }
            other => return other,
        }
    }
}

/// Removes the shared cgroup if no task is left in it (one try: EBUSY means
/// other containers still use it).
pub fn release_shared(dir: &Path) {
    let _ = std::fs::remove_dir(dir);
}

/// The shared memory cgroup below this process's own memory cgroup (where
/// a lean container created from here is accounted), from
/// `/proc/self/mounts` and `/proc/self/cgroup`.
pub fn shared_dir() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    Cgroup::plan(&mounts, &own, SHARED).memory
}

fn need<'a>(
    dir: &'a Option<PathBuf>,
    controller: &'static str,
    limit: &'static str,
) -> Result<&'a Path, Error> {
    dir.as_deref().ok_or(Error::Controller {
        controller,
        path: PathBuf::from("/sys/fs/cgroup"),
        limit,
    })
}

/// Sets the memory limit and, when swap accounting exists, the same
/// memory+swap limit so the container cannot swap past it.
pub fn write_memory(dir: &Path, bytes: u64) -> Result<(), Error> {
    let value = bytes.to_string();
    write_file(dir, "memory.limit_in_bytes", &value)?;
    if dir.join("memory.memsw.limit_in_bytes").exists() {
        write_file(dir, "memory.memsw.limit_in_bytes", &value)?;
    }
    Ok(())
}

/// Sets the CFS period, then the quota.
pub fn write_cpu(dir: &Path, quota_us: u64, period_us: u64) -> Result<(), Error> {
    write_file(dir, "cpu.cfs_period_us", &period_us.to_string())?;
    write_file(dir, "cpu.cfs_quota_us", &quota_us.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n\
        cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0\n\
        cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n\
        cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0\n\
        cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n";
    const OWN: &str = "4:memory:/process_api/abc\n3:pids:/\n2:cpu,cpuacct:/\n0::/\n";

    #[test]
    fn plan_uses_own_cgroup_per_hierarchy() {
        let cg = Cgroup::plan(MOUNTS, OWN, "vclab-t");
        assert_eq!(
            cg.memory.as_deref(),
            Some(Path::new("/sys/fs/cgroup/memory/process_api/abc/vclab-t"))
        );
        assert_eq!(
            cg.cpu.as_deref(),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct/vclab-t"))
        );
        assert_eq!(cg.cpu, cg.cpuacct);
        assert_eq!(cg.dirs().len(), 3, "co-mounted cpu,cpuacct counted once");
    }

    #[test]
    fn lean_plan_has_own_dirs_only_for_limits() {
        let none = Cgroup::plan_lean(MOUNTS, OWN, "vclab-t", &Limits::default());
        assert!(none.dirs().is_empty(), "no limit: no cgroup of its own");
        assert_eq!(
            none.shared.as_deref(),
            Some(Path::new("/sys/fs/cgroup/memory/process_api/abc/vclab"))
        );
        let limits = Limits {
            memory_bytes: Some(1 << 20),
            pids: Some(8),
            ..Default::default()
        };
        let some = Cgroup::plan_lean(MOUNTS, OWN, "vclab-t", &limits);
        assert_eq!(some.shared, None, "its own memory cgroup accounts it");
        assert_eq!(
            some.dirs(),
            [
                PathBuf::from("/sys/fs/cgroup/memory/process_api/abc/vclab-t"),
                PathBuf::from("/sys/fs/cgroup/pids/vclab-t")
            ]
        );
        let cpus = Limits {
            cpu_quota_us: Some(50_000),
            ..Default::default()
        };
        let cpu = Cgroup::plan_lean(MOUNTS, OWN, "vclab-t", &cpus);
        assert_eq!(
            cpu.dirs(),
            [PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/vclab-t")]
        );
    }

    #[test]
    fn lean_cgroup_shares_one_memory_cgroup() {
        let tmp = tempfile::tempdir().unwrap();
        let shared = tmp.path().join(SHARED);
        let cg = Cgroup {
            shared: Some(shared.clone()),
            ..Default::default()
        };
        make_shared(&shared).unwrap();
        make_shared(&shared).unwrap();
        // A plain directory takes the write as a file; the clean-up of the
        // last member removes it only when empty.
        cg.add(42).unwrap();
        assert_eq!(
            std::fs::read_to_string(shared.join("cgroup.procs")).unwrap(),
            "42"
        );
        cg.remove().unwrap();
        assert!(shared.exists(), "not empty: kept");
        std::fs::remove_file(shared.join("cgroup.procs")).unwrap();
        cg.remove().unwrap();
        assert!(!shared.exists());
    }

    fn fake_dir(files: &[&str]) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        for f in files {
            std::fs::write(tmp.path().join(f), "").unwrap();
        }
        tmp
    }

    #[test]
    fn limits_written_to_files() {
        let mem = fake_dir(&["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]);
        let cpu = fake_dir(&[]);
        let pids = fake_dir(&[]);
        let cg = Cgroup {
            memory: Some(mem.path().into()),
            cpu: Some(cpu.path().into()),
            cpuacct: Some(cpu.path().into()),
            pids: Some(pids.path().into()),
            shared: None,
        };
        let limits = Limits {
            memory_bytes: Some(16 << 20),
            cpu_quota_us: Some(50_000),
            cpu_period_us: 100_000,
            pids: Some(16),
        };
        cg.apply(&limits).unwrap();
        let read = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap();
        assert_eq!(read(mem.path(), "memory.limit_in_bytes"), "16777216");
        assert_eq!(read(mem.path(), "memory.memsw.limit_in_bytes"), "16777216");
        assert_eq!(read(cpu.path(), "cpu.cfs_quota_us"), "50000");
        assert_eq!(read(cpu.path(), "cpu.cfs_period_us"), "100000");
        assert_eq!(read(pids.path(), "pids.max"), "16");
    }

    #[test]
    fn memsw_skipped_without_swap_accounting() {
        let mem = fake_dir(&[]);
        write_memory(mem.path(), 1 << 20).unwrap();
        assert!(!mem.path().join("memory.memsw.limit_in_bytes").exists());
    }

    #[test]
    fn usage_read_from_files() {
        let mem = fake_dir(&[]);
        let acct = fake_dir(&[]);
        std::fs::write(mem.path().join("memory.max_usage_in_bytes"), "123456\n").unwrap();
        std::fs::write(
            mem.path().join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        )
        .unwrap();
        std::fs::write(acct.path().join("cpuacct.usage"), "987654321\n").unwrap();
        let cg = Cgroup {
            memory: Some(mem.path().into()),
            cpuacct: Some(acct.path().into()),
            ..Default::default()
        };
        let u = cg.usage();
        assert_eq!(u.memory_peak_bytes, Some(123456));
        assert_eq!(u.cpu_usage_ns, Some(987654321));
        assert!(u.oom_killed);
    }

    #[test]
    fn missing_controller_is_an_error() {
        let cg = Cgroup::default();
        let limits = Limits {
            pids: Some(4),
            ..Default::default()
        };
        assert!(matches!(
            cg.apply(&limits),
            Err(Error::Controller {
                controller: "pids",
                ..
            })
        ));
    }
}
