//! One layer blob unpacked on its own into an overlay lower directory: the
//! files as in the tar, and its OCI whiteouts turned into overlayfs's
//! (`.wh.NAME` → a 0:0 character device `NAME`, `.wh..wh..opq` → the
//! `trusted.overlay.opaque` attribute on its directory), so the layer
//! directories stacked as an overlay show the image's file system.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The blob could not be read or an entry not written.
    #[error("cannot unpack layer {blob} into {tree}: {source} (is the blob a valid tar.gz?)")]
    Unpack {
        /// The blob.
        blob: PathBuf,
        /// The layer directory.
        tree: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An entry's path leaves the layer.
    #[error(
        "layer {blob} has an entry {entry:?} outside its root: the image is corrupt or hostile"
    )]
    Escape {
        /// The blob.
        blob: PathBuf,
        /// The entry path.
        entry: String,
    },
}

/// Unpacks `blob` (gzip'd or plain tar) into the empty directory `tree`.
pub fn unpack(blob: &Path, tree: &Path) -> Result<(), Error> {
    let io = |source| Error::Unpack {
        blob: blob.to_path_buf(),
        tree: tree.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(blob).map_err(io)?;
    let reader = crate::layer::tar_stream(f).map_err(io)?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(true);
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let path = entry.path().map_err(io)?.into_owned();
        let confined = path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if !confined {
            return Err(Error::Escape {
                blob: blob.to_path_buf(),
                entry: path.display().to_string(),
            });
        }
        let name = path.file_name().map(|n| n.as_bytes()).unwrap_or_default();
        let parent = tree.join(path.parent().unwrap_or(Path::new("")));
        if name == b".wh..wh..opq" {
            std::fs::create_dir_all(&parent).map_err(io)?;
            xattr::set(&parent, "trusted.overlay.opaque", b"y").map_err(io)?;
        } else if let Some(hidden) = name.strip_prefix(b".wh.") {
            std::fs::create_dir_all(&parent).map_err(io)?;
            whiteout(&parent.join(std::ffi::OsStr::from_bytes(hidden))).map_err(io)?;
        } else if let Some(kind) = special(entry.header()) {
            let h = entry.header();
            let (major, minor) = (
                h.device_major().ok().flatten().unwrap_or(0),
                h.device_minor().ok().flatten().unwrap_or(0),
            );
            let mode = h.mode().map_err(io)? & 0o7777;
            let at = tree.join(&path);
            std::fs::create_dir_all(&parent).map_err(io)?;
            mknod(&at, kind | mode, libc::makedev(major, minor)).map_err(io)?;
            let (uid, gid) = (h.uid().map_err(io)?, h.gid().map_err(io)?);
            let ids = (
                u32::try_from(uid).unwrap_or(0),
                u32::try_from(gid).unwrap_or(0),
            );
            std::os::unix::fs::lchown(&at, Some(ids.0), Some(ids.1)).map_err(io)?;
        } else {
            entry.unpack_in(tree).map_err(io)?;
        }
    }
    Ok(())
}

/// The file type bits of a device or FIFO entry.
fn special(h: &tar::Header) -> Option<libc::mode_t> {
    let t = h.entry_type();
    if t.is_character_special() {
        Some(libc::S_IFCHR)
    } else if t.is_block_special() {
        Some(libc::S_IFBLK)
    } else if t.is_fifo() {
        Some(libc::S_IFIFO)
    } else {
        None
    }
}

/// An overlayfs whiteout: a character device 0:0.
fn whiteout(path: &Path) -> std::io::Result<()> {
    mknod(path, libc::S_IFCHR, 0)
}

fn mknod(path: &Path, mode: libc::mode_t, dev: libc::dev_t) -> std::io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("a path with a NUL byte"))?;
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call;
    // mknod only reads it.
    let rc = unsafe { libc::mknod(c.as_ptr(), mode, dev) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn whiteouts_become_overlay_whiteouts() {
        let base = std::env::temp_dir().join(format!("vclab-tree-{}", std::process::id()));
        std::fs::create_dir_all(base.join("t")).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        for (p, data) in [
            ("d/.wh..wh..opq", &b""[..]),
            ("d/.wh.gone", b""),
            ("d/kept", b"k"),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_cksum();
            b.append_data(&mut h, p, data).unwrap();
        }
        std::fs::write(base.join("l.tar"), b.into_inner().unwrap()).unwrap();
        unpack(&base.join("l.tar"), &base.join("t")).unwrap();
        let t = base.join("t");
        assert_eq!(std::fs::read_to_string(t.join("d/kept")).unwrap(), "k");
        let wh = std::fs::symlink_metadata(t.join("d/gone")).unwrap();
        assert!(wh.file_type().is_char_device());
        assert_eq!(
            xattr::get(t.join("d"), "trusted.overlay.opaque")
                .unwrap()
                .as_deref(),
            Some(&b"y"[..])
        );
        std::fs::remove_dir_all(base).unwrap();
    }
}
