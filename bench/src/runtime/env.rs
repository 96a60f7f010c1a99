//! What the rows need: binaries and artifacts found on this host, the host
//! record, and the harness's state entry (where instance files live and
//! what its guard cleans if the harness dies).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vclab_vmm::cache::Manifest;
use vclab_vmm::host::KvmKind;

use crate::host::HostRecord;
use crate::spawn::guard::Harness;

/// What the rows need from this host.
#[derive(Debug, Clone)]
pub struct Env {
    /// The `vclab` binary (this program).
    pub vclab: PathBuf,
    /// The host `vclab-workload` binary.
    pub workload: Option<PathBuf>,
    /// The guest-images manifest, or why it is missing.
    pub manifest: Result<Manifest, String>,
    /// The host record (peers, KVM kind).
    pub host: HostRecord,
    /// TSC frequency for guests without the VMM's figure, kHz.
    pub tsc_khz: Option<u64>,
    /// Boot the Linux rows.
    pub linux: bool,
    /// Also boot QEMU's Linux reference where Linux boots are slow (kvm_pvm).
    pub linux_reference: bool,
    /// Pin every instance to this CPU (`--pin`).
    pub instance_cpu: Option<usize>,
    /// The harness's state entry (instance files live there; its guard
    /// cleans up after a killed harness). `None`: files go to the temp dir.
    pub harness: Option<Arc<Harness>>,
    /// The io kernel's disk image of this run (`None`: io cases are skipped).
    pub io_disk: Option<PathBuf>,
    /// The unikernel snapshot the restore row restores, or why there is none.
    pub snapshot: Result<PathBuf, String>,
}

impl Env {
    /// An environment with nothing found: no workload, no manifest, no peers (tests).
    pub fn bare(vclab: PathBuf) -> Env {
        Env {
            vclab,
            workload: None,
            manifest: Err("no manifest".into()),
            host: HostRecord::default(),
            tsc_khz: None,
            linux: false,
            linux_reference: false,
            instance_cpu: None,
            harness: None,
            io_disk: None,
            snapshot: Err("no snapshot was taken for this run".into()),
        }
    }

    /// The command that runs one VM: the small `vclab-vmm` binary built next
    /// to this program, else `vclab vm run` (same arguments, same code).
    pub fn vmm_argv(&self) -> Vec<OsString> {
        self.sibling_or("vclab-vmm", &["vm", "run"])
    }

    /// The command that runs one container: the small `vclab-container`
    /// binary next to this program, else `vclab container run`.
    pub fn launcher_argv(&self) -> Vec<OsString> {
        self.sibling_or("vclab-container", &["container", "run"])
    }

    fn sibling_or(&self, name: &str, subcommand: &[&str]) -> Vec<OsString> {
        match self.vclab.parent().map(|d| d.join(name)) {
            Some(bin) if bin.is_file() => vec![bin.into()],
            _ => {
                let mut argv = vec![self.vclab.clone().into()];
                argv.extend(subcommand.iter().map(OsString::from));
                argv
            }
        }
    }

    /// A built artifact's path, or why it is missing.
    pub fn artifact(&self, name: &str) -> Result<PathBuf, String> {
        let m = self.manifest.as_ref().map_err(Clone::clone)?;
        let p = m.path(name).map_err(|e| e.to_string())?;
        if p.exists() {
            Ok(p)
        } else {
            Err(format!(
                "artifact '{name}' is missing at {} (rebuild: scripts/guest-images.sh)",
                p.display()
            ))
        }
    }

    /// An installed peer's path, or why it is missing.
    pub fn peer(&self, name: &str) -> Result<PathBuf, String> {
        self.host
            .peer(name)
            .and_then(|p| p.path.clone())
            .ok_or_else(|| format!("{name} is not installed"))
    }

    /// The host workload binary, or why it is missing.
    pub fn workload(&self) -> Result<PathBuf, String> {
        self.workload.clone().ok_or_else(|| {
            "vclab-workload is not built (cargo build -p vclab-workload --release, or scripts/guest-images.sh)"
                .to_string()
        })
    }

    /// The io kernel's disk image, or why there is none.
    pub fn io_disk(&self) -> Result<&Path, String> {
        self.io_disk
            .as_deref()
            .ok_or_else(|| "no io disk image was made for this run".to_string())
    }

    /// Whether this host can run VMs at all.
    pub fn vm_works(&self) -> Result<(), String> {
        if self.host.kvm_kind == Some(KvmKind::Absent) {
            return Err("no /dev/kvm on this host".into());
        }
        Ok(())
    }

    /// Whether Linux guests' userspace runs here (hardware KVM).
    pub fn linux_userspace(&self) -> bool {
        self.host.kvm_kind.is_some_and(|k| k.runs_linux_userspace())
    }

    /// Whether this is a kvm_pvm host.
    pub fn pvm(&self) -> bool {
        self.host.kvm_kind == Some(KvmKind::Pvm)
    }
}

/// The first reason among `parts`, if any.
pub fn first_reason(parts: &[Result<(), String>]) -> Option<String> {
    parts.iter().find_map(|p| p.as_ref().err().cloned())
}

/// `Ok(())` when `r` found its thing.
pub fn need(r: Result<PathBuf, String>) -> Result<(), String> {
    r.map(|_| ())
}

/// The TSC frequency in kHz, from /proc/cpuinfo's `cpu MHz` (the figure guests get without the VMM).
pub fn host_tsc_khz() -> Option<u64> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mhz: f64 = cpuinfo
        .lines()
        .find(|l| l.starts_with("cpu MHz"))?
        .split_once(':')?
        .1
        .trim()
        .parse()
        .ok()?;
    Some((mhz * 1000.0).round() as u64)
}

/// Finds the host workload binary: the manifest's `workload`, else next to this program, else $PATH.
pub fn find_workload(manifest: &Result<Manifest, String>, vclab: &Path) -> Option<PathBuf> {
    if let Ok(Ok(p)) = manifest.as_ref().map(|m| m.path("workload")) {
        if p.is_file() {
            return Some(p);
        }
    }
    let sibling = vclab.with_file_name("vclab-workload");
    if sibling.is_file() {
        return Some(sibling);
    }
    crate::host::which("vclab-workload")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_binaries_next_to_vclab_are_preferred() {
        let dir = tempfile::tempdir().unwrap();
        let mut env = Env::bare(dir.path().join("vclab"));
        let argv = |v: Vec<OsString>| {
            v.iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        let vclab = env.vclab.display().to_string();
        assert_eq!(argv(env.vmm_argv()), [vclab.as_str(), "vm", "run"]);
        assert_eq!(
            argv(env.launcher_argv()),
            [vclab.as_str(), "container", "run"]
        );
        for name in ["vclab-vmm", "vclab-container"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        assert_eq!(
            argv(env.vmm_argv()),
            [dir.path().join("vclab-vmm").display().to_string()]
        );
        assert_eq!(
            argv(env.launcher_argv()),
            [dir.path().join("vclab-container").display().to_string()]
        );
        env.vclab = PathBuf::from("vclab");
        assert_eq!(argv(env.vmm_argv()), ["vclab", "vm", "run"]);
    }
}
