//! The lab's artifact cache (DESIGN.md, "Artifact cache"): where it is
//! (`$VCLAB_CACHE`, else `$XDG_CACHE_HOME/vclab`, else `~/.cache/vclab`) and
//! the one model of its `manifest.json`, shared by the VMM, the CLI and the
//! tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The cache directory the environment names.
pub fn dir() -> PathBuf {
    if let Some(d) = std::env::var_os("VCLAB_CACHE") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("vclab");
    }
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/vclab")
}

/// Errors reading the manifest or looking an artifact up in it.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// `manifest.json` could not be read.
    #[error(
        "cannot read {path}: {source} (build the guest images first: scripts/guest-images.sh)"
    )]
    Read {
        /// The manifest file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `manifest.json` is not a manifest.
    #[error("{path} is not a valid manifest: {source}")]
    Parse {
        /// The manifest file.
        path: PathBuf,
        /// The serde error.
        source: serde_json::Error,
    },
    /// The manifest does not list the artifact.
    #[error("the guest-images manifest has no '{name}' (rebuild: scripts/guest-images.sh)")]
    Missing {
        /// The artifact name.
        name: String,
    },
}

/// One artifact in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// `<cache>/manifest.json`: artifact name → artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version (1).
    pub version: u32,
    /// The artifacts by name: vmlinux, bzimage, distro-kernel, rootfs,
    /// initramfs, unikernel, workload.
    pub artifacts: BTreeMap<String, Artifact>,
}

/// The manifest file of the cache at `cache`.
pub fn manifest_path(cache: &Path) -> PathBuf {
    cache.join("manifest.json")
}

impl Manifest {
    /// Reads `<cache>/manifest.json`.
    pub fn load(cache: &Path) -> Result<Self, ManifestError> {
        let path = manifest_path(cache);
        let text = std::fs::read_to_string(&path).map_err(|source| ManifestError::Read {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| ManifestError::Parse { path, source })
    }

    /// The entry of artifact `name`, or an error naming it.
    pub fn get(&self, name: &str) -> Result<&Artifact, ManifestError> {
        self.artifacts
            .get(name)
            .ok_or_else(|| ManifestError::Missing {
                name: name.to_string(),
            })
    }

    /// The path of artifact `name`, or an error naming it.
    pub fn path(&self, name: &str) -> Result<PathBuf, ManifestError> {
        self.get(name).map(|a| a.path.clone())
    }
}

/// The path of artifact `name` in the cache at `cache`, if listed and present.
pub fn artifact(cache: &Path, name: &str) -> Option<PathBuf> {
    Manifest::load(cache)
        .ok()?
        .path(name)
        .ok()
        .filter(|p| p.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_lookup() {
        let m = r#"{"version":1,"artifacts":{"vmlinux":{"path":"/c/vmlinux","kind":"file","size":1,"sha256":"ab"}}}"#;
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(artifact(dir.path(), "vmlinux"), None);
        assert!(matches!(
            Manifest::load(dir.path()),
            Err(ManifestError::Read { .. })
        ));
        std::fs::write(manifest_path(dir.path()), m).unwrap();
        let manifest = Manifest::load(dir.path()).unwrap();
        assert_eq!(
            manifest.path("vmlinux").unwrap(),
            PathBuf::from("/c/vmlinux")
        );
        assert!(matches!(
            manifest.path("bzimage"),
            Err(ManifestError::Missing { .. })
        ));
        // Listed but not on disk.
        assert_eq!(artifact(dir.path(), "vmlinux"), None);
        let kernel = dir.path().join("vmlinux");
        std::fs::write(&kernel, b"k").unwrap();
        let present = m.replace("/c/vmlinux", kernel.to_str().unwrap());
        std::fs::write(manifest_path(dir.path()), present).unwrap();
        assert_eq!(artifact(dir.path(), "vmlinux"), Some(kernel));
        std::fs::write(manifest_path(dir.path()), "not json").unwrap();
        assert!(matches!(
            Manifest::load(dir.path()),
            Err(ManifestError::Parse { .. })
        ));
        assert_eq!(artifact(dir.path(), "vmlinux"), None);
    }
}
