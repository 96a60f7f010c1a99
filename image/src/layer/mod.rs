//! Layers: [`write()`] a deterministic gzip'd tar of a directory tree, and
//! [`unpack()`] a layer into a rootfs, applying OCI whiteouts.

pub mod hash;
pub mod unpack;
pub mod write;

pub use unpack::{tar_stream, unpack, unpack_file, UnpackError, UnpackOptions, UnpackStats};
pub use write::{write, WriteError};

/// The prefix of an OCI whiteout file (`.wh.<name>` deletes `<name>`).
pub const WHITEOUT_PREFIX: &[u8] = b".wh.";

/// An OCI opaque whiteout: the directory's lower contents are hidden.
pub const OPAQUE: &[u8] = b".wh..wh..opq";

/// Who owns the entries of a written layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Owner {
    /// uid/gid 0 (the reproducible default).
    #[default]
    Root,
    /// The files' own uid/gid.
    Keep,
    /// These ids for every entry.
    Fixed {
        /// The uid.
        uid: u32,
        /// The gid.
        gid: u32,
    },
}

/// How [`write()`] archives a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteOptions {
    /// Every entry's mtime (SOURCE_DATE_EPOCH; see
    /// [`crate::layout::source_date_epoch`]).
    pub mtime: u64,
    /// Entry ownership.
    pub owner: Owner,
    /// Whether the tree is an overlay upper directory: char devices 0:0
    /// become `.wh.<name>`, opaque directories get `.wh..wh..opq`.
    pub whiteouts: bool,
}

/// What [`write()`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// `sha256:` of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: String,
    /// `sha256:` of the gzip'd blob (the manifest's layer digest).
    pub digest: String,
    /// Size of the gzip'd blob in bytes.
    pub size: u64,
    /// Size of the uncompressed tar in bytes.
    pub uncompressed_size: u64,
    /// Number of entries (whiteout markers included).
    pub entries: usize,
}

#[cfg(test)]
mod tests;
