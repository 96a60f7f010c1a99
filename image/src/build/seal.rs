//! A staged layer tree made into its blob (helper A's deterministic
//! writer) and moved into the cache.

use super::cache::{self, BlobInfo, Cache, Staged};
use super::state::{Layer, GZIP_LAYER};
use crate::layer::{self, Owner, WriteOptions};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The blob file could not be created.
    #[error("cannot create the layer blob {path}: {source}")]
    Create {
        /// The blob.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The tree could not be archived.
    #[error(transparent)]
    Write(#[from] layer::WriteError),
    /// The blob could not be unpacked as the layer's tree.
    #[error(transparent)]
    Tree(#[from] super::tree::Error),
    /// The cache refused it.
    #[error(transparent)]
    Cache(#[from] cache::Error),
}

/// Archives `staged`'s tree (an overlay upper directory when `whiteouts`)
/// with every mtime `epoch` and the files' own owners, then commits it
/// under `key`.
pub fn seal(
    cache: &Cache,
    staged: Staged,
    epoch: u64,
    whiteouts: bool,
    key: Option<&str>,
) -> Result<Layer, Error> {
    let path = staged.blob();
    let file = std::fs::File::create(&path).map_err(|source| Error::Create {
        path: path.clone(),
        source,
    })?;
    let opts = WriteOptions {
        mtime: epoch,
        owner: Owner::Keep,
        whiteouts,
    };
    let info = layer::write(&staged.tree(), std::io::BufWriter::new(file), &opts)?;
    let blob = BlobInfo {
        diff_id: info.diff_id,
        digest: info.digest,
        size: info.size,
        media_type: GZIP_LAYER.to_string(),
    };
    Ok(cache.commit(staged, &blob, key)?)
}

/// Archives the directory `src` (owned by root in the layer, mtime `epoch`)
/// into `staged`'s blob, unpacks that blob as the layer's tree, and commits
/// it under `key`.
pub fn import(
    cache: &Cache,
    staged: Staged,
    src: &std::path::Path,
    epoch: u64,
    key: Option<&str>,
) -> Result<Layer, Error> {
    let path = staged.blob();
    let file = std::fs::File::create(&path).map_err(|source| Error::Create {
        path: path.clone(),
        source,
    })?;
    let opts = WriteOptions {
        mtime: epoch,
        owner: Owner::Root,
        whiteouts: false,
    };
    let info = layer::write(src, std::io::BufWriter::new(file), &opts)?;
    super::tree::unpack(&path, &staged.tree())?;
    let blob = BlobInfo {
        diff_id: info.diff_id,
        digest: info.digest,
        size: info.size,
        media_type: GZIP_LAYER.to_string(),
    };
    Ok(cache.commit(staged, &blob, key)?)
}
