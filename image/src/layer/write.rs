//! A deterministic gzip'd tar of a directory tree (an overlay upper
//! directory, or a COPY result).
//!
//! Steps: walk the tree without following symlinks → overlay whiteouts to
//! OCI whiteouts (char device 0:0 → `.wh.<name>`, an opaque directory →
//! `<dir>/.wh..wh..opq`) → sort by path → hard links to the first path of
//! their inode → GNU tar headers (uid/gid 0 unless told, mtime fixed, modes
//! kept, directories with a trailing `/`, long names as GNU `L`/`K`
//! entries) → gzip with a fixed header (no name, mtime 0). The diff_id is
//! the SHA-256 of the tar, the digest that of the gzip.

use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};

use super::hash::HashingWriter;
use super::{LayerInfo, Owner, WriteOptions, OPAQUE, WHITEOUT_PREFIX};

/// Why a layer could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A file of the tree could not be read.
    #[error("layer: cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The output could not be written.
    #[error("layer: cannot write the layer blob: {source}")]
    Write {
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A file named like an OCI whiteout in the tree.
    #[error(
        "layer: {path}: names starting with \".wh.\" are reserved for OCI whiteouts; rename it"
    )]
    ReservedName {
        /// The file.
        path: PathBuf,
    },
    /// A file changed size while it was read.
    #[error("layer: {path} changed while it was archived ({expected} bytes expected, {found} read); retry when nothing writes to it")]
    Changed {
        /// The file.
        path: PathBuf,
        /// Its size when it was listed.
        expected: u64,
        /// The bytes read.
        found: u64,
    },
}

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Body {
    Dir,
    File {
        size: u64,
    },
    Symlink(Vec<u8>),
    Hardlink(Vec<u8>),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
    /// A whiteout marker: an empty regular file.
    Marker,
}

/// One tar entry to write.
#[derive(Debug)]
struct Item {
    /// Relative path, no trailing slash.
    path: Vec<u8>,
    /// The file on disk (none for markers).
    source: PathBuf,
    body: Body,
    mode: u32,
    uid: u64,
    gid: u64,
    /// (dev, ino) of a regular file with more than one link.
    inode: Option<(u64, u64)>,
}

/// Writes `dir` as a layer to `out`; see the module steps.
pub fn write<W: Write>(dir: &Path, out: W, opts: &WriteOptions) -> Result<LayerInfo, WriteError> {
    let mut items = Vec::new();
    collect(dir, &[], opts, &mut items)?;
    items.sort_by(|a, b| a.path.cmp(&b.path));
    link_hardlinks(&mut items);

    let gz = GzBuilder::new().write(HashingWriter::new(out), Compression::default());
    let mut tar = HashingWriter::new(gz);
    for item in &items {
        write_item(&mut tar, item, opts).map_err(|e| match e {
            ItemError::Io(source) => WriteError::Write { source },
            ItemError::Read(source) => WriteError::Read {
                path: item.source.clone(),
                source,
            },
            ItemError::Changed { expected, found } => WriteError::Changed {
                path: item.source.clone(),
                expected,
                found,
            },
        })?;
    }
    let io = |source| WriteError::Write { source };
    tar.write_all(&[0u8; 1024]).map_err(io)?;
    let (gz, diff_id, uncompressed_size) = tar.finish();
    let hashed = gz.finish().map_err(io)?;
    let (mut out, digest, size) = hashed.finish();
    out.flush().map_err(io)?;
    Ok(LayerInfo {
        diff_id,
        digest,
        size,
        uncompressed_size,
        entries: items.len(),
    })
}

fn read_err(path: &Path) -> impl FnOnce(io::Error) -> WriteError + '_ {
    move |source| WriteError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// Lists `dir` (relative path `rel`) into `items`, recursively.
fn collect(
    dir: &Path,
    rel: &[u8],
    opts: &WriteOptions,
    items: &mut Vec<Item>,
) -> Result<(), WriteError> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_err(dir))? {
        let entry = entry.map_err(read_err(dir))?;
        entries.push(entry.file_name());
    }
    entries.sort();
    for name in entries {
        let source = dir.join(&name);
        let meta = fs::symlink_metadata(&source).map_err(read_err(&source))?;
        let name = name.as_bytes();
        let path = join(rel, name);
        let ft = meta.file_type();
        if ft.is_char_device() && meta.rdev() == 0 && opts.whiteouts {
            items.push(marker(
                join(rel, &[WHITEOUT_PREFIX, name].concat()),
                &source,
                opts,
            ));
            continue;
        }
        if name.starts_with(WHITEOUT_PREFIX) {
            return Err(WriteError::ReservedName { path: source });
        }
        let body = if ft.is_dir() {
            Body::Dir
        } else if ft.is_file() {
            Body::File { size: meta.len() }
        } else if ft.is_symlink() {
            let target = fs::read_link(&source).map_err(read_err(&source))?;
            Body::Symlink(target.as_os_str().as_bytes().to_vec())
        } else if ft.is_char_device() {
            Body::Char(libc::major(meta.rdev()), libc::minor(meta.rdev()))
        } else if ft.is_block_device() {
            Body::Block(libc::major(meta.rdev()), libc::minor(meta.rdev()))
        } else if ft.is_fifo() {
            Body::Fifo
        } else {
            // Sockets do not go into layers (as Docker).
            continue;
        };
        let inode = (ft.is_file() && meta.nlink() > 1).then(|| (meta.dev(), meta.ino()));
        let is_dir = body == Body::Dir;
        items.push(Item {
            path: path.clone(),
            source: source.clone(),
            body,
            mode: meta.mode() & 0o7777,
            uid: owner(opts.owner, &meta).0,
            gid: owner(opts.owner, &meta).1,
            inode,
        });
        if is_dir {
            if opts.whiteouts && is_opaque(&source) {
                items.push(marker(join(&path, OPAQUE), &source, opts));
            }
            collect(&source, &path, opts, items)?;
        }
    }
    Ok(())
}

fn join(rel: &[u8], name: &[u8]) -> Vec<u8> {
    if rel.is_empty() {
        name.to_vec()
    } else {
        [rel, b"/", name].concat()
    }
}

fn owner(owner: Owner, meta: &Metadata) -> (u64, u64) {
    match owner {
        Owner::Root => (0, 0),
        Owner::Keep => (u64::from(meta.uid()), u64::from(meta.gid())),
        Owner::Fixed { uid, gid } => (u64::from(uid), u64::from(gid)),
    }
}

fn marker(path: Vec<u8>, source: &Path, opts: &WriteOptions) -> Item {
    let (uid, gid) = match opts.owner {
        Owner::Fixed { uid, gid } => (u64::from(uid), u64::from(gid)),
        Owner::Root | Owner::Keep => (0, 0),
    };
    Item {
        path,
        source: source.to_path_buf(),
        body: Body::Marker,
        mode: 0,
        uid,
        gid,
        inode: None,
    }
}

/// An overlay opaque directory (`trusted.overlay.opaque=y`, or
/// `user.overlay.opaque=y` for a rootless overlay with `userxattr`).
fn is_opaque(dir: &Path) -> bool {
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|name| matches!(xattr::get(dir, name), Ok(Some(v)) if v == b"y"))
}

/// The second and later paths of an inode become hard links to the first.
fn link_hardlinks(items: &mut [Item]) {
    let mut first: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    for item in items.iter_mut() {
        let Some(key) = item.inode else { continue };
        match first.get(&key) {
            Some(target) => item.body = Body::Hardlink(target.clone()),
            None => {
                first.insert(key, item.path.clone());
            }
        }
    }
}

enum ItemError {
    Io(io::Error),
    Read(io::Error),
    Changed { expected: u64, found: u64 },
}

impl From<io::Error> for ItemError {
    fn from(e: io::Error) -> Self {
        ItemError::Io(e)
    }
}

/// Writes one entry: GNU long-name/long-link entries if needed, the
/// header, the data padded to 512 bytes.
fn write_item<W: Write>(out: &mut W, item: &Item, opts: &WriteOptions) -> Result<(), ItemError> {
    let mut name = item.path.clone();
    if item.body == Body::Dir {
        name.push(b'/');
    }
    let (kind, size, link) = match &item.body {
        Body::Dir => (tar::EntryType::Directory, 0, None),
        Body::File { size } => (tar::EntryType::Regular, *size, None),
        Body::Marker => (tar::EntryType::Regular, 0, None),
        Body::Symlink(t) => (tar::EntryType::Symlink, 0, Some(t.as_slice())),
        Body::Hardlink(t) => (tar::EntryType::Link, 0, Some(t.as_slice())),
        Body::Char(..) => (tar::EntryType::Char, 0, None),
        Body::Block(..) => (tar::EntryType::Block, 0, None),
        Body::Fifo => (tar::EntryType::Fifo, 0, None),
    };
    let mut header = tar::Header::new_gnu();
    if name.len() > 100 {
        long_entry(out, tar::EntryType::GNULongName, &name)?;
    }
    copy_truncated(&mut header.as_old_mut().name, &name);
    if let Some(link) = link {
        if link.len() > 100 {
            long_entry(out, tar::EntryType::GNULongLink, link)?;
        }
        copy_truncated(&mut header.as_old_mut().linkname, link);
    }
    header.set_entry_type(kind);
    header.set_mode(item.mode);
    header.set_uid(item.uid);
    header.set_gid(item.gid);
    header.set_mtime(opts.mtime);
    header.set_size(size);
    if let Body::Char(major, minor) | Body::Block(major, minor) = item.body {
        header.set_device_major(major)?;
        header.set_device_minor(minor)?;
    }
    header.set_cksum();
    out.write_all(header.as_bytes())?;
    if let Body::File { size } = item.body {
        let file = File::open(&item.source).map_err(ItemError::Read)?;
        let copied = copy_exact(file, out, size)?;
        if copied != size {
            return Err(ItemError::Changed {
                expected: size,
                found: copied,
            });
        }
        pad(out, size)?;
    }
    Ok(())
}

/// Copies at most `size` bytes of `file` to `out`; errors reading are
/// [`ItemError::Read`], writing [`ItemError::Io`].
fn copy_exact<W: Write>(file: File, out: &mut W, size: u64) -> Result<u64, ItemError> {
    use std::io::Read;
    let mut reader = file.take(size);
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ItemError::Read(e)),
        };
        out.write_all(&buf[..n])?;
        total += n as u64;
    }
}

fn pad<W: Write>(out: &mut W, size: u64) -> io::Result<()> {
    let rem = (size % 512) as usize;
    if rem != 0 {
        out.write_all(&[0u8; 512][..512 - rem])?;
    }
    Ok(())
}

fn copy_truncated(slot: &mut [u8], bytes: &[u8]) {
    let n = bytes.len().min(slot.len());
    slot[..n].copy_from_slice(&bytes[..n]);
}

/// A GNU `././@LongLink` entry carrying a name or link target longer than
/// the 100-byte header field.
fn long_entry<W: Write>(out: &mut W, kind: tar::EntryType, data: &[u8]) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    copy_truncated(&mut header.as_old_mut().name, b"././@LongLink");
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    let len = data.len() as u64 + 1;
    header.set_size(len);
    header.set_cksum();
    out.write_all(header.as_bytes())?;
    out.write_all(data)?;
    out.write_all(&[0])?;
    pad(out, len)
}
