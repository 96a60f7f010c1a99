//! cgroup v1, v2 and hybrid support.

use std::path::Path;

/// How the host mounts its cgroup hierarchies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CgroupMode {
    /// Pure cgroup v2 (unified hierarchy at the cgroup root).
    V2,
    /// Only v1 controller hierarchies.
    V1,
    /// v1 controllers plus a cgroup2 mount (usually `/sys/fs/cgroup/unified`).
    Hybrid,
    /// No cgroup file system found.
    None,
}

impl CgroupMode {
    /// Probes the running host from `/proc/self/mounts`.
    pub fn detect() -> Self {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        Self::from_mounts(&mounts, Path::new("/sys/fs/cgroup"))
    }

    /// Decides the mode from the text of a mounts table; `root` is the cgroup
    /// mount root (normally `/sys/fs/cgroup`).
    pub fn from_mounts(mounts: &str, root: &Path) -> Self {
        let root = root.to_string_lossy();
        let mut v1 = false;
        let mut v2_at_root = false;
        let mut v2_elsewhere = false;
        for line in mounts.lines() {
            let mut fields = line.split_whitespace();
            let (_, Some(target), Some(fstype)) = (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            match fstype {
                "cgroup" => v1 = true,
                "cgroup2" if target == root => v2_at_root = true,
                "cgroup2" => v2_elsewhere = true,
                _ => {}
            }
        }
        match (v1, v2_at_root || v2_elsewhere) {
            (false, true) if v2_at_root => CgroupMode::V2,
            (true, true) => CgroupMode::Hybrid,
            (true, false) => CgroupMode::V1,
            (false, true) => CgroupMode::V2,
            (false, false) => CgroupMode::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_from_mounts() {
        let root = Path::new("/sys/fs/cgroup");
        let v2 = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n";
        assert_eq!(CgroupMode::from_mounts(v2, root), CgroupMode::V2);
        let hybrid = "tmpfs /sys/fs/cgroup tmpfs ro 0 0\n\
                      cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n\
                      cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n";
        assert_eq!(CgroupMode::from_mounts(hybrid, root), CgroupMode::Hybrid);
        let v1 = "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n";
        assert_eq!(CgroupMode::from_mounts(v1, root), CgroupMode::V1);
        assert_eq!(CgroupMode::from_mounts("", root), CgroupMode::None);
    }
}
