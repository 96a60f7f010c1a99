//! What kind of KVM this host offers. Decided from the host, never guessed
//! from a failed boot.

use std::path::Path;

/// The flavour of `/dev/kvm` on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KvmKind {
    /// Hardware virtualisation (Intel VMX).
    HardwareVmx,
    /// Hardware virtualisation (AMD SVM).
    HardwareSvm,
    /// `kvm_pvm`: a page-table based nested hypervisor. Guest ring 0 is
    /// emulated and guest userspace cannot make system calls.
    Pvm,
    /// `/dev/kvm` exists but its backend is not recognised.
    Unknown,
    /// No `/dev/kvm` on this host.
    Absent,
}

impl KvmKind {
    /// Probes the running host.
    pub fn detect() -> Self {
        let (dev_kvm, pvm) = (
            Path::new("/dev/kvm").exists(),
            Path::new("/sys/module/kvm_pvm").exists(),
        );
        // /proc/cpuinfo is long; it is read only when the answer needs it.
        let cpuinfo = if dev_kvm && !pvm {
            std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default()
        } else {
            String::new()
        };
        Self::from_parts(dev_kvm, pvm, &cpuinfo)
    }

    /// Decides the kind from what the host shows: whether `/dev/kvm` exists,
    /// whether the `kvm_pvm` module is loaded, and the text of `/proc/cpuinfo`.
    pub fn from_parts(dev_kvm: bool, pvm_module: bool, cpuinfo: &str) -> Self {
        if !dev_kvm {
            return KvmKind::Absent;
        }
        if pvm_module {
            return KvmKind::Pvm;
        }
        let has_flag = |flag: &str| {
            cpuinfo
                .lines()
                .filter(|l| l.starts_with("flags"))
                .any(|l| l.split_whitespace().any(|w| w == flag))
        };
        if has_flag("vmx") {
            KvmKind::HardwareVmx
        } else if has_flag("svm") {
            KvmKind::HardwareSvm
        } else {
            KvmKind::Unknown
        }
    }

    /// True when guest Linux userspace can run (hardware virtualisation).
    pub fn runs_linux_userspace(self) -> bool {
        matches!(self, KvmKind::HardwareVmx | KvmKind::HardwareSvm)
    }

    /// A short human description.
    pub fn describe(self) -> &'static str {
        match self {
            KvmKind::HardwareVmx => "hardware KVM (Intel VMX)",
            KvmKind::HardwareSvm => "hardware KVM (AMD SVM)",
            KvmKind::Pvm => "kvm_pvm (nested, page-table based: guest ring 0 emulated, guest userspace cannot make system calls)",
            KvmKind::Unknown => "KVM of unknown kind (no vmx/svm flag, no kvm_pvm module)",
            KvmKind::Absent => "no /dev/kvm",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_parts() {
        assert_eq!(KvmKind::from_parts(false, true, ""), KvmKind::Absent);
        assert_eq!(KvmKind::from_parts(true, true, "flags : vmx"), KvmKind::Pvm);
        assert_eq!(
            KvmKind::from_parts(true, false, "flags\t\t: fpu vmx sse"),
            KvmKind::HardwareVmx
        );
        assert_eq!(
            KvmKind::from_parts(true, false, "flags : fpu svm"),
            KvmKind::HardwareSvm
        );
        assert_eq!(
            KvmKind::from_parts(true, false, "flags : fpu vmxx"),
            KvmKind::Unknown
        );
    }
}
