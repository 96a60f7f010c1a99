//! The raw disk image behind a virtio-blk device: opened and checked once, then read and
//! written with positioned I/O (`pread`/`pwrite`), flushed with `fdatasync`.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::{Path, PathBuf};

use super::SECTOR_SIZE;

/// Length of the device ID that GET_ID returns (`VIRTIO_BLK_ID_BYTES`, §5.2.6).
pub const ID_BYTES: usize = 20;

/// Errors of opening or using a disk image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The path does not exist.
    #[error("disk image {path} does not exist: create one (e.g. `truncate -s 64M {path}`) or fix the path")]
    Missing {
        /// The image.
        path: PathBuf,
    },
    /// The path is a directory.
    #[error("disk image {path} is a directory: give the path of a raw image file")]
    Directory {
        /// The image.
        path: PathBuf,
    },
    /// The path is neither a regular file nor a block device (a FIFO, socket, char device).
    #[error("disk image {path} is not a regular file or block device: give a raw image file")]
    NotAFile {
        /// The image.
        path: PathBuf,
    },
    /// The size is not whole sectors.
    #[error("disk image {path} is {size} bytes, not a multiple of 512: pad it with `truncate -s {padded} {path}`")]
    NotSectorMultiple {
        /// The image.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The next multiple of 512.
        padded: u64,
    },
    /// The file cannot be written but the disk was not attached read-only.
    #[error("disk image {path} is read-only: attach it with `--disk {path},ro`")]
    ReadOnly {
        /// The image.
        path: PathBuf,
    },
    /// `,direct` on a file system that refuses O_DIRECT.
    #[error("disk image {path} cannot be opened with O_DIRECT (its file system refuses it): drop `,direct`")]
    NoDirect {
        /// The image.
        path: PathBuf,
    },
    /// Any other failure of stat, open or seek.
    #[error("cannot {what} disk image {path}: {source}")]
    Io {
        /// The operation.
        what: &'static str,
        /// The image.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// An open raw disk image.
#[derive(Debug)]
pub struct Disk {
    file: File,
    path: PathBuf,
    size: u64,
    read_only: bool,
    id: [u8; ID_BYTES],
}

impl Disk {
    /// Opens `path` (read-only when `read_only`) and checks it: it exists, is a regular file
    /// or block device, holds whole 512-byte sectors, and is writable unless `read_only`.
    pub fn open(path: &Path, read_only: bool) -> Result<Disk, Error> {
        Disk::open_with(path, read_only, false)
    }

    /// [`Disk::open`], with O_DIRECT when `direct` (`--disk PATH,direct`: the image's I/O
    /// bypasses the host's page cache, as QEMU's `cache=none`).
    pub fn open_with(path: &Path, read_only: bool, direct: bool) -> Result<Disk, Error> {
        use std::os::unix::fs::OpenOptionsExt;
        let owned = || path.to_path_buf();
        // Checked before opening: opening a FIFO would block.
        let meta = std::fs::metadata(path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => Error::Missing { path: owned() },
            _ => Error::Io {
                what: "stat",
                path: owned(),
                source,
            },
        })?;
        let kind = meta.file_type();
        if kind.is_dir() {
            return Err(Error::Directory { path: owned() });
        }
        if !kind.is_file() && !kind.is_block_device() {
            return Err(Error::NotAFile { path: owned() });
        }
        // Root may write a file without write bits; a disk the owner marked read-only is
        // attached read-only all the same.
        if !read_only && meta.permissions().readonly() {
            return Err(Error::ReadOnly { path: owned() });
        }
        let file = OpenOptions::new()
            .read(true)
            .write(!read_only)
            .custom_flags(if direct { libc::O_DIRECT } else { 0 })
            .open(path)
            .map_err(|source| match source.raw_os_error() {
                Some(libc::EACCES | libc::EPERM | libc::EROFS) if !read_only => {
                    Error::ReadOnly { path: owned() }
                }
                Some(libc::EINVAL) if direct => Error::NoDirect { path: owned() },
                _ => Error::Io {
                    what: "open",
                    path: owned(),
                    source,
                },
            })?;
        Disk::from_file(file, path, read_only)
    }

    /// A disk over an already open `file` (named `path` in messages and the device ID); checks
    /// its size. `file` must be open for writing unless `read_only`.
    pub fn from_file(mut file: File, path: &Path, read_only: bool) -> Result<Disk, Error> {
        // A block device's metadata has no length: ask the end of the file instead.
        let size = file.seek(SeekFrom::End(0)).map_err(|source| Error::Io {
            what: "measure",
            path: path.to_path_buf(),
            source,
        })?;
        if size % SECTOR_SIZE != 0 {
            return Err(Error::NotSectorMultiple {
                path: path.to_path_buf(),
                size,
                padded: size.div_ceil(SECTOR_SIZE) * SECTOR_SIZE,
            });
        }
        Ok(Disk {
            file,
            path: path.to_path_buf(),
            size,
            read_only,
            id: id_from_path(path),
        })
    }

    /// The image's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The size in bytes (a multiple of 512).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The size in 512-byte sectors (the config space's `capacity`).
    pub fn sectors(&self) -> u64 {
        self.size / SECTOR_SIZE
    }

    /// Whether the disk was attached read-only.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// The device ID GET_ID returns: the image's file name, cut at 20 bytes, NUL-padded.
    pub fn id(&self) -> &[u8; ID_BYTES] {
        &self.id
    }

    /// Reads exactly `buf.len()` bytes at byte `offset`.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    /// Writes all of `buf` at byte `offset`.
    pub fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }

    /// Makes the written data durable (`fdatasync`).
    pub fn flush(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// The file name's first 20 bytes (cut at a character boundary), NUL-padded; "vclab-disk"
/// when the path has no file name.
fn id_from_path(path: &Path) -> [u8; ID_BYTES] {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "vclab-disk".to_owned());
    let mut end = name.len().min(ID_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let mut id = [0u8; ID_BYTES];
    id[..end].copy_from_slice(&name.as_bytes()[..end]);
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn image(dir: &tempfile::TempDir, name: &str, size: u64) -> PathBuf {
        let path = dir.path().join(name);
        File::create(&path).unwrap().set_len(size).unwrap();
        path
    }

    #[test]
    fn a_good_image_opens_with_its_size_and_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = image(&dir, "disk0.img", 8 * 512);
        let disk = Disk::open(&path, false).unwrap();
        assert_eq!(
            (disk.size(), disk.sectors(), disk.read_only()),
            (4096, 8, false)
        );
        assert_eq!(&disk.id()[..9], b"disk0.img");
        assert!(disk.id()[9..].iter().all(|&b| b == 0));
    }

    #[test]
    fn bad_images_are_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.img");
        let e = Disk::open(&missing, false).unwrap_err();
        assert!(matches!(e, Error::Missing { .. }), "{e}");
        assert!(e.to_string().contains("truncate -s"), "{e}");

        let e = Disk::open(dir.path(), true).unwrap_err();
        assert!(matches!(e, Error::Directory { .. }), "{e}");

        let odd = image(&dir, "odd.img", 1000);
        let e = Disk::open(&odd, false).unwrap_err();
        assert!(
            e.to_string()
                .contains("is 1000 bytes, not a multiple of 512"),
            "{e}"
        );
        assert!(e.to_string().contains("truncate -s 1024"), "{e}");

        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: `c` is a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(
            Disk::open(&fifo, true),
            Err(Error::NotAFile { .. })
        ));
    }

    #[test]
    fn a_read_only_file_needs_ro() {
        let dir = tempfile::tempdir().unwrap();
        let path = image(&dir, "ro.img", 512);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        let e = Disk::open(&path, false).unwrap_err();
        assert!(matches!(e, Error::ReadOnly { .. }), "{e}");
        assert!(e.to_string().contains(",ro`"), "{e}");
        let disk = Disk::open(&path, true).unwrap();
        assert!(disk.read_only());
    }

    #[test]
    fn long_names_are_cut_at_20_bytes_on_a_char_boundary() {
        let id = id_from_path(Path::new("/x/ééééééééééé.img"));
        let text = std::str::from_utf8(id.split(|&b| b == 0).next().unwrap()).unwrap();
        assert_eq!(text, "éééééééééé");
        assert_eq!(&id_from_path(Path::new("/"))[..10], b"vclab-disk");
    }
}
