//! The io kernel's disk image for one `vclab compare` run: written once, with the workload's own
//! generator ([`vclab_workload::io::image_block`], the same bytes as `vclab-workload io-image`),
//! as `vclab-io-<pid>.img` on a disk-backed file system (default `/var/tmp`; tmpfs refuses the
//! bare row's O_DIRECT). Every row reads the same image; each io run rewrites its scratch area
//! with data made from the seed, so later runs read the same bytes as the first.
//!
//! Removed when dropped (the end of the run, an error); recorded with the harness's guard first,
//! which removes it after a SIGKILL or a Ctrl-C of the harness.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vclab_workload::io::BLOCK_SIZE;

use crate::spawn::guard::{GuardError, Harness};

/// The default directory of the image: disk-backed on Debian (`/tmp` may be a tmpfs).
pub const DEFAULT_DIR: &str = "/var/tmp";

/// Errors making the image.
#[derive(Debug, thiserror::Error)]
pub enum IoImageError {
    /// The size is not whole 4 KiB blocks.
    #[error("io image size {size} bytes is not a positive multiple of {BLOCK_SIZE}: give the io kernel a size of whole 4 KiB blocks")]
    Size {
        /// The refused size.
        size: u64,
    },
    /// The harness's guard could not record the image.
    #[error("cannot record the io image {path} with the harness's guard: {source}")]
    Register {
        /// The image.
        path: PathBuf,
        /// The guard's error.
        source: GuardError,
    },
    /// The image could not be written.
    #[error("cannot write the io image {path}: {source} (give --io-dir a writable directory on a disk-backed file system with room for it)")]
    Write {
        /// The image.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// The image file; removed on drop.
#[derive(Debug)]
pub struct IoImage {
    path: PathBuf,
    harness: Option<Arc<Harness>>,
}

/// `dir/vclab-io-<pid>.img`.
pub fn image_path(dir: &Path) -> PathBuf {
    dir.join(format!("vclab-io-{}.img", std::process::id()))
}

impl IoImage {
    /// Writes the image of `size` bytes for `seed` in `dir`, recorded first with `harness`'s
    /// guard (when given).
    pub fn create(
        dir: &Path,
        size: u64,
        seed: u64,
        harness: Option<Arc<Harness>>,
    ) -> Result<IoImage, IoImageError> {
        if size == 0 || size % BLOCK_SIZE as u64 != 0 {
            return Err(IoImageError::Size { size });
        }
        let path = image_path(dir);
        if let Some(h) = &harness {
            h.register_path(&path)
                .map_err(|source| IoImageError::Register {
                    path: path.clone(),
                    source,
                })?;
        }
        // From here on, a failure drops the image: the partial file goes with it.
        let image = IoImage { path, harness };
        image.write(size, seed)?;
        Ok(image)
    }

    fn write(&self, size: u64, seed: u64) -> Result<(), IoImageError> {
        let err = |source| IoImageError::Write {
            path: self.path.clone(),
            source,
        };
        let file = std::fs::File::create(&self.path).map_err(err)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut block = vec![0u8; BLOCK_SIZE];
        for b in 0..size / BLOCK_SIZE as u64 {
            vclab_workload::io::image_block(seed, b, &mut block);
            out.write_all(&block).map_err(err)?;
        }
        out.into_inner()
            .map_err(|e| err(e.into_error()))?
            .sync_all()
            .map_err(err)
    }

    /// The image.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for IoImage {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(h) = &self.harness {
            h.unregister_path(&self.path);
        }
    }
}

/// Whether `dir` is on a tmpfs (where O_DIRECT is refused: bare would read buffered).
pub fn on_tmpfs(dir: &Path) -> bool {
    nix::sys::statfs::statfs(dir)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_is_the_workloads_and_goes_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let size = 8 * BLOCK_SIZE as u64;
        let image = IoImage::create(dir.path(), size, 7, None).unwrap();
        let path = image.path().to_path_buf();
        assert_eq!(path, image_path(dir.path()));
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, size);
        let mut block = vec![0u8; BLOCK_SIZE];
        vclab_workload::io::image_block(7, 5, &mut block);
        assert_eq!(&bytes[5 * BLOCK_SIZE..6 * BLOCK_SIZE], &block[..]);
        vclab_workload::io::image_block(8, 5, &mut block);
        assert_ne!(&bytes[5 * BLOCK_SIZE..6 * BLOCK_SIZE], &block[..]);
        drop(image);
        assert!(!path.exists());
    }

    #[test]
    fn bad_sizes_and_directories_are_refused_and_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let e = IoImage::create(dir.path(), 4097, 1, None).unwrap_err();
        assert!(e.to_string().contains("4097"), "{e}");
        let missing = dir.path().join("no/such/dir");
        let e = IoImage::create(&missing, 4096, 1, None).unwrap_err();
        assert!(e.to_string().contains("--io-dir"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
