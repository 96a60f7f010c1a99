//! The built image written as an OCI layout: in a temporary layout in the
//! store, renamed into place at the end ([`crate::store::Store::commit`]),
//! and, with `--layout DIR`, into that layout too.

use std::path::Path;

use oci_spec::image::{Descriptor, MediaType};

use super::state::{Layer, State};
use super::{config, Options};
use crate::layout::{self, Layout, LayoutError, NewImage};
use crate::store;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The layout could not be written.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The config could not be assembled.
    #[error(transparent)]
    Config(#[from] config::Error),
    /// The store could not take the image.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// A cached layer blob could not be copied.
    #[error("cannot copy the layer blob {path} into the layout: {source}")]
    Blob {
        /// The cached blob.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Writes the image to the store (and `--layout`); returns the manifest digest.
pub fn emit(opts: &Options, st: &State) -> Result<String, Error> {
    let staged = opts.store.stage(&opts.reference)?;
    let digest = write(&Layout::create(staged.path())?, opts, st, true)?;
    if let Some(dir) = &opts.layout {
        // Copies, not links: a layout outside the store must not share
        // inodes with the cache.
        let again = write(&Layout::create(dir)?, opts, st, false)?;
        debug_assert_eq!(again, digest);
    }
    opts.store.commit(staged, &opts.reference)?;
    Ok(digest)
}

fn write(layout: &Layout, opts: &Options, st: &State, link: bool) -> Result<String, Error> {
    let mut layers = Vec::new();
    for l in &st.layers {
        layers.push((put_layer(layout, l, link)?, l.diff_id.clone()));
    }
    let image = NewImage {
        tag: opts.reference.tag.clone(),
        created: opts.epoch,
        config: Some(config::runtime(st)?),
        layers,
        history: config::history(st, opts.epoch)?,
    };
    Ok(layout.write_image(&image)?.manifest.digest().to_string())
}

/// The cached blob into the layout: with `link`, a hard link when both are
/// on one file system; else a copy.
fn put_layer(layout: &Layout, l: &Layer, link: bool) -> Result<Descriptor, Error> {
    let to = layout.blob_path(&l.digest)?;
    let linked = || link && std::fs::hard_link(&l.blob, &to).is_ok();
    if !to.exists() && !linked() {
        copy(&l.blob, &to)?;
    }
    Ok(Descriptor::new(
        MediaType::from(l.media_type.as_str()),
        l.size,
        layout::blob::parse_digest(&l.digest)?,
    ))
}

fn copy(from: &Path, to: &Path) -> Result<(), Error> {
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp)
        .and_then(|_| std::fs::rename(&tmp, to))
        .map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            Error::Blob {
                path: from.to_path_buf(),
                source,
            }
        })
}
