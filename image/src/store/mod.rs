//! The lab's image store: one OCI layout per image name under
//! `~/.cache/vclab/images/` (`VCLAB_IMAGE_STORE` overrides it), tags inside
//! it; `.cache/` holds the build's layer cache and `.rootfs/` the unpacked
//! images of `container run --image`.
//!
//! A build writes into a temporary layout ([`Store::stage`]: the name's
//! current layout hard-linked in, so its other tags stay) and
//! [`Store::commit`] renames it into place: a failed build leaves the store
//! as it was.

pub mod reference;
pub mod tmp;

use std::path::{Path, PathBuf};

use crate::layout::{Image, Layout, LayoutError};
pub use reference::Reference;
use tmp::TempDir;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No image by that name and tag.
    #[error(
        "no image {0} in the store: build it (vclab image build -t {0}) or see vclab image ls"
    )]
    NotFound(Reference),
    /// The store could not be read or written.
    #[error("image store {path}: cannot {action}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// An image's layout is damaged.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// A temporary directory failed.
    #[error(transparent)]
    Tmp(#[from] tmp::Error),
    /// A bad name or tag.
    #[error(transparent)]
    Reference(#[from] reference::Error),
}

/// One image of [`Store::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Name and tag.
    pub reference: Reference,
    /// The manifest digest.
    pub digest: String,
    /// The layers' blob sizes summed.
    pub size: u64,
}

/// The store at one directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

fn io(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io {
        path,
        action,
        source,
    }
}

impl Store {
    /// `VCLAB_IMAGE_STORE`, else `<lab cache>/images`.
    pub fn from_env() -> Self {
        match std::env::var_os("VCLAB_IMAGE_STORE") {
            Some(d) if !d.is_empty() => Store::at(d),
            _ => Store::at(crate::build::base::lab_cache_dir().join("images")),
        }
    }

    /// The store at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Store { root: root.into() }
    }

    /// Its directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The layer cache of builds.
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join(".cache")
    }

    /// The unpacked rootfs directories, by manifest digest.
    pub fn rootfs_dir(&self) -> PathBuf {
        self.root.join(".rootfs")
    }

    /// Temporary directories (same file system as the layouts).
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join(".tmp")
    }

    /// The layout directory of `name`.
    pub fn layout_dir(&self, r: &Reference) -> PathBuf {
        self.root.join(r.dir_name())
    }

    /// A temporary layout for a new image of `r`'s name, holding the name's
    /// current images (blobs hard-linked, index copied).
    pub fn stage(&self, r: &Reference) -> Result<TempDir, Error> {
        let t = TempDir::new_in(&self.tmp_dir(), "layout")?;
        let current = self.layout_dir(r);
        if current.join("index.json").is_file() {
            let blobs = current.join("blobs/sha256");
            let to = t.path().join("blobs/sha256");
            std::fs::create_dir_all(&to).map_err(io(&to, "create a directory"))?;
            for e in std::fs::read_dir(&blobs).map_err(io(&blobs, "read a directory"))? {
                let e = e.map_err(io(&blobs, "read a directory"))?;
                let dest = to.join(e.file_name());
                std::fs::hard_link(e.path(), &dest)
                    .or_else(|_| std::fs::copy(e.path(), &dest).map(|_| ()))
                    .map_err(io(&dest, "link a blob"))?;
            }
            for f in ["oci-layout", "index.json"] {
                let dest = t.path().join(f);
                std::fs::copy(current.join(f), &dest).map_err(io(&dest, "copy"))?;
            }
        }
        Ok(t)
    }

    /// Renames a staged layout into place as `r`'s name, then drops the
    /// blobs no image of it uses.
    pub fn commit(&self, staged: TempDir, r: &Reference) -> Result<(), Error> {
        let dest = self.layout_dir(r);
        let old = TempDir::new_in(&self.tmp_dir(), "old")?;
        let old_path = old.path().join("layout");
        if dest.exists() {
            std::fs::rename(&dest, &old_path).map_err(io(&dest, "move the old layout aside"))?;
        }
        if let Err(e) = staged.persist(&dest) {
            // Put the old one back: the store stays as it was.
            let _ = std::fs::rename(&old_path, &dest);
            return Err(e.into());
        }
        drop(old);
        Layout::open(&dest)?.gc()?;
        Ok(())
    }

    /// The names in the store.
    fn names(&self) -> Result<Vec<String>, Error> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.root, "read the store")(e)),
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().join("index.json").is_file())
            .filter_map(|e| reference::name_of_dir(&e.file_name().to_string_lossy()))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Every image (name, tag), sorted.
    pub fn list(&self) -> Result<Vec<Summary>, Error> {
        let mut out = Vec::new();
        for name in self.names()? {
            let r = Reference {
                name: name.clone(),
                tag: reference::DEFAULT_TAG.into(),
            };
            let layout = Layout::open(&self.layout_dir(&r))?;
            for tag in layout.tags()? {
                let reference = Reference {
                    name: name.clone(),
                    tag,
                };
                let img = layout.read_image(Some(&reference.tag))?;
                out.push(Summary {
                    digest: img.descriptor.digest().to_string(),
                    size: img.layers().iter().map(|l| l.size()).sum(),
                    reference,
                });
            }
        }
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(out)
    }

    /// The image `r`, every blob checked.
    pub fn image(&self, r: &Reference) -> Result<(Layout, Image), Error> {
        let dir = self.layout_dir(r);
        if !dir.join("index.json").is_file() {
            return Err(Error::NotFound(r.clone()));
        }
        let layout = Layout::open(&dir)?;
        if !layout.tags()?.contains(&r.tag) {
            return Err(Error::NotFound(r.clone()));
        }
        let img = layout.read_image(Some(&r.tag))?;
        Ok((layout, img))
    }

    /// Removes the tag `r`; the name's layout goes with its last tag, and
    /// the image's unpacked rootfs unless another tag of the name has the
    /// same digest (it is unpacked again when needed).
    pub fn remove(&self, r: &Reference) -> Result<(), Error> {
        let (layout, img) = self.image(r)?;
        let digest = img.descriptor.digest().clone();
        let mut index = layout.index()?;
        let kept: Vec<_> = index
            .manifests()
            .iter()
            .filter(|d| {
                d.annotations()
                    .as_ref()
                    .and_then(|a| a.get(oci_spec::image::ANNOTATION_REF_NAME))
                    .map(String::as_str)
                    != Some(r.tag.as_str())
            })
            .cloned()
            .collect();
        let trash = TempDir::new_in(&self.tmp_dir(), "rm")?;
        if !kept.iter().any(|d| d.digest() == &digest) {
            let rootfs = self.rootfs_dir().join(digest.digest());
            if rootfs.exists() {
                std::fs::rename(&rootfs, trash.path().join("rootfs"))
                    .map_err(io(&rootfs, "remove the unpacked rootfs"))?;
            }
        }
        if kept.is_empty() {
            let dir = self.layout_dir(r);
            std::fs::rename(&dir, trash.path().join("layout"))
                .map_err(io(&dir, "remove the layout"))?;
            return Ok(());
        }
        index.set_manifests(kept);
        layout.write_index(&index)?;
        layout.gc()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_store_lists_nothing_and_finds_nothing() {
        let s = Store::at("/nonexistent/vclab-store");
        assert!(s.list().unwrap().is_empty());
        let r = Reference::parse("x:1").unwrap();
        assert!(matches!(s.image(&r), Err(Error::NotFound(_))));
        assert_eq!(s.layout_dir(&r), Path::new("/nonexistent/vclab-store/x"));
    }
}
