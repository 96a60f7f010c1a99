//! `COPY`/`ADD`: the sources, copied into a fresh layer tree at the
//! destination (modes kept, owner 0:0 or `--chown`, symbolic links as
//! links); `ADD` of a local tar archive (plain or gzip'd) is extracted.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use super::context::Source;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be copied.
    #[error("cannot copy {from} to {to}: {source}")]
    Copy {
        /// The source.
        from: PathBuf,
        /// The destination in the layer.
        to: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A source is a device, FIFO or socket.
    #[error("{0} is not a regular file, directory or symbolic link: remove it from the sources")]
    Special(PathBuf),
    /// An archive could not be extracted.
    #[error("cannot extract the archive {path}: {source} (is it a valid tar or tar.gz?)")]
    Extract {
        /// The archive.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Where and how to copy.
#[derive(Debug, Clone)]
pub struct Copy<'a> {
    /// The sources (inside the context).
    pub sources: &'a [Source],
    /// The absolute destination in the image (a trailing '/' means a directory).
    pub dest: &'a str,
    /// The owner of what is copied.
    pub owner: (u32, u32),
    /// `ADD`: extract local tar archives.
    pub extract: bool,
}

/// Copies into `tree`, the new layer's root.
pub fn copy_into(tree: &Path, c: &Copy<'_>) -> Result<(), Error> {
    let rel: PathBuf = Path::new(c.dest)
        .components()
        .filter(|x| matches!(x, Component::Normal(_)))
        .collect();
    let into_dir = c.dest.ends_with('/') || c.sources.len() > 1;
    let dest = tree.join(&rel);
    make_parents(tree, &rel, c.owner)?;
    for s in c.sources {
        let meta = std::fs::symlink_metadata(&s.path).map_err(|e| err(&s.path, &dest, e))?;
        if meta.is_dir() {
            copy_tree(&s.path, &dest, c.owner)?;
        } else if c.extract && is_archive(&s.path) {
            mkdir(&dest, 0o755, c.owner)?;
            extract(&s.path, &dest, c.owner)?;
        } else {
            let to = if into_dir {
                mkdir(&dest, 0o755, c.owner)?;
                dest.join(s.path.file_name().unwrap_or_default())
            } else {
                dest.clone()
            };
            copy_one(&s.path, &to, c.owner)?;
        }
    }
    Ok(())
}

fn err(from: &Path, to: &Path, source: std::io::Error) -> Error {
    Error::Copy {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        source,
    }
}

/// The parents of `rel` in the layer, 0755 and owned by root (Docker's).
fn make_parents(tree: &Path, rel: &Path, _owner: (u32, u32)) -> Result<(), Error> {
    let mut p = tree.to_path_buf();
    if let Some(parent) = rel.parent() {
        for c in parent.components() {
            p.push(c);
            mkdir(&p, 0o755, (0, 0))?;
        }
    }
    Ok(())
}

fn mkdir(p: &Path, mode: u32, owner: (u32, u32)) -> Result<(), Error> {
    if p.is_dir() {
        return Ok(());
    }
    // Owner first: a chown clears the set-id bits the mode may hold.
    let made = std::fs::create_dir(p)
        .and_then(|()| std::os::unix::fs::lchown(p, Some(owner.0), Some(owner.1)))
        .and_then(|()| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)));
    made.map_err(|e| err(p, p, e))
}

fn copy_tree(from: &Path, to: &Path, owner: (u32, u32)) -> Result<(), Error> {
    let meta = std::fs::metadata(from).map_err(|e| err(from, to, e))?;
    mkdir(to, meta.permissions().mode() & 0o7777, owner)?;
    let mut names: Vec<_> = std::fs::read_dir(from)
        .and_then(|d| d.map(|e| e.map(|e| e.file_name())).collect())
        .map_err(|e| err(from, to, e))?;
    names.sort();
    for n in names {
        let (f, t) = (from.join(&n), to.join(&n));
        if std::fs::symlink_metadata(&f)
            .map_err(|e| err(&f, &t, e))?
            .is_dir()
        {
            copy_tree(&f, &t, owner)?;
        } else {
            copy_one(&f, &t, owner)?;
        }
    }
    Ok(())
}

fn copy_one(from: &Path, to: &Path, owner: (u32, u32)) -> Result<(), Error> {
    let meta = std::fs::symlink_metadata(from).map_err(|e| err(from, to, e))?;
    let e = |e| err(from, to, e);
    if std::fs::symlink_metadata(to).is_ok_and(|m| !m.is_dir()) {
        std::fs::remove_file(to).map_err(e)?;
    }
    let kind = meta.file_type();
    let chown = |p: &Path| std::os::unix::fs::lchown(p, Some(owner.0), Some(owner.1));
    if kind.is_symlink() {
        let target = std::fs::read_link(from).map_err(e)?;
        std::os::unix::fs::symlink(target, to).map_err(e)?;
        chown(to).map_err(e)
    } else if kind.is_file() {
        std::fs::copy(from, to).map_err(e)?;
        // Owner first: a chown clears the set-id bits the mode may hold.
        chown(to).map_err(e)?;
        let mode = std::fs::Permissions::from_mode(meta.permissions().mode() & 0o7777);
        std::fs::set_permissions(to, mode).map_err(e)
    } else {
        Err(Error::Special(from.to_path_buf()))
    }
}

/// A gzip'd or plain tar (by its first bytes).
fn is_archive(path: &Path) -> bool {
    let mut head = [0u8; 262];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    (n >= 2 && head[..2] == [0x1f, 0x8b]) || (n >= 262 && &head[257..262] == b"ustar")
}

fn extract(path: &Path, dest: &Path, owner: (u32, u32)) -> Result<(), Error> {
    let x = |source| Error::Extract {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(x)?;
    let reader = crate::layer::tar_stream(f).map_err(x)?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    // `unpack` refuses entries that would land outside `dest`.
    archive.unpack(dest).map_err(x)?;
    chown_tree(dest, owner).map_err(x)
}

fn chown_tree(p: &Path, owner: (u32, u32)) -> std::io::Result<()> {
    std::os::unix::fs::lchown(p, Some(owner.0), Some(owner.1))?;
    if std::fs::symlink_metadata(p)?.is_dir() {
        for e in std::fs::read_dir(p)? {
            chown_tree(&e?.path(), owner)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_dirs_and_archives() {
        let base = std::env::temp_dir().join(format!("vclab-copy-{}", std::process::id()));
        let ctx = base.join("ctx");
        std::fs::create_dir_all(ctx.join("dir/sub")).unwrap();
        std::fs::write(ctx.join("dir/sub/a"), "a").unwrap();
        std::fs::write(ctx.join("f"), "f").unwrap();
        std::fs::set_permissions(ctx.join("f"), std::fs::Permissions::from_mode(0o750)).unwrap();
        let src = |p: &str| Source {
            written: p.into(),
            path: ctx.join(p),
        };
        let tree = base.join("tree");
        std::fs::create_dir_all(&tree).unwrap();
        let s = [src("f")];
        copy_into(
            &tree,
            &Copy {
                sources: &s,
                dest: "/app/",
                owner: (0, 0),
                extract: false,
            },
        )
        .unwrap();
        let m = std::fs::metadata(tree.join("app/f")).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o750);
        copy_into(
            &tree,
            &Copy {
                sources: &s,
                dest: "/bin/g",
                owner: (0, 0),
                extract: false,
            },
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(tree.join("bin/g")).unwrap(), "f");
        let d = [src("dir")];
        copy_into(
            &tree,
            &Copy {
                sources: &d,
                dest: "/opt",
                owner: (0, 0),
                extract: false,
            },
        )
        .unwrap();
        assert!(
            tree.join("opt/sub/a").is_file(),
            "a directory's contents go into the destination"
        );
        // ADD of a tar archive is extracted.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "x/y", &b"hi"[..]).unwrap();
        std::fs::write(ctx.join("t.tar"), b.into_inner().unwrap()).unwrap();
        let t = [src("t.tar")];
        copy_into(
            &tree,
            &Copy {
                sources: &t,
                dest: "/srv",
                owner: (0, 0),
                extract: true,
            },
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(tree.join("srv/x/y")).unwrap(), "hi");
        std::fs::remove_dir_all(base).unwrap();
    }
}
