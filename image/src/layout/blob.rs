//! Blobs: written to a temporary file in `blobs/sha256/` while hashed, then
//! renamed to their digest; read back only after their size and digest
//! are checked.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::PathBuf;

use oci_spec::image::{Descriptor, Digest, MediaType};
use sha2::{Digest as _, Sha256};
use tempfile::NamedTempFile;

use super::{io_err, Layout, LayoutError};
use crate::layer::hash::{digest_string, HashingWriter};

/// A blob being written; [`BlobWriter::finish`] names it by its digest.
/// Dropped unfinished, its temporary file is removed.
pub struct BlobWriter {
    dir: PathBuf,
    file: HashingWriter<NamedTempFile>,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl BlobWriter {
    /// Renames the blob to `blobs/sha256/<hex>` and describes it.
    pub fn finish(self, media_type: MediaType) -> Result<Descriptor, LayoutError> {
        let (tmp, digest, size) = self.file.finish();
        tmp.as_file()
            .sync_all()
            .map_err(io_err(tmp.path(), "sync a blob"))?;
        let path = self.dir.join(&digest["sha256:".len()..]);
        tmp.persist(&path)
            .map_err(|e| io_err(&path, "rename a blob into place")(e.error))?;
        let digest = parse_digest(&digest)?;
        Ok(Descriptor::new(media_type, size, digest))
    }
}

/// The oci-spec form of a `sha256:<hex>` digest.
pub fn parse_digest(digest: &str) -> Result<Digest, LayoutError> {
    let bad = || LayoutError::BadDigest {
        digest: digest.to_string(),
    };
    let hex = digest.strip_prefix("sha256:").ok_or_else(bad)?;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(bad());
    }
    digest.parse().map_err(|_| bad())
}

impl Layout {
    /// A writer for a new blob.
    pub fn blob_writer(&self) -> Result<BlobWriter, LayoutError> {
        let dir = self.root.join("blobs/sha256");
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&dir)
            .map_err(io_err(&dir, "create a temporary blob"))?;
        Ok(BlobWriter {
            dir,
            file: HashingWriter::new(tmp),
        })
    }

    /// Stores `data` as a blob of `media_type`.
    pub fn put_blob(&self, media_type: MediaType, data: &[u8]) -> Result<Descriptor, LayoutError> {
        let mut writer = self.blob_writer()?;
        writer
            .write_all(data)
            .map_err(io_err(&writer.dir, "write a blob"))?;
        writer.finish(media_type)
    }

    /// The file of the blob `digest` (checked to be `sha256:<hex>`).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, LayoutError> {
        let hex = parse_digest(digest)?;
        Ok(self.root.join("blobs/sha256").join(hex.digest()))
    }

    /// The blob of `desc`, its size and digest checked.
    pub fn read_blob(&self, desc: &Descriptor) -> Result<Vec<u8>, LayoutError> {
        let path = self.blob_path(desc.digest().as_ref())?;
        let mut data = Vec::new();
        self.open_blob(desc)?
            .read_to_end(&mut data)
            .map_err(io_err(&path, "read a blob"))?;
        self.check(desc, &path, data.len() as u64, {
            let mut h = Sha256::new();
            h.update(&data);
            digest_string(h)
        })?;
        Ok(data)
    }

    /// Hashes the blob of `desc` and checks its size and digest.
    pub fn verify_blob(&self, desc: &Descriptor) -> Result<(), LayoutError> {
        let path = self.blob_path(desc.digest().as_ref())?;
        let mut file = self.open_blob(desc)?;
        let mut hasher = HashingWriter::new(io::sink());
        io::copy(&mut file, &mut hasher).map_err(io_err(&path, "read a blob"))?;
        let (_, found, size) = hasher.finish();
        self.check(desc, &path, size, found)
    }

    fn open_blob(&self, desc: &Descriptor) -> Result<File, LayoutError> {
        let digest = desc.digest().to_string();
        let path = self.blob_path(&digest)?;
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => LayoutError::MissingBlob {
                path: path.clone(),
                digest,
            },
            _ => io_err(&path, "open a blob")(e),
        })
    }

    fn check(
        &self,
        desc: &Descriptor,
        path: &std::path::Path,
        size: u64,
        found: String,
    ) -> Result<(), LayoutError> {
        let blob = desc.digest().to_string();
        if found != blob {
            return Err(LayoutError::DigestMismatch {
                path: path.to_path_buf(),
                blob,
                found,
            });
        }
        if size != desc.size() {
            return Err(LayoutError::SizeMismatch {
                path: path.to_path_buf(),
                blob,
                expected: desc.size(),
                found: size,
            });
        }
        Ok(())
    }

    /// Removes blobs no image of the index reaches (after a tag is
    /// replaced); returns how many.
    pub fn gc(&self) -> Result<usize, LayoutError> {
        let mut keep = std::collections::HashSet::new();
        for entry in self.index()?.manifests() {
            keep.insert(entry.digest().digest().to_string());
            let manifest = self.read_manifest(entry)?;
            keep.insert(manifest.config().digest().digest().to_string());
            for layer in manifest.layers() {
                keep.insert(layer.digest().digest().to_string());
            }
        }
        let dir = self.root.join("blobs/sha256");
        let mut removed = 0;
        for item in fs::read_dir(&dir).map_err(io_err(&dir, "list blobs"))? {
            let item = item.map_err(io_err(&dir, "list blobs"))?;
            let name = item.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name) && !name.starts_with(".tmp-") {
                fs::remove_file(item.path()).map_err(io_err(&item.path(), "remove a blob"))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
