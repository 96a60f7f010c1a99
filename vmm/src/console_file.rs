//! The file `--console PATH` writes the guest's serial output to: created (or truncated) as a
//! regular file, or opened as a FIFO, without blocking: a FIFO nobody reads fails at once
//! (ENXIO) instead of hanging the VMM before the VM is built.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens `path` for the console. Writes then block again (a slow reader slows the guest's
/// console rather than losing its bytes).
pub fn create(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let fd = file.as_raw_fd();
    // SAFETY: F_GETFL on an fd this function owns; no pointers.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: F_SETFL with an int argument on the same owned fd.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

/// What to do about an error of [`create`].
pub fn hint(err: &io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(libc::ENXIO) => "it is a FIFO that no process reads: start its reader first",
        Some(libc::EISDIR) => "it is a directory: give a file path",
        Some(libc::ENOENT) => "its directory does not exist",
        Some(libc::EACCES) | Some(libc::EROFS) => "it cannot be written here",
        _ => "give a writable file path, stdout or off",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_without_reader_fails_at_once_and_a_file_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path; mkfifo only reads it.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = create(&fifo).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENXIO));
        assert!(hint(&err).contains("FIFO"));

        let file = dir.path().join("console.txt");
        std::fs::write(&file, b"old text").unwrap();
        let f = create(&file).unwrap();
        drop(f);
        assert_eq!(std::fs::read(&file).unwrap(), b"");
        assert!(hint(&create(dir.path()).unwrap_err()).contains("directory"));
    }

    #[test]
    fn a_fifo_with_a_reader_opens_and_blocks_again() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let f = create(&fifo).unwrap();
        // SAFETY: F_GETFL on a live fd.
        let flags = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(flags & libc::O_NONBLOCK, 0);
        drop(reader);
    }
}
