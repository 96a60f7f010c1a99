//! The container launcher's report (`vclab-container --json`, DESIGN.md "CLI output") and the
//! cgroup names it carries, as the harness reads them.

/// How the container's first process got into its cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "kebab-case")
)]
pub enum Placement {
    /// Born in it: `clone3` with `CLONE_INTO_CGROUP` (cgroup v2), no migration.
    CloneInto,
    /// Cloned, then migrated by writing its pid to `cgroup.procs` (v1 and
    /// hybrid controllers, or v2 when the kernel refused `CLONE_INTO_CGROUP`).
    Migrated,
    /// No cgroup (rootless without delegation, no cgroup file system).
    #[default]
    None,
}

names!(Placement, "cgroup placement", {
    CloneInto => "clone-into",
    Migrated => "migrated",
    None => "none",
});

/// How the host mounts its cgroup hierarchies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "kebab-case")
)]
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
    /// Decides the mode from the text of a mounts table: v1 controller
    /// hierarchies, a cgroup2 mount, or both (hybrid).
    pub fn from_mounts(mounts: &str) -> Self {
        let (mut v1, mut v2) = (false, false);
        for line in mounts.lines() {
            match line.split_whitespace().nth(2) {
                Some("cgroup") => v1 = true,
                Some("cgroup2") => v2 = true,
                _ => {}
            }
        }
        match (v1, v2) {
            (true, true) => CgroupMode::Hybrid,
            (true, false) => CgroupMode::V1,
            (false, true) => CgroupMode::V2,
            (false, false) => CgroupMode::None,
        }
    }
}

names!(CgroupMode, "cgroup mode", {
    V2 => "v2",
    V1 => "v1",
    Hybrid => "hybrid",
    None => "none",
});

/// The outcome of a run: printed by `--json` as the last stdout line. The
/// fields are documented here; times are CLOCK_MONOTONIC nanoseconds, so
/// `exec_monotonic_ns - start_monotonic_ns` is the launcher's start-up, of
/// which `cgroup_attach_ns` is the cgroup migration.
#[cfg(feature = "alloc")]
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RunReport {
    /// Container id.
    pub id: alloc::string::String,
    /// Host cgroup mode used.
    pub cgroup_mode: CgroupMode,
    /// Rootless run.
    pub rootless: bool,
    /// CLOCK_MONOTONIC (ns) when `vclab_container::run` started.
    pub start_monotonic_ns: u64,
    /// CLOCK_MONOTONIC (ns) when the workload was exec'd.
    pub exec_monotonic_ns: u64,
    /// How the container got into its cgroup: `clone-into` (born in it,
    /// cgroup v2 `clone3` with `CLONE_INTO_CGROUP`), `migrated` (its pid
    /// written to `cgroup.procs` after the clone: v1/hybrid, or v2 when the
    /// kernel refused) or `none`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub cgroup_placement: Placement,
    /// Time the launcher spent migrating the container into its cgroup (the
    /// `cgroup.procs` writes of every controller), ns; 0 when it was born
    /// there or has no cgroup. The child builds its mounts meanwhile, so this
    /// delays the exec only where it outlasts them. The first v1 write waits
    /// for an RCU grace period (7–11 ms seen on the hybrid lab host).
    #[cfg_attr(feature = "serde", serde(default))]
    pub cgroup_attach_ns: u64,
    /// CLOCK_MONOTONIC (ns) when the container was reaped.
    pub exit_monotonic_ns: u64,
    /// Exit code (128+N for signal N).
    pub exit_code: i32,
    /// The signal that ended the workload.
    pub signal: Option<i32>,
    /// The OOM killer killed a task of the container.
    pub oom_killed: bool,
    /// Peak memory of the cgroup, bytes.
    pub memory_peak_bytes: Option<u64>,
    /// CPU time of the cgroup (user + system), ns.
    pub cpu_usage_ns: Option<u64>,
    /// The launcher's own peak RSS (VmHWM), KiB.
    pub launcher_peak_rss_kib: Option<u64>,
}

/// A container's status in the OCI state (runtime-spec `runtime.md`, "State"): `creating` while
/// `create` runs, `created` until `start`, `running`, then `stopped` once its process has exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "kebab-case")
)]
pub enum ContainerStatus {
    /// Being created (`create` has not finished).
    Creating,
    /// Created: its process waits for `start`.
    Created,
    /// Running the user's program.
    Running,
    /// Its process has exited; the state stays until `delete`.
    Stopped,
}

names!(ContainerStatus, "container status", {
    Creating => "creating",
    Created => "created",
    Running => "running",
    Stopped => "stopped",
});

/// The OCI state of one container, as `vclab-container state ID` prints it and hooks read it on
/// their stdin (runtime-spec `runtime.md`, "State"; `created` is runc's extra field).
#[cfg(feature = "alloc")]
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OciState {
    /// The runtime-spec version the state follows.
    #[cfg_attr(feature = "serde", serde(rename = "ociVersion"))]
    pub oci_version: alloc::string::String,
    /// Container id.
    pub id: alloc::string::String,
    /// Status.
    pub status: ContainerStatus,
    /// The container's first process on the host (0 once stopped, as runc).
    pub pid: i32,
    /// Absolute path of the bundle (with `--rootfs`: the rootfs directory).
    pub bundle: alloc::string::String,
    /// The bundle's annotations.
    #[cfg_attr(feature = "serde", serde(default))]
    pub annotations: alloc::collections::BTreeMap<alloc::string::String, alloc::string::String>,
    /// Creation time, RFC 3339 UTC.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub created: Option<alloc::string::String>,
}

/// The runtime-spec version [`OciState::oci_version`] names.
pub const OCI_VERSION: &str = "1.0.2";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_from_mounts() {
        let v2 = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n";
        assert_eq!(CgroupMode::from_mounts(v2), CgroupMode::V2);
        let hybrid = "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n\
                      cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n";
        assert_eq!(CgroupMode::from_mounts(hybrid), CgroupMode::Hybrid);
        let v1 = "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n";
        assert_eq!(CgroupMode::from_mounts(v1), CgroupMode::V1);
        assert_eq!(CgroupMode::from_mounts(""), CgroupMode::None);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_names_are_the_report_strings() {
        for m in CgroupMode::ALL {
            assert_eq!(serde_json::to_string(m).unwrap(), std::format!("\"{m}\""));
        }
        for p in Placement::ALL {
            assert_eq!(serde_json::to_string(p).unwrap(), std::format!("\"{p}\""));
        }
        for s in ContainerStatus::ALL {
            assert_eq!(serde_json::to_string(s).unwrap(), std::format!("\"{s}\""));
        }
    }

    #[cfg(all(feature = "serde", feature = "alloc"))]
    #[test]
    fn report_serialises_as_one_line() {
        let r = RunReport {
            id: "x".into(),
            cgroup_mode: CgroupMode::Hybrid,
            rootless: false,
            start_monotonic_ns: 1,
            exec_monotonic_ns: 2,
            cgroup_placement: Placement::Migrated,
            cgroup_attach_ns: 7_000_000,
            exit_monotonic_ns: 3,
            exit_code: 143,
            signal: Some(15),
            oom_killed: false,
            memory_peak_bytes: Some(4096),
            cpu_usage_ns: Some(10),
            launcher_peak_rss_kib: Some(1500),
        };
        let line = serde_json::to_string(&r).unwrap();
        assert!(!line.contains('\n'));
        assert!(line.contains("\"cgroup_mode\":\"hybrid\""));
        assert!(line.contains("\"cgroup_placement\":\"migrated\""));
        assert!(line.contains("\"cgroup_attach_ns\":7000000"));
        let back: RunReport = serde_json::from_str(&line).unwrap();
        assert_eq!(back, r);
        // Reports from before cgroup_placement and cgroup_attach_ns still parse.
        let old = line
            .replace(",\"cgroup_placement\":\"migrated\"", "")
            .replace(",\"cgroup_attach_ns\":7000000", "");
        let back: RunReport = serde_json::from_str(&old).unwrap();
        assert_eq!(back.cgroup_placement, Placement::None);
        assert_eq!(back.cgroup_attach_ns, 0);
    }
}
