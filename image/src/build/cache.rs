//! The layer cache: each layer once, unpacked, by diff_id
//! (`layers/<hex>/{tree,layer.tar.gz,meta.json}`), and each step's key
//! pointing at the layer it made (`steps/<key>`). An entry is written in a
//! temporary directory and renamed into place, so a failed step leaves
//! nothing behind and a half-written entry is never read.

use std::path::{Path, PathBuf};

use super::state::Layer;
use crate::store::tmp::{self, TempDir};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An entry could not be written.
    #[error("cannot write the layer cache entry {path}: {source} (check the space and permissions under it)")]
    Write {
        /// The entry.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A temporary directory failed.
    #[error(transparent)]
    Tmp(#[from] tmp::Error),
}

/// What a cached layer's `meta.json` holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Meta {
    diff_id: String,
    digest: String,
    size: u64,
    media_type: String,
}

/// What a staged layer's blob is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// `sha256:` of the uncompressed tar.
    pub diff_id: String,
    /// `sha256:` of the blob.
    pub digest: String,
    /// The blob's size.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
}

/// The cache under one directory.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// A layer being made: `tree/` to fill, then [`Cache::commit`].
#[derive(Debug)]
pub struct Staged {
    dir: TempDir,
}

impl Staged {
    /// The directory the layer's files go in.
    pub fn tree(&self) -> PathBuf {
        self.dir.path().join("tree")
    }

    /// Where the gzip'd tar goes.
    pub fn blob(&self) -> PathBuf {
        self.dir.path().join("layer.tar.gz")
    }

    /// A scratch directory next to the tree (same file system: an overlay
    /// work directory).
    pub fn scratch(&self) -> PathBuf {
        self.dir.path().join("scratch")
    }
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

impl Cache {
    /// The cache at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Cache { root: root.into() }
    }

    /// Its directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A temporary directory on the cache's file system.
    pub fn temp(&self, prefix: &str) -> Result<TempDir, Error> {
        Ok(TempDir::new_in(&self.root.join("tmp"), prefix)?)
    }

    /// An empty directory (the lower layer of a step over no layers).
    pub fn empty_dir(&self) -> Result<PathBuf, Error> {
        let p = self.root.join("empty");
        std::fs::create_dir_all(&p).map_err(|source| Error::Write {
            path: p.clone(),
            source,
        })?;
        Ok(p)
    }

    /// A fresh staging area for one layer (its `tree/` created).
    pub fn stage(&self) -> Result<Staged, Error> {
        let dir = self.temp("layer")?;
        let tree = dir.path().join("tree");
        std::fs::create_dir(&tree).map_err(|source| Error::Write { path: tree, source })?;
        Ok(Staged { dir })
    }

    /// The cached layer with this diff_id, if complete.
    pub fn layer(&self, diff_id: &str) -> Option<Layer> {
        let dir = self.root.join("layers").join(hex_of(diff_id));
        let text = std::fs::read_to_string(dir.join("meta.json")).ok()?;
        let meta: Meta = serde_json::from_str(&text).ok()?;
        let (tree, blob) = (dir.join("tree"), dir.join("layer.tar.gz"));
        (meta.diff_id == diff_id && tree.is_dir() && blob.is_file()).then_some(Layer {
            diff_id: meta.diff_id,
            digest: meta.digest,
            size: meta.size,
            tree,
            blob,
            media_type: meta.media_type,
        })
    }

    /// The layer a step with this key made before, if still cached.
    pub fn step(&self, key: &str) -> Option<Layer> {
        let diff_id = std::fs::read_to_string(self.root.join("steps").join(key)).ok()?;
        self.layer(diff_id.trim())
    }

    /// Moves a staged layer into the cache under its diff_id (kept as it is
    /// when another build got there first) and records `key` for it.
    pub fn commit(
        &self,
        staged: Staged,
        blob: &BlobInfo,
        key: Option<&str>,
    ) -> Result<Layer, Error> {
        let write = |path: PathBuf| move |source| Error::Write { path, source };
        let diff_id = blob.diff_id.as_str();
        let meta = Meta {
            diff_id: blob.diff_id.clone(),
            digest: blob.digest.clone(),
            size: blob.size,
            media_type: blob.media_type.clone(),
        };
        let meta_path = staged.dir.path().join("meta.json");
        let text = serde_json::to_string(&meta).map_err(|e| Error::Write {
            path: meta_path.clone(),
            source: e.into(),
        })?;
        std::fs::write(&meta_path, text).map_err(write(meta_path.clone()))?;
        tmp::remove_tree(&staged.scratch());
        let layers = self.root.join("layers");
        std::fs::create_dir_all(&layers).map_err(write(layers.clone()))?;
        let dest = layers.join(hex_of(diff_id));
        if self.layer(diff_id).is_none() {
            tmp::remove_tree(&dest);
            staged.dir.persist(&dest)?;
        }
        if let Some(key) = key {
            self.record(key, diff_id)?;
        }
        self.layer(diff_id).ok_or_else(|| Error::Write {
            path: dest,
            source: std::io::Error::other("the entry is incomplete after the rename"),
        })
    }

    /// Records that the step `key` made the layer `diff_id`.
    pub fn record(&self, key: &str, diff_id: &str) -> Result<(), Error> {
        let steps = self.root.join("steps");
        let write = |path: PathBuf| move |source| Error::Write { path, source };
        std::fs::create_dir_all(&steps).map_err(write(steps.clone()))?;
        let tmp = steps.join(format!(".{key}.{}", std::process::id()));
        std::fs::write(&tmp, diff_id).map_err(write(tmp.clone()))?;
        std::fs::rename(&tmp, steps.join(key)).map_err(write(steps.join(key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_then_lookup() {
        let base = std::env::temp_dir().join(format!("vclab-cache-{}", std::process::id()));
        let c = Cache::at(&base);
        assert!(c.step("k1").is_none());
        let s = c.stage().unwrap();
        std::fs::write(s.tree().join("f"), "x").unwrap();
        std::fs::write(s.blob(), "blob").unwrap();
        let info = BlobInfo {
            diff_id: "sha256:abcd".into(),
            digest: "sha256:ef".into(),
            size: 4,
            media_type: "x".into(),
        };
        let l = c.commit(s, &info, Some("k1")).unwrap();
        assert_eq!(c.step("k1"), Some(l.clone()));
        assert!(l.tree.join("f").is_file());
        // A second commit of the same layer keeps the first.
        let s = c.stage().unwrap();
        std::fs::write(s.blob(), "blob").unwrap();
        assert_eq!(c.commit(s, &info, Some("k2")).unwrap(), l);
        assert_eq!(c.step("k2"), Some(l));
        assert_eq!(std::fs::read_dir(base.join("tmp")).unwrap().count(), 0);
        tmp::remove_tree(&base);
    }
}
