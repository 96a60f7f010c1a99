//! An image unpacked once into a rootfs directory for
//! `vclab container run --image`: `<store>/.rootfs/<manifest hex>`, made in
//! a temporary directory (layers applied in order, whiteouts and all, by
//! [`crate::layer::unpack_file`]) and renamed into place, so a directory
//! there is always complete.

use std::path::PathBuf;

use oci_spec::image::ImageConfiguration;

use crate::layer::{self, UnpackError, UnpackOptions};
use crate::layout::LayoutError;
use crate::store::{self, tmp::TempDir, Reference, Store};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The image is not in the store or is damaged.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// A blob could not be found.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// A layer could not be unpacked.
    #[error("image {image}: {source}")]
    Unpack {
        /// The image.
        image: Reference,
        /// Why.
        source: UnpackError,
    },
    /// A temporary directory failed.
    #[error(transparent)]
    Tmp(#[from] store::tmp::Error),
}

/// An image ready to run.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The rootfs directory (shared; the launcher mounts an overlay on it).
    pub rootfs: PathBuf,
    /// The image's manifest digest.
    pub digest: String,
    /// The image configuration (entrypoint, cmd, env, workdir, user).
    pub config: ImageConfiguration,
    /// Whether this call unpacked it (false: it was cached).
    pub unpacked: bool,
}

/// The rootfs of `r`, unpacked now unless it already is.
pub fn prepare(store: &Store, r: &Reference) -> Result<Prepared, Error> {
    let (layout, image) = store.image(r)?;
    let digest = image.descriptor.digest().to_string();
    let hex = digest.trim_start_matches("sha256:").to_string();
    let dest = store.rootfs_dir().join(&hex);
    let config = image.config.clone();
    if dest.is_dir() {
        return Ok(Prepared {
            rootfs: dest,
            digest,
            config,
            unpacked: false,
        });
    }
    let t = TempDir::new_in(&store.tmp_dir(), "rootfs")?;
    for desc in image.layers() {
        let blob = layout.blob_path(desc.digest().as_ref())?;
        layer::unpack_file(&blob, t.path(), &UnpackOptions::default()).map_err(|source| {
            Error::Unpack {
                image: r.clone(),
                source,
            }
        })?;
    }
    std::fs::create_dir_all(store.rootfs_dir()).map_err(|source| store::Error::Io {
        path: store.rootfs_dir(),
        action: "create the rootfs directory",
        source,
    })?;
    match t.persist(&dest) {
        Ok(()) => {}
        // Another run got there first: use its (complete) directory.
        Err(_) if dest.is_dir() => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Prepared {
        rootfs: dest,
        digest,
        config,
        unpacked: true,
    })
}
