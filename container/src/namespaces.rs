//! The namespaces a container gets, in the order they are created.
//!
//! The user namespace (rootless only) must come first in the `clone` so that
//! it owns the others. The cgroup namespace is unshared later, by the child,
//! after the parent has placed it in its cgroup: its root is then the
//! container's own cgroup.

use nix::sched::CloneFlags;

/// One kind of Linux namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Namespace {
    /// User IDs (rootless mode).
    User,
    /// Process IDs: the container's first process is PID 1.
    Pid,
    /// Mount table.
    Mount,
    /// Host and domain name.
    Uts,
    /// System V IPC and POSIX message queues.
    Ipc,
    /// Network stack (only loopback, brought up).
    Network,
    /// cgroup view.
    Cgroup,
}

impl Namespace {
    /// The `clone`/`unshare` flag of this namespace.
    pub fn flag(self) -> CloneFlags {
        match self {
            Namespace::User => CloneFlags::CLONE_NEWUSER,
            Namespace::Pid => CloneFlags::CLONE_NEWPID,
            Namespace::Mount => CloneFlags::CLONE_NEWNS,
            Namespace::Uts => CloneFlags::CLONE_NEWUTS,
            Namespace::Ipc => CloneFlags::CLONE_NEWIPC,
            Namespace::Network => CloneFlags::CLONE_NEWNET,
            Namespace::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        }
    }
}

/// The namespaces of a default container (everything but `user`).
pub const DEFAULT: [Namespace; 6] = [
    Namespace::Pid,
    Namespace::Mount,
    Namespace::Uts,
    Namespace::Ipc,
    Namespace::Network,
    Namespace::Cgroup,
];

/// How the namespaces are created: flags for the `clone` that starts the
/// container, then flags the child unshares once it sits in its cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamespacePlan {
    /// Passed to `clone`.
    pub clone: CloneFlags,
    /// Unshared by the child after the cgroup placement.
    pub unshare_after_cgroup: CloneFlags,
}

/// Orders `wanted` (plus `user` when `rootless`) into a [`NamespacePlan`].
pub fn plan(wanted: &[Namespace], rootless: bool) -> NamespacePlan {
    let mut clone = CloneFlags::empty();
    let mut later = CloneFlags::empty();
    if rootless {
        clone |= CloneFlags::CLONE_NEWUSER;
    }
    for ns in wanted {
        match ns {
            Namespace::Cgroup => later |= ns.flag(),
            other => clone |= other.flag(),
        }
    }
    NamespacePlan {
        clone,
        unshare_after_cgroup: later,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_namespace_comes_after_placement() {
        let p = plan(&DEFAULT, false);
        assert!(p
            .clone
            .contains(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS));
        assert!(p
            .clone
            .contains(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWIPC));
        assert!(p.clone.contains(CloneFlags::CLONE_NEWUTS));
        assert!(!p.clone.contains(CloneFlags::CLONE_NEWCGROUP));
        assert!(!p.clone.contains(CloneFlags::CLONE_NEWUSER));
        assert_eq!(p.unshare_after_cgroup, CloneFlags::CLONE_NEWCGROUP);
    }

    #[test]
    fn rootless_adds_user_namespace_to_clone() {
        let p = plan(&[Namespace::Pid, Namespace::Mount], true);
        assert_eq!(
            p.clone,
            CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS
        );
        assert!(p.unshare_after_cgroup.is_empty());
    }
}
