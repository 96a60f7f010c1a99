//! Linux capabilities: names, Docker's default set, and dropping to a set.
//!
//! Dropping happens in two steps, as runc does: the bounding set first
//! (`prctl(PR_CAPBSET_DROP)`, which needs CAP_SETPCAP), then, after the uid
//! change, `capset` for the effective, permitted and inheritable sets.

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A capability name in the configuration is not known.
    #[error("unknown capability {0:?}: use a name such as CAP_CHOWN (see capabilities(7))")]
    Unknown(String),
    /// `prctl(PR_CAPBSET_DROP)` failed.
    #[error("cannot drop capability {cap} from the bounding set: {errno} (is CAP_SETPCAP held?)")]
    BoundingDrop {
        /// Capability number.
        cap: u32,
        /// The error from the kernel.
        errno: nix::errno::Errno,
    },
    /// `capset` failed.
    #[error("cannot set the capability sets with capset: {0}")]
    Capset(nix::errno::Errno),
}

/// Capability names by number (`capability.h`, Linux 6.x).
pub const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's default capability set.
pub const DOCKER_DEFAULT: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Podman's default capability set (containers.conf since Podman 4.0): Docker's without
/// `CAP_MKNOD`, `CAP_NET_RAW` and `CAP_AUDIT_WRITE`. The lab's launcher uses it for `--rootfs` runs:
/// without `CAP_MKNOD` a container cannot make a block device node (Docker keeps the capability and
/// relies on a devices cgroup, which a lean container does not get), and without `CAP_NET_RAW` it
/// cannot open raw sockets.
pub const PODMAN_DEFAULT: [&str; 11] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// A set of capabilities as a bit mask (bit N = capability number N).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct CapSet(pub u64);

impl CapSet {
    /// Docker's default set.
    pub fn docker_default() -> Self {
        // The names are constants from NAMES, so this cannot fail.
        Self::from_names(DOCKER_DEFAULT).unwrap_or_default()
    }

    /// The launcher's default set for `--rootfs` runs: Podman's ([`PODMAN_DEFAULT`]).
    pub fn lab_default() -> Self {
        // The names are constants from NAMES, so this cannot fail.
        Self::from_names(PODMAN_DEFAULT).unwrap_or_default()
    }

    /// Builds a set from names such as `CAP_CHOWN` (the `CAP_` prefix is
    /// optional, case-insensitive).
    pub fn from_names<I, S>(names: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut mask = 0u64;
        for name in names {
            let upper = name.as_ref().to_ascii_uppercase();
            let full = if upper.starts_with("CAP_") {
                upper
            } else {
                format!("CAP_{upper}")
            };
            let bit = NAMES
                .iter()
                .position(|n| *n == full)
                .ok_or_else(|| Error::Unknown(name.as_ref().to_string()))?;
            mask |= 1 << bit;
        }
        Ok(CapSet(mask))
    }

    /// Whether capability number `cap` is in the set.
    pub fn contains(self, cap: u32) -> bool {
        cap < 64 && self.0 & (1 << cap) != 0
    }

    /// The names in the set, by number.
    pub fn names(self) -> Vec<&'static str> {
        (0..NAMES.len() as u32)
            .filter(|c| self.contains(*c))
            .map(|c| NAMES[c as usize])
            .collect()
    }
}

/// Removes every capability outside `keep` from the bounding set. Numbers the
/// kernel does not know (EINVAL) end the loop.
pub fn drop_bounding(keep: CapSet) -> Result<(), Error> {
    for cap in 0..64u32 {
        if keep.contains(cap) {
            continue;
        }
        // SAFETY: PR_CAPBSET_DROP takes a capability number and no pointers.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if rc != 0 {
            match nix::errno::Errno::last() {
                nix::errno::Errno::EINVAL => break,
                errno => return Err(Error::BoundingDrop { cap, errno }),
            }
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

/// Sets the effective, permitted and inheritable sets of this thread to
/// `set` (`effective` may be smaller, e.g. empty for a non-root user).
pub fn set_caps(set: CapSet, effective: CapSet) -> Result<(), Error> {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let e = effective.0 & set.0;
    let data = [
        CapData {
            effective: e as u32,
            permitted: set.0 as u32,
            inheritable: set.0 as u32,
        },
        CapData {
            effective: (e >> 32) as u32,
            permitted: (set.0 >> 32) as u32,
            inheritable: (set.0 >> 32) as u32,
        },
    ];
    // SAFETY: header and data are valid, correctly laid out (#[repr(C)],
    // version 3 takes two CapData) and live across the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(Error::Capset(nix::errno::Errno::last()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_default_has_fourteen_caps() {
        let set = CapSet::docker_default();
        assert_eq!(set.0.count_ones(), 14);
        assert!(set.contains(0)); // CHOWN
        assert!(set.contains(8)); // SETPCAP
        assert!(!set.contains(21)); // SYS_ADMIN
        assert!(!set.contains(12)); // NET_ADMIN
        assert_eq!(set.names().len(), 14);
    }

    #[test]
    fn lab_default_is_podmans_without_mknod_or_net_raw() {
        let set = CapSet::lab_default();
        assert_eq!(set.0.count_ones(), 11);
        assert!(!set.contains(27)); // MKNOD
        assert!(!set.contains(13)); // NET_RAW
        assert!(!set.contains(29)); // AUDIT_WRITE
        assert_eq!(set.0 & !CapSet::docker_default().0, 0);
    }

    #[test]
    fn names_map_to_bits() {
        assert_eq!(CapSet::from_names(["CAP_KILL"]).unwrap(), CapSet(1 << 5));
        assert_eq!(
            CapSet::from_names(["net_raw", "CAP_SYS_ADMIN"]).unwrap(),
            CapSet((1 << 13) | (1 << 21))
        );
        assert_eq!(
            CapSet::from_names(["CAP_CHECKPOINT_RESTORE"]).unwrap(),
            CapSet(1 << 40)
        );
        assert!(matches!(
            CapSet::from_names(["CAP_FLY"]),
            Err(Error::Unknown(n)) if n == "CAP_FLY"
        ));
    }
}
