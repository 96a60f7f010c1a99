//! The io kernel's host disk: an image file opened with O_DIRECT where the filesystem allows it
//! (tmpfs refuses: then buffered, and the result line says `"direct":false`), and the writer of
//! the image every runtime reads (`io-image`).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use vclab_workload::io::{image_block, BlockSource, BLOCK_SIZE, BUFFER_ALIGN, SECTOR_SIZE};

/// A failure opening the disk or writing the image.
#[derive(Debug)]
pub enum DiskError {
    /// The disk file could not be opened read-write.
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Its size could not be found.
    Size {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// An image size that is not whole 4 KiB blocks.
    ImageSize {
        /// The refused size.
        size: u64,
    },
    /// The image could not be written.
    Write {
        /// The file being written.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskError::Open { path, source } => write!(
                f,
                "cannot open the disk {} read-write: {source} (the io kernel writes its scratch \
                 area: make it with `vclab-workload io-image` and make it writable)",
                path.display()
            ),
            DiskError::Size { path, source } => {
                write!(f, "cannot find the size of the disk {}: {source}", path.display())
            }
            DiskError::ImageSize { size } => write!(
                f,
                "image size {size} bytes is not a positive multiple of {BLOCK_SIZE}: give whole 4 KiB blocks"
            ),
            DiskError::Write { path, source } => {
                write!(f, "cannot write the image {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for DiskError {}

/// An open disk file.
pub struct FileDisk {
    file: File,
    sectors: u64,
    direct: bool,
}

impl FileDisk {
    /// Opens `path` read-write with O_DIRECT; when the filesystem refuses O_DIRECT (EINVAL at
    /// open, or on a first aligned read), opens it buffered instead.
    pub fn open(path: &Path) -> Result<FileDisk, DiskError> {
        let open = |flags: i32| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(flags)
                .open(path)
        };
        FileDisk::open_with(path, open, direct_read_works)
    }

    /// [`FileDisk::open`] with the open call and the O_DIRECT read check given (tests refuse
    /// O_DIRECT through them).
    fn open_with(
        path: &Path,
        open: impl Fn(i32) -> io::Result<File>,
        direct_works: impl Fn(&File) -> bool,
    ) -> Result<FileDisk, DiskError> {
        let open_err = |source| DiskError::Open {
            path: path.into(),
            source,
        };
        let mut file = match open(libc::O_DIRECT) {
            Ok(file) if direct_works(&file) => Some(file),
            Ok(_) => None,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => None,
            Err(e) => return Err(open_err(e)),
        };
        let direct = file.is_some();
        let mut file = match file.take() {
            Some(file) => file,
            None => open(0).map_err(open_err)?,
        };
        // A block device's metadata says 0 bytes: its end is its size.
        let bytes = file
            .seek(SeekFrom::End(0))
            .map_err(|source| DiskError::Size {
                path: path.into(),
                source,
            })?;
        Ok(FileDisk {
            file,
            sectors: bytes / SECTOR_SIZE,
            direct,
        })
    }

    /// Whether the file is read with O_DIRECT (the page cache bypassed).
    pub fn direct(&self) -> bool {
        self.direct
    }
}

/// Whether an aligned 4 KiB read at offset 0 works (some filesystems accept O_DIRECT at open
/// and refuse the reads with EINVAL). An empty file reads 0 bytes, which is fine.
fn direct_read_works(file: &File) -> bool {
    let mut bytes = vec![0u8; BLOCK_SIZE + BUFFER_ALIGN];
    let offset = bytes.as_ptr().align_offset(BUFFER_ALIGN);
    match bytes.get_mut(offset..offset + BLOCK_SIZE) {
        Some(block) => file.read_at(block, 0).is_ok(),
        None => false,
    }
}

impl BlockSource for FileDisk {
    type Error = io::Error;

    fn sectors(&self) -> u64 {
        self.sectors
    }

    fn read(&mut self, sector: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, sector * SECTOR_SIZE)
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> io::Result<()> {
        self.file.write_all_at(buf, sector * SECTOR_SIZE)
    }
}

/// Writes the io image of `size` bytes made from `seed` to `out` (through a temporary file in
/// the same directory, renamed at the end, so a reader never sees half an image).
pub fn write_image(out: &Path, size: u64, seed: u64) -> Result<(), DiskError> {
    if size == 0 || size % BLOCK_SIZE as u64 != 0 {
        return Err(DiskError::ImageSize { size });
    }
    let mut tmp = out.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let err = |source| DiskError::Write {
        path: out.into(),
        source,
    };
    let result = (|| {
        let mut w = io::BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        let mut block = [0u8; BLOCK_SIZE];
        for b in 0..size / BLOCK_SIZE as u64 {
            image_block(seed, b, &mut block);
            w.write_all(&block)?;
        }
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, out)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_refusing_direct(path: &Path) -> impl Fn(i32) -> io::Result<File> + '_ {
        move |flags| {
            if flags & libc::O_DIRECT != 0 {
                return Err(io::Error::from_raw_os_error(libc::EINVAL));
            }
            OpenOptions::new().read(true).write(true).open(path)
        }
    }

    #[test]
    fn o_direct_refused_at_open_or_on_read_falls_back_to_buffered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.img");
        write_image(&path, 8192, 1).unwrap();
        let disk = FileDisk::open_with(&path, open_refusing_direct(&path), |_| true).unwrap();
        assert!(!disk.direct());
        assert_eq!(disk.sectors(), 16);
        let open = |flags: i32| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(flags)
                .open(&path)
        };
        let disk = FileDisk::open_with(&path, open, |_| false).unwrap();
        assert!(!disk.direct());
        let mut disk = FileDisk::open_with(&path, open, |_| true).unwrap();
        assert!(disk.direct());
        // Reads and writes land where they should (aligned buffer for O_DIRECT).
        let mut bytes = vec![0u8; 2 * BLOCK_SIZE];
        let at = bytes.as_ptr().align_offset(BUFFER_ALIGN);
        let block = &mut bytes[at..at + BLOCK_SIZE];
        disk.read(8, block).unwrap();
        let mut want = [0u8; BLOCK_SIZE];
        image_block(1, 1, &mut want);
        assert_eq!(block, &want[..]);
        block.fill(7);
        disk.write(0, block).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap()[..BLOCK_SIZE],
            [7u8; BLOCK_SIZE]
        );
        assert!(disk.read(16, block).is_err(), "past the end");
    }

    #[test]
    fn other_open_errors_and_bad_image_sizes_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.img");
        let err = FileDisk::open(&missing).err().unwrap();
        assert!(err.to_string().contains("missing.img"), "{err}");
        for size in [0, 4095, 8193] {
            assert!(matches!(
                write_image(&dir.path().join("x"), size, 1),
                Err(DiskError::ImageSize { .. })
            ));
        }
        assert!(!dir.path().join("x").exists());
        let err = write_image(&dir.path().join("no/such/dir.img"), 4096, 1).unwrap_err();
        assert!(err.to_string().contains("no/such/dir.img"), "{err}");
    }
}
