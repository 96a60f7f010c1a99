//! cgroup v1 (and the v1 side of hybrid hosts): one directory per controller
//! hierarchy, each below the launcher's own cgroup in that hierarchy.

use std::path::{Path, PathBuf};

use super::{below, own_path, read_key, read_u64, write_file, Error, Limits, Usage};

/// The v1 controllers a container uses.
pub const CONTROLLERS: [&str; 4] = ["memory", "cpu", "cpuacct", "pids"];

/// A container's v1 cgroup: one directory per controller (co-mounted
/// controllers such as `cpu,cpuacct` share one).
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
        }
    }

    /// Plans and creates the directories.
    pub fn create(mounts: &str, proc_cgroup: &str, name: &str) -> Result<Self, Error> {
        let cg = Self::plan(mounts, proc_cgroup, name);
        for dir in cg.dirs() {
            if let Err(source) = std::fs::create_dir(&dir) {
                let _ = cg.remove();
                return Err(Error::Create { path: dir, source });
            }
        }
        Ok(cg)
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
        let pid = pid.to_string();
        for dir in self.dirs() {
            write_file(&dir, "cgroup.procs", &pid)?;
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

    /// Removes every directory.
    pub fn remove(&self) -> Result<(), Error> {
        super::remove_dirs(&self.dirs())
    }
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
