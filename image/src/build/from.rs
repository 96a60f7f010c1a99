//! `FROM oci:DIR[:TAG]`: an OCI image layout as the base. Its image is read
//! with every blob checked ([`crate::layout`]); each layer is unpacked once
//! into the cache by diff_id ([`super::tree`]); its runtime config and
//! history carry over.

use std::path::{Path, PathBuf};

use super::cache::{self, BlobInfo, Cache};
use super::state::{State, Step};
use super::tree;
use crate::layout::{Layout, LayoutError};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The layout is missing, damaged, or has no such tag.
    #[error("FROM oci:{dir}: {source}")]
    Layout {
        /// The directory as written.
        dir: PathBuf,
        /// Why.
        source: Box<LayoutError>,
    },
    /// The config and manifest disagree on the layer count.
    #[error("FROM oci:{dir}: the image config lists {diff_ids} diff_ids for {layers} layers: the image is damaged")]
    Layers {
        /// The directory.
        dir: PathBuf,
        /// diff_ids in the config.
        diff_ids: usize,
        /// Layers in the manifest.
        layers: usize,
    },
    /// A blob could not be copied into the cache.
    #[error("cannot copy blob {path} into the layer cache: {source}")]
    Copy {
        /// The blob.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A layer could not be unpacked.
    #[error(transparent)]
    Tree(#[from] tree::Error),
    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] cache::Error),
}

/// Whether every layer of the base image is in the cache already (the
/// image read and checked).
pub fn all_cached(cache: &Cache, dir: &Path, tag: Option<&str>) -> Result<bool, Error> {
    let lay = |source| Error::Layout {
        dir: dir.to_path_buf(),
        source: Box::new(source),
    };
    let image = Layout::open(dir)
        .and_then(|l| l.read_image(tag))
        .map_err(lay)?;
    Ok(image
        .config
        .rootfs()
        .diff_ids()
        .iter()
        .all(|d| cache.layer(d).is_some()))
}

/// Reads the base image into `st`; returns (layers found in the cache,
/// layers unpacked now).
pub fn apply(
    cache: &Cache,
    st: &mut State,
    dir: &Path,
    tag: Option<&str>,
) -> Result<(usize, usize), Error> {
    let lay = |source| Error::Layout {
        dir: dir.to_path_buf(),
        source: Box::new(source),
    };
    let layout = Layout::open(dir).map_err(lay)?;
    let image = layout.read_image(tag).map_err(lay)?;
    let diff_ids = image.config.rootfs().diff_ids().clone();
    let descs = image.layers().to_vec();
    if diff_ids.len() != descs.len() {
        return Err(Error::Layers {
            dir: dir.to_path_buf(),
            diff_ids: diff_ids.len(),
            layers: descs.len(),
        });
    }
    let (mut cached, mut built) = (0, 0);
    for (desc, diff_id) in descs.iter().zip(&diff_ids) {
        if let Some(l) = cache.layer(diff_id) {
            st.layers.push(l);
            cached += 1;
            continue;
        }
        let blob = layout.blob_path(desc.digest().as_ref()).map_err(lay)?;
        let staged = cache.stage()?;
        std::fs::copy(&blob, staged.blob()).map_err(|source| Error::Copy {
            path: blob.clone(),
            source,
        })?;
        tree::unpack(&staged.blob(), &staged.tree())?;
        let info = BlobInfo {
            diff_id: diff_id.clone(),
            digest: desc.digest().to_string(),
            size: desc.size(),
            media_type: desc.media_type().to_string(),
        };
        st.layers.push(cache.commit(staged, &info, None)?);
        built += 1;
    }
    // The base's runtime config and history.
    if let Some(c) = image.config.config() {
        for e in c.env().iter().flatten() {
            if let Some((k, v)) = e.split_once('=') {
                st.set_env(k, v);
            }
        }
        st.cmd = c.cmd().clone();
        st.cmd_from_base = st.cmd.is_some();
        st.entrypoint = c.entrypoint().clone();
        st.workdir = c.working_dir().clone().unwrap_or_default();
        st.user = c.user().clone().unwrap_or_default();
        for (k, v) in c.labels().iter().flatten() {
            st.labels.insert(k.clone(), v.clone());
        }
        st.exposed
            .extend(c.exposed_ports().iter().flatten().cloned());
    }
    let history = image.config.history().clone().unwrap_or_default();
    let with_layer = history
        .iter()
        .filter(|h| !h.empty_layer().unwrap_or(false))
        .count();
    if with_layer == descs.len() {
        for h in history {
            st.history.push(Step {
                created_by: h.created_by().clone().unwrap_or_default(),
                empty_layer: h.empty_layer().unwrap_or(false),
            });
        }
    } else {
        for i in 0..descs.len() {
            st.history.push(Step {
                created_by: format!("base layer {}", i + 1),
                empty_layer: false,
            });
        }
    }
    Ok((cached, built))
}
