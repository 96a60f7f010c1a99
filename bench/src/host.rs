//! The host record: what machine a set of figures comes from. Every
//! `results.json` carries one, and `vclab host` prints it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use vclab_container::cgroups::CgroupMode;
use vclab_vmm::host::KvmKind;

/// The peer programs the lab compares itself with, in display order.
pub const PEERS: &[&str] = &[
    "qemu-system-x86_64",
    "runc",
    "crun",
    "firecracker",
    "cloud-hypervisor",
    "hyperfine",
];

/// One peer program: where it is and what version it reports.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct PeerInfo {
    /// Program name.
    pub name: String,
    /// Absolute path, when installed.
    pub path: Option<PathBuf>,
    /// First line of `<program> --version`, when it answered.
    pub version: Option<String>,
}

/// The machine a set of figures comes from. Fields missing from an older
/// results file read as their defaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct HostRecord {
    /// Version of vclab that measured.
    pub vclab_version: String,
    /// CPU model name from /proc/cpuinfo.
    pub cpu_model: String,
    /// Online logical CPUs.
    pub cores: u32,
    /// Total memory, MiB.
    pub memory_mib: u64,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// `/dev/kvm` exists.
    pub kvm_present: bool,
    /// KVM kind (`hardware-vmx`, `hardware-svm`, `pvm`, `unknown`, `absent`).
    pub kvm_kind: Option<KvmKind>,
    /// What the KVM kind means for guests.
    pub kvm_explanation: String,
    /// cgroup mode (`v1`, `v2`, `hybrid`, `none`).
    pub cgroup_mode: Option<CgroupMode>,
    /// Each peer, installed or not.
    pub peers: Vec<PeerInfo>,
}

impl HostRecord {
    /// Probes this host. `overrides` maps a peer name to a path given on the
    /// command line (e.g. `--firecracker PATH`).
    pub fn detect(overrides: &[(&str, Option<&Path>)]) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kvm = KvmKind::detect();
        HostRecord {
            vclab_version: if cfg!(debug_assertions) {
                format!(
                    "{} (debug build: VMM and launcher figures are slower than release)",
                    env!("CARGO_PKG_VERSION")
                )
            } else {
                env!("CARGO_PKG_VERSION").to_string()
            },
            cpu_model: cpu_model(&cpuinfo),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            memory_mib: mem_total_kib(&meminfo) / 1024,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            kvm_present: Path::new("/dev/kvm").exists(),
            kvm_kind: Some(kvm),
            kvm_explanation: explain_kvm(kvm).to_string(),
            cgroup_mode: Some(CgroupMode::detect()),
            peers: PEERS
                .iter()
                .map(|name| {
                    let given = overrides
                        .iter()
                        .find(|(n, _)| n == name)
                        .and_then(|(_, p)| *p);
                    probe_peer(name, given)
                })
                .collect(),
        }
    }

    /// The peer named `name`, when installed.
    pub fn peer(&self, name: &str) -> Option<&PeerInfo> {
        self.peers
            .iter()
            .find(|p| p.name == name && p.path.is_some())
    }

    /// The KVM kind as its kebab-case name.
    pub fn kvm_name(&self) -> String {
        self.kvm_kind
            .and_then(|k| serde_json::to_value(k).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "unknown".into())
    }

    /// The cgroup mode as its kebab-case name.
    pub fn cgroup_name(&self) -> String {
        self.cgroup_mode
            .and_then(|k| serde_json::to_value(k).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "unknown".into())
    }
}

/// What each KVM kind means for the lab's guests.
pub fn explain_kvm(kind: KvmKind) -> &'static str {
    match kind {
        KvmKind::HardwareVmx | KvmKind::HardwareSvm => {
            "hardware virtualisation: guest kernels and guest userspace run natively; Linux guests boot to userspace"
        }
        KvmKind::Pvm => {
            "kvm_pvm: a page-table based nested hypervisor. Guest ring 0 is emulated instruction by instruction \
             (a Linux kernel takes minutes to reach init) and guest userspace cannot make system calls, so Linux \
             guests are timed to the kernel's init handoff only; the unikernel runs its workload at CPL 3 natively"
        }
        KvmKind::Unknown => "KVM of unknown kind: guests may or may not run; the lab tries them",
        KvmKind::Absent => "no /dev/kvm: no VM rows can run on this host",
    }
}

fn cpu_model(cpuinfo: &str) -> String {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn mem_total_kib(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Finds `name` on `$PATH` (plus the sbin directories root's PATH may lack).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn probe_peer(name: &str, given: Option<&Path>) -> PeerInfo {
    let path = match given {
        Some(p) if is_executable(p) => Some(p.to_path_buf()),
        Some(_) => None,
        None => which(name),
    };
    let version = path.as_ref().and_then(|p| version_of(p));
    PeerInfo {
        name: name.to_string(),
        path,
        version,
    }
}

fn version_of(path: &Path) -> Option<String> {
    let out = Command::new(path).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())?
        .trim()
        .to_string();
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpuinfo_and_meminfo() {
        let cpuinfo = "processor\t: 0\nmodel name\t: Example CPU @ 2.00GHz\nflags\t: fpu\n";
        assert_eq!(cpu_model(cpuinfo), "Example CPU @ 2.00GHz");
        assert_eq!(cpu_model(""), "unknown");
        assert_eq!(mem_total_kib("MemTotal:       24684000 kB\n"), 24684000);
        assert_eq!(mem_total_kib("garbage"), 0);
    }

    #[test]
    fn detects_this_host() {
        let h = HostRecord::detect(&[]);
        assert!(h.cores >= 1);
        assert!(h.memory_mib > 0);
        assert!(!h.kernel.is_empty());
        assert_eq!(h.peers.len(), PEERS.len());
        // A peer given by a path that does not exist is reported as missing.
        let h = HostRecord::detect(&[("firecracker", Some(Path::new("/nonexistent/fc")))]);
        assert!(h.peer("firecracker").is_none());
    }
}
