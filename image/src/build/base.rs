//! `FROM vclab/base`: the lab's rootfs (`VCLAB_ROOTFS`, else the cache
//! manifest's `rootfs` artifact, as `vmm/src/cache.rs` reads it) imported
//! as one base layer, cached by a checksum of its files.

use std::path::{Path, PathBuf};

use super::{context, seal};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No rootfs is known.
    #[error("FROM vclab/base: no lab rootfs ({0}): build it (scripts/guest-images.sh) or set VCLAB_ROOTFS=DIR")]
    Missing(String),
    /// The rootfs could not be read.
    #[error(transparent)]
    Context(#[from] context::Error),
    /// The layer could not be made.
    #[error(transparent)]
    Seal(#[from] seal::Error),
    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] super::cache::Error),
}

/// The lab's artifact cache directory (DESIGN.md "Artifact cache").
pub fn lab_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("VCLAB_CACHE") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("vclab");
    }
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/vclab")
}

/// The lab's rootfs directory.
pub fn rootfs_dir() -> Result<PathBuf, Error> {
    if let Some(d) = std::env::var_os("VCLAB_ROOTFS") {
        let d = PathBuf::from(d);
        return if d.is_dir() {
            Ok(d)
        } else {
            Err(Error::Missing(format!(
                "VCLAB_ROOTFS={} is not a directory",
                d.display()
            )))
        };
    }
    let manifest = lab_cache_dir().join("manifest.json");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| Error::Missing(format!("cannot read {}: {e}", manifest.display())))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Missing(format!("{} is not a manifest: {e}", manifest.display())))?;
    match v["artifacts"]["rootfs"]["path"].as_str().map(PathBuf::from) {
        Some(p) if p.is_dir() => Ok(p),
        Some(p) => Err(Error::Missing(format!("{} is missing", p.display()))),
        None => Err(Error::Missing(format!(
            "{} lists no rootfs",
            manifest.display()
        ))),
    }
}

/// The cache key of the base layer made from `rootfs`: a checksum of its
/// files (paths, content, modes, owners).
pub fn key(rootfs: &Path, epoch: u64) -> Result<String, Error> {
    let src = context::Source {
        written: ".".into(),
        path: rootfs.to_path_buf(),
    };
    Ok(format!("vclab-base-{}-{epoch}", context::checksum(&[src])?))
}
