//! Unpacking a layer (gzip or plain tar) into a rootfs directory.
//!
//! Per entry: its path made relative and checked (no absolute path, no
//! `..`) → its parent directories walked inside the rootfs, created when
//! missing, refusing any that is a symlink (an entry never lands through
//! one) → OCI whiteouts applied (`.wh.<name>` removes `<name>`;
//! `.wh..wh..opq` empties the directory of what lower layers put there) →
//! whatever is in the way removed → the entry made (files, directories,
//! symlinks, fifos by the tar crate; hard links to a checked path inside the
//! rootfs; device nodes only as root, else skipped and counted).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use sha2::{Digest as _, Sha256};

use super::hash::digest_string;
use super::{OPAQUE, WHITEOUT_PREFIX};

/// Why a layer could not be unpacked. Entry errors name the entry.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The layer file could not be opened.
    #[error("unpack: cannot open layer {path}: {source}")]
    Open {
        /// The layer file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The archive could not be read (corrupt gzip or tar).
    #[error("unpack: cannot read the layer archive (corrupt gzip or tar?): {source}")]
    Read {
        /// The error.
        source: io::Error,
    },
    /// An entry with an absolute path or `..`.
    #[error("unpack: entry {entry:?} would land outside the rootfs ({why}); the layer is unsafe")]
    Outside {
        /// The entry's path.
        entry: String,
        /// absolute path, or `..`.
        why: &'static str,
    },
    /// An entry whose parent in the rootfs is a symlink.
    #[error("unpack: entry {entry:?} goes through the symlink {link:?} in the rootfs; refused")]
    ThroughSymlink {
        /// The entry's path.
        entry: String,
        /// The symlink, relative to the rootfs.
        link: String,
    },
    /// An entry whose parent in the rootfs is not a directory.
    #[error("unpack: entry {entry:?}: its parent {parent:?} is not a directory")]
    NotADirectory {
        /// The entry's path.
        entry: String,
        /// The parent, relative to the rootfs.
        parent: String,
    },
    /// A whiteout naming nothing (`.wh.`, `.wh..`).
    #[error("unpack: whiteout {entry:?} names no file")]
    BadWhiteout {
        /// The entry's path.
        entry: String,
    },
    /// A hard link to a file that is not in the rootfs.
    #[error("unpack: hard link {entry:?} points to {target:?}, which is not a file in the rootfs")]
    HardlinkTarget {
        /// The entry's path.
        entry: String,
        /// The link target.
        target: String,
    },
    /// A tar entry type layers do not use.
    #[error("unpack: entry {entry:?} has unsupported tar type {kind:?}")]
    UnsupportedType {
        /// The entry's path.
        entry: String,
        /// The type byte.
        kind: char,
    },
    /// Making an entry failed.
    #[error("unpack: entry {entry:?}: cannot create {path}: {source}")]
    Create {
        /// The entry's path.
        entry: String,
        /// Where it was being made.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// How [`unpack()`] makes entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackOptions {
    /// Set each entry's uid/gid (needs root or a user namespace).
    pub chown: bool,
    /// Make device nodes (needs root); skipped and counted otherwise.
    pub devices: bool,
}

impl Default for UnpackOptions {
    /// Both on as root, off otherwise.
    fn default() -> Self {
        let root = nix::unistd::geteuid().is_root();
        Self {
            chown: root,
            devices: root,
        }
    }
}

/// What [`unpack()`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnpackStats {
    /// `sha256:` of the uncompressed tar stream (compare with the config's
    /// `rootfs.diff_ids`).
    pub diff_id: String,
    /// Entries made (whiteouts not counted).
    pub entries: usize,
    /// Whiteouts applied.
    pub whiteouts: usize,
    /// Device nodes skipped (not root).
    pub skipped_devices: usize,
}

/// Unpacks the layer file at `layer` into `rootfs`.
pub fn unpack_file(
    layer: &Path,
    rootfs: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    let file = File::open(layer).map_err(|source| UnpackError::Open {
        path: layer.to_path_buf(),
        source,
    })?;
    unpack(file, rootfs, opts)
}

/// The tar stream of `reader`: gunzipped when it starts with gzip's magic
/// bytes, as it is otherwise (a plain tar).
pub fn tar_stream<'a, R: Read + 'a>(reader: R) -> std::io::Result<Box<dyn Read + 'a>> {
    let mut buffered = BufReader::new(reader);
    let gz = buffered.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gz {
        Box::new(MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    })
}

/// Unpacks a layer read from `reader` (gzip'd or plain tar, told by its
/// first bytes) into the existing directory `rootfs`.
pub fn unpack<R: Read>(
    reader: R,
    rootfs: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    let stream = tar_stream(reader).map_err(|source| UnpackError::Read { source })?;
    let mut archive = tar::Archive::new(HashingReader {
        inner: stream,
        hasher: Sha256::new(),
    });
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(opts.chown);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    let mut stats = UnpackStats::default();
    let mut created: HashSet<Vec<u8>> = HashSet::new();
    let entries = archive
        .entries()
        .map_err(|source| UnpackError::Read { source })?;
    for entry in entries {
        let mut entry = entry.map_err(|source| UnpackError::Read { source })?;
        unpack_entry(&mut entry, rootfs, opts, &mut stats, &mut created)?;
    }
    // The rest of the stream (end blocks, padding) is part of the diff_id.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|source| UnpackError::Read { source })?;
    stats.diff_id = digest_string(rest.hasher);
    Ok(stats)
}

/// Hashes what is read through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// The path's components, checked: no absolute path, no `..`; `.` and
/// empty components dropped.
fn components<'a>(entry: &str, raw: &'a [u8]) -> Result<Vec<&'a [u8]>, UnpackError> {
    if raw.starts_with(b"/") {
        return Err(UnpackError::Outside {
            entry: entry.to_string(),
            why: "absolute path",
        });
    }
    let mut out = Vec::new();
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                return Err(UnpackError::Outside {
                    entry: entry.to_string(),
                    why: "\"..\" in the path",
                })
            }
            p => out.push(p),
        }
    }
    Ok(out)
}

fn rel_string(parts: &[&[u8]]) -> String {
    String::from_utf8_lossy(&parts.join(&b'/')).into_owned()
}

/// Walks (and makes) the directories `parts` under `rootfs`; returns the
/// last one. A symlink or non-directory on the way is an error.
fn parent_dir(rootfs: &Path, entry: &str, parts: &[&[u8]]) -> Result<PathBuf, UnpackError> {
    let mut dir = rootfs.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        dir.push(std::ffi::OsStr::from_bytes(part));
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(UnpackError::ThroughSymlink {
                    entry: entry.to_string(),
                    link: rel_string(&parts[..=i]),
                })
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(UnpackError::NotADirectory {
                    entry: entry.to_string(),
                    parent: rel_string(&parts[..=i]),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&dir).map_err(|source| UnpackError::Create {
                    entry: entry.to_string(),
                    path: dir.clone(),
                    source,
                })?;
            }
            Err(source) => {
                return Err(UnpackError::Create {
                    entry: entry.to_string(),
                    path: dir,
                    source,
                })
            }
        }
    }
    Ok(dir)
}

/// Removes whatever is at `path` (a directory with its contents); nothing
/// there is fine.
fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn unpack_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    rootfs: &Path,
    opts: &UnpackOptions,
    stats: &mut UnpackStats,
    created: &mut HashSet<Vec<u8>>,
) -> Result<(), UnpackError> {
    let raw = entry.path_bytes().into_owned();
    let name_str = String::from_utf8_lossy(&raw).into_owned();
    let parts = components(&name_str, &raw)?;
    let Some((last, parents)) = parts.split_last() else {
        return Ok(()); // the root itself ("./")
    };
    let parent = parent_dir(rootfs, &name_str, parents)?;
    let create_err = |path: &Path| {
        let entry = name_str.clone();
        let path = path.to_path_buf();
        move |source| UnpackError::Create {
            entry,
            path,
            source,
        }
    };
    if *last == OPAQUE {
        let prefix = parents.join(&b'/');
        for child in fs::read_dir(&parent).map_err(create_err(&parent))? {
            let child = child.map_err(create_err(&parent))?;
            let rel = [prefix.as_slice(), b"/", child.file_name().as_bytes()].concat();
            let rel = rel.strip_prefix(b"/").map_or(rel.clone(), <[u8]>::to_vec);
            if !created.contains(&rel) {
                remove_any(&child.path()).map_err(create_err(&child.path()))?;
            }
        }
        stats.whiteouts += 1;
        return Ok(());
    }
    if let Some(hidden) = last.strip_prefix(WHITEOUT_PREFIX) {
        if matches!(hidden, b"" | b"." | b"..") || hidden.contains(&b'/') {
            return Err(UnpackError::BadWhiteout { entry: name_str });
        }
        let target = parent.join(std::ffi::OsStr::from_bytes(hidden));
        remove_any(&target).map_err(create_err(&target))?;
        stats.whiteouts += 1;
        return Ok(());
    }
    let target = parent.join(std::ffi::OsStr::from_bytes(last));
    let kind = entry.header().entry_type();
    match kind {
        tar::EntryType::Directory => {
            if !fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
                remove_any(&target).map_err(create_err(&target))?;
            }
            entry.unpack(&target).map_err(create_err(&target))?;
        }
        tar::EntryType::Regular
        | tar::EntryType::Continuous
        | tar::EntryType::Symlink
        | tar::EntryType::Fifo => {
            remove_any(&target).map_err(create_err(&target))?;
            entry.unpack(&target).map_err(create_err(&target))?;
        }
        tar::EntryType::Char | tar::EntryType::Block => {
            if !opts.devices {
                stats.skipped_devices += 1;
                return Ok(());
            }
            remove_any(&target).map_err(create_err(&target))?;
            entry.unpack(&target).map_err(create_err(&target))?;
        }
        tar::EntryType::Link => {
            let link = entry
                .link_name_bytes()
                .map(|l| l.into_owned())
                .unwrap_or_default();
            let source = hardlink_source(rootfs, &name_str, &link)?;
            remove_any(&target).map_err(create_err(&target))?;
            fs::hard_link(&source, &target).map_err(create_err(&target))?;
        }
        other => {
            return Err(UnpackError::UnsupportedType {
                entry: name_str,
                kind: char::from(other.as_byte()),
            })
        }
    }
    created.insert(parts.join(&b'/'));
    stats.entries += 1;
    Ok(())
}

/// The checked path inside `rootfs` of a hard link's target: relative, no
/// `..`, no symlink on the way, an existing non-directory.
fn hardlink_source(rootfs: &Path, entry: &str, link: &[u8]) -> Result<PathBuf, UnpackError> {
    let target = String::from_utf8_lossy(link).into_owned();
    let bad = || UnpackError::HardlinkTarget {
        entry: entry.to_string(),
        target: target.clone(),
    };
    let parts = components(entry, link)?;
    let (last, parents) = parts.split_last().ok_or_else(bad)?;
    let mut dir = rootfs.to_path_buf();
    for part in parents {
        dir.push(std::ffi::OsStr::from_bytes(part));
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            _ => return Err(bad()),
        }
    }
    let source = dir.join(std::ffi::OsStr::from_bytes(last));
    match fs::symlink_metadata(&source) {
        Ok(m) if !m.is_dir() => Ok(source),
        _ => Err(bad()),
    }
}
