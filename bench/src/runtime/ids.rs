//! The rows' names, defined once: every other part (summaries, course
//! table, plots, tests) uses [`RuntimeId`] or iterates [`RuntimeId::ALL`].
//! `results.json` stores the names, so they never change once published.

use serde::{Deserialize, Serialize};

/// What kind of runtime a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// The workload as a plain host process.
    Host,
    /// The lab's own container launcher.
    Container,
    /// An OCI runtime peer (runc, crun).
    OciPeer,
    /// The lab's own VMM.
    Vm,
    /// A peer VMM (QEMU, Firecracker, Cloud Hypervisor).
    PeerVmm,
}

impl Family {
    /// The family's name in tables.
    pub const fn as_str(self) -> &'static str {
        match self {
            Family::Host => "host",
            Family::Container => "container",
            Family::OciPeer => "oci-peer",
            Family::Vm => "vm",
            Family::PeerVmm => "peer-vmm",
        }
    }

    /// Whether the family's rows are containers (the host kernel is shared).
    pub const fn is_container(self) -> bool {
        matches!(self, Family::Container | Family::OciPeer)
    }

    /// Whether the family's rows are virtual machines.
    pub const fn is_vm(self) -> bool {
        matches!(self, Family::Vm | Family::PeerVmm)
    }
}

macro_rules! ids {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, $family:ident ;)+) => {
        /// One row of the comparison.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum RuntimeId {
            $( $(#[$doc])* #[serde(rename = $name)] $variant, )+
        }

        impl RuntimeId {
            /// Every row, in display order.
            pub const ALL: &'static [RuntimeId] = &[$(RuntimeId::$variant),+];

            /// The row's name (tables, `--only`, results.json).
            pub const fn name(self) -> &'static str {
                match self { $(RuntimeId::$variant => $name),+ }
            }

            /// The row's family.
            pub const fn family(self) -> Family {
                match self { $(RuntimeId::$variant => Family::$family),+ }
            }
        }
    };
}

ids! {
    /// The workload as a host process.
    Bare => "bare", Host;
    /// `vclab-container` over the cache rootfs.
    Container => "container", Container;
    /// `runc run` of an OCI bundle over the same rootfs.
    Runc => "runc", OciPeer;
    /// `crun run` of the same bundle (in a private mount namespace on hybrid hosts).
    Crun => "crun", OciPeer;
    /// `vclab-vmm` of the unikernel, timed by the lab device.
    MicrovmUnikernel => "microvm-unikernel", Vm;
    /// `vclab-vmm` of the unikernel with the lab device hidden: the UART path
    /// and stdout timing of the peer VMMs.
    MicrovmUnikernelUart => "microvm-unikernel-uart", Vm;
    /// `vclab-vmm --restore` of a unikernel snapshot taken at its ready signal, timed to the
    /// guest's first lab-device event after the restore (it asks for its parameters).
    MicrovmUnikernelRestore => "microvm-unikernel-restore", Vm;
    /// QEMU microvm booting the unikernel through PVH.
    QemuMicrovm => "qemu-microvm", PeerVmm;
    /// Firecracker booting the unikernel.
    Firecracker => "firecracker", PeerVmm;
    /// Cloud Hypervisor booting the unikernel.
    CloudHypervisor => "cloud-hypervisor", PeerVmm;
    /// `vclab-vmm` of the micro-VM Linux kernel with the initramfs.
    MicrovmLinux => "microvm-linux", Vm;
    /// QEMU microvm booting the same Linux kernel and initramfs (timed to the init handoff).
    QemuMicrovmLinux => "qemu-microvm-linux", PeerVmm;
    /// `vclab-vmm` of Debian's cloud kernel with the initramfs.
    VmDistro => "vm-distro", Vm;
}

impl RuntimeId {
    /// Looks a row up by its name.
    pub fn from_name(name: &str) -> Option<RuntimeId> {
        Self::ALL.iter().copied().find(|r| r.name() == name)
    }

    /// The rows this one's start is compared with, best first: the ratio
    /// uses the first that has figures. The UART row is timed like the peer
    /// VMMs (the ready line read from stdout), so its ratio compares like with
    /// like; the lab-device row's ratio mixes two clocks, and the report says
    /// which ([`super::StartClock`]).
    pub const fn peers(self) -> &'static [RuntimeId] {
        match self {
            RuntimeId::Container => &[RuntimeId::Crun, RuntimeId::Runc],
            RuntimeId::MicrovmUnikernel | RuntimeId::MicrovmUnikernelUart => &[
                RuntimeId::Firecracker,
                RuntimeId::QemuMicrovm,
                RuntimeId::CloudHypervisor,
            ],
            RuntimeId::MicrovmUnikernelRestore => &[
                RuntimeId::Firecracker,
                RuntimeId::QemuMicrovm,
                RuntimeId::MicrovmUnikernel,
            ],
            RuntimeId::MicrovmLinux | RuntimeId::VmDistro => &[RuntimeId::QemuMicrovmLinux],
            _ => &[],
        }
    }

    /// What the row's start latency is timed to when it runs the workload
    /// (a Linux row that can only boot here is timed to its init handoff).
    pub const fn start_clock(self) -> super::StartClock {
        use super::StartClock;
        match self {
            RuntimeId::Bare | RuntimeId::Container | RuntimeId::Runc | RuntimeId::Crun => {
                StartClock::WorkloadEntry
            }
            RuntimeId::MicrovmUnikernel | RuntimeId::MicrovmLinux | RuntimeId::VmDistro => {
                StartClock::LabDevice
            }
            RuntimeId::MicrovmUnikernelRestore => StartClock::RestoredParams,
            RuntimeId::MicrovmUnikernelUart
            | RuntimeId::QemuMicrovm
            | RuntimeId::Firecracker
            | RuntimeId::CloudHypervisor => StartClock::ConsoleReadyLine,
            RuntimeId::QemuMicrovmLinux => StartClock::InitHandoff,
        }
    }

    /// Whether the row is a Linux guest (one boot per run, minutes on kvm_pvm).
    pub const fn linux_guest(self) -> bool {
        matches!(
            self,
            RuntimeId::MicrovmLinux | RuntimeId::QemuMicrovmLinux | RuntimeId::VmDistro
        )
    }
}

impl std::fmt::Display for RuntimeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for id in RuntimeId::ALL {
            assert_eq!(RuntimeId::from_name(id.name()), Some(*id));
            assert_eq!(
                serde_json::to_string(id).unwrap(),
                format!("\"{}\"", id.name())
            );
        }
        assert_eq!(RuntimeId::from_name("nope"), None);
    }

    #[test]
    fn peers_are_timed_alike_and_never_self() {
        for id in RuntimeId::ALL {
            for p in id.peers() {
                assert_ne!(p, id);
                assert_eq!(p.linux_guest(), id.linux_guest(), "{id} vs {p}");
            }
        }
    }
}
