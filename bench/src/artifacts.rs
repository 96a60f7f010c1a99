//! Finds the guest-images artifacts through the cache manifest written by
//! `scripts/guest-images.sh`.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// One artifact in the manifest.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct Artifact {
    /// Absolute path of the file or directory.
    pub path: PathBuf,
    /// `file` or `dir`.
    pub kind: String,
    /// Size in bytes (for a directory, the sum of its regular files).
    pub size: u64,
    /// sha256 of the file (for a directory, of its sorted `sha256sum` listing).
    pub sha256: String,
}

/// The manifest: artifact name → artifact.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct Manifest {
    /// Format version (1).
    pub version: u32,
    /// The artifacts by name: vmlinux, bzimage, distro-kernel, rootfs,
    /// initramfs, unikernel, workload.
    pub artifacts: BTreeMap<String, Artifact>,
}

/// The cache directory (`$VCLAB_CACHE`, else `$XDG_CACHE_HOME/vclab`, else
/// `~/.cache/vclab`): one rule, kept in the VMM's cache module.
pub fn cache_dir() -> PathBuf {
    vclab_vmm::cache::dir()
}

impl Manifest {
    /// Loads `<cache>/manifest.json`.
    pub fn load() -> anyhow::Result<Self> {
        let path = cache_dir().join("manifest.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read {}: {e} (build the guest images first: scripts/guest-images.sh)",
                path.display()
            )
        })?;
        serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not a valid manifest: {e}", path.display()))
    }

    /// The path of artifact `name`, or an error naming it.
    pub fn path(&self, name: &str) -> anyhow::Result<PathBuf> {
        self.artifacts
            .get(name)
            .map(|a| a.path.clone())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the guest-images manifest has no '{name}' (rebuild: scripts/guest-images.sh)"
                )
            })
    }
}
