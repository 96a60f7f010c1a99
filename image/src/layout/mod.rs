//! An OCI image layout on disk: `oci-layout`, `index.json`,
//! `blobs/sha256/<hex>`, written and read with `oci-spec` types.
//!
//! Blobs are written to a temporary file in `blobs/sha256/` and renamed to
//! their digest ([`blob`]); every blob read is checked against its
//! descriptor's size and digest. [`image`] writes an image (config with
//! `rootfs.diff_ids`, `history` and `created` from SOURCE_DATE_EPOCH;
//! manifest; index entry tagged with `org.opencontainers.image.ref.name`)
//! and reads one back by tag. JSON is canonical ([`json`]): the same inputs
//! give the same manifest digest.

pub mod blob;
pub mod epoch;
pub mod image;
pub mod json;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::image::{ImageIndex, ImageIndexBuilder, MediaType, OciLayout, SCHEMA_VERSION};

pub use blob::BlobWriter;
pub use epoch::{rfc3339, source_date_epoch, EpochError};
pub use image::{check_tag, history_entry, Image, NewImage, WrittenImage};

/// The layout version this crate writes and reads.
pub const LAYOUT_VERSION: &str = "1.0.0";

/// Why a layout operation failed; each names the layout, blob or tag.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// A file of the layout could not be read or written.
    #[error("OCI layout {path}: {action}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The directory is not an OCI image layout.
    #[error("{path} is not an OCI image layout ({why}); write one with skopeo copy, buildah push oci:DIR or vclab image build")]
    NotALayout {
        /// The directory.
        path: PathBuf,
        /// What is missing or wrong.
        why: String,
    },
    /// A JSON document of the layout could not be parsed.
    #[error("OCI layout {path}: {what} is not valid: {reason}")]
    BadJson {
        /// The file.
        path: PathBuf,
        /// Which document.
        what: &'static str,
        /// The parser's reason.
        reason: String,
    },
    /// A JSON document could not be made.
    #[error("OCI layout: cannot build the {what}: {reason}")]
    Build {
        /// Which document.
        what: &'static str,
        /// The reason.
        reason: String,
    },
    /// A digest that is not `sha256:<64 lowercase hex>`.
    #[error("OCI layout: digest {digest:?} is not sha256:<64 hex digits>; only sha256 blobs are supported")]
    BadDigest {
        /// The digest.
        digest: String,
    },
    /// A blob named in a descriptor is absent.
    #[error(
        "OCI layout {path}: blob {digest} is missing; the layout is incomplete (copy it again)"
    )]
    MissingBlob {
        /// The blob's expected file.
        path: PathBuf,
        /// Its digest.
        digest: String,
    },
    /// A blob whose content does not hash to its digest.
    #[error("OCI layout {path}: blob {blob} is corrupt: its content hashes to {found}; the layout is damaged (copy it again)")]
    DigestMismatch {
        /// The blob's file.
        path: PathBuf,
        /// The digest it should have.
        blob: String,
        /// The digest it has.
        found: String,
    },
    /// A blob of another size than its descriptor says.
    #[error("OCI layout {path}: blob {blob} has {found} bytes, its descriptor says {expected}; the layout is damaged")]
    SizeMismatch {
        /// The blob's file.
        path: PathBuf,
        /// The blob's digest.
        blob: String,
        /// The size in the descriptor.
        expected: u64,
        /// The size on disk.
        found: u64,
    },
    /// No image with the tag asked for.
    #[error("OCI layout {path}: no image tagged {tag:?} (tags: {available})")]
    NoSuchTag {
        /// The layout.
        path: PathBuf,
        /// The tag asked for.
        tag: String,
        /// The tags present.
        available: String,
    },
    /// No tag given, no `latest`, and several images.
    #[error("OCI layout {path}: no tag given and no \"latest\" among {available}: name one (oci:DIR:TAG)")]
    AmbiguousTag {
        /// The layout.
        path: PathBuf,
        /// The tags present.
        available: String,
    },
    /// A tag OCI's `ref.name` rules refuse.
    #[error("tag {tag:?} is not valid: use letters, digits, '_', '.' and '-', starting with a letter, digit or '_', at most 128")]
    BadTag {
        /// The tag.
        tag: String,
    },
    /// Content this crate does not handle (nested index, zstd layer...).
    #[error("OCI layout {path}: {what} {digest} has media type {media_type}, which vclab does not support ({hint})")]
    Unsupported {
        /// The layout.
        path: PathBuf,
        /// What it is (manifest, layer).
        what: &'static str,
        /// Its digest.
        digest: String,
        /// Its media type.
        media_type: String,
        /// What is supported.
        hint: &'static str,
    },
    /// An image whose parts disagree.
    #[error("OCI layout {path}: image {digest}: {why}")]
    Inconsistent {
        /// The layout.
        path: PathBuf,
        /// The manifest digest.
        digest: String,
        /// What disagrees.
        why: String,
    },
}

pub(crate) fn io_err(path: &Path, action: &'static str) -> impl FnOnce(io::Error) -> LayoutError {
    let path = path.to_path_buf();
    move |source| LayoutError::Io {
        path,
        action,
        source,
    }
}

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Opens the layout at `dir`, making it (directory, `oci-layout`, an
    /// empty `index.json`, `blobs/sha256/`) where it is missing.
    pub fn create(dir: &Path) -> Result<Self, LayoutError> {
        let blobs = dir.join("blobs/sha256");
        fs::create_dir_all(&blobs).map_err(io_err(&blobs, "create the blob directory"))?;
        let marker = dir.join("oci-layout");
        if !marker.exists() {
            let text = format!("{{\"imageLayoutVersion\":\"{LAYOUT_VERSION}\"}}");
            write_atomic(dir, &marker, text.as_bytes())?;
        }
        let layout = Self {
            root: dir.to_path_buf(),
        };
        if !dir.join("index.json").exists() {
            layout.write_index(&empty_index()?)?;
        }
        Self::open(dir)
    }

    /// Opens an existing layout: `oci-layout` with version 1.0.x and a
    /// readable `index.json`.
    pub fn open(dir: &Path) -> Result<Self, LayoutError> {
        let marker = dir.join("oci-layout");
        let not = |why: String| LayoutError::NotALayout {
            path: dir.to_path_buf(),
            why,
        };
        let text = fs::read(&marker).map_err(|e| not(format!("cannot read oci-layout: {e}")))?;
        let parsed = OciLayout::from_reader(text.as_slice())
            .map_err(|e| not(format!("oci-layout is not valid: {e}")))?;
        if !parsed.image_layout_version().starts_with("1.0") {
            return Err(not(format!(
                "imageLayoutVersion {:?}, expected 1.0.x",
                parsed.image_layout_version()
            )));
        }
        let layout = Self {
            root: dir.to_path_buf(),
        };
        layout.index()?;
        Ok(layout)
    }

    /// The layout's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The parsed `index.json`.
    pub fn index(&self) -> Result<ImageIndex, LayoutError> {
        let path = self.root.join("index.json");
        let text = fs::read(&path).map_err(|e| LayoutError::NotALayout {
            path: self.root.clone(),
            why: format!("cannot read index.json: {e}"),
        })?;
        ImageIndex::from_reader(text.as_slice()).map_err(|e| LayoutError::BadJson {
            path,
            what: "index.json",
            reason: e.to_string(),
        })
    }

    /// Writes `index` as `index.json` (canonical JSON, temp file + rename).
    pub fn write_index(&self, index: &ImageIndex) -> Result<(), LayoutError> {
        let bytes = json::canonical(index).map_err(|e| LayoutError::Build {
            what: "index",
            reason: e.to_string(),
        })?;
        write_atomic(&self.root, &self.root.join("index.json"), &bytes)
    }
}

fn empty_index() -> Result<ImageIndex, LayoutError> {
    ImageIndexBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageIndex)
        .manifests(Vec::new())
        .build()
        .map_err(|e| LayoutError::Build {
            what: "index",
            reason: e.to_string(),
        })
}

/// Writes `bytes` to `path` through a temporary file in `dir`.
pub(crate) fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), LayoutError> {
    use std::io::Write;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io_err(dir, "create a temporary file"))?;
    tmp.write_all(bytes)
        .map_err(io_err(tmp.path(), "write a temporary file"))?;
    tmp.as_file()
        .sync_all()
        .map_err(io_err(tmp.path(), "sync a temporary file"))?;
    tmp.persist(path)
        .map_err(|e| io_err(path, "rename a temporary file into place")(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests;
