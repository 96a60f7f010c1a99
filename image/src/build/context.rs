//! `COPY`/`ADD` sources: confined to the build context, and their cache
//! checksum (relative paths, content, mode, uid/gid; mtime excluded).

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A source leaves the build context.
    #[error("line {line}: {instruction} source {written:?} is outside the build context {context}: copy it into the context first")]
    Outside {
        /// The Containerfile line.
        line: usize,
        /// `COPY` or `ADD`.
        instruction: &'static str,
        /// The source as written.
        written: String,
        /// The context directory.
        context: PathBuf,
    },
    /// A source does not exist.
    #[error("line {line}: {instruction} source {written:?} not found in the build context {context}: check the path")]
    Missing {
        /// The Containerfile line.
        line: usize,
        /// `COPY` or `ADD`.
        instruction: &'static str,
        /// The source as written.
        written: String,
        /// The context directory.
        context: PathBuf,
    },
    /// A file of the context could not be read.
    #[error("cannot read {path} of the build context: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// One resolved source: where it is on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// As written in the Containerfile.
    pub written: String,
    /// The host path (inside the context).
    pub path: PathBuf,
}

/// Resolves `written` inside `context` (canonical): `..` above the context,
/// absolute paths and symbolic links out of it are refused.
pub fn resolve(
    context: &Path,
    written: &str,
    line: usize,
    instruction: &'static str,
) -> Result<Source, Error> {
    let outside = || Error::Outside {
        line,
        instruction,
        written: written.to_string(),
        context: context.to_path_buf(),
    };
    let mut rel = PathBuf::new();
    for c in Path::new(written).components() {
        match c {
            Component::Normal(n) => rel.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                if !rel.pop() {
                    return Err(outside());
                }
            }
            Component::RootDir | Component::Prefix(_) => return Err(outside()),
        }
    }
    let joined = context.join(&rel);
    let real = match joined.canonicalize() {
        Ok(p) => p,
        Err(_) if std::fs::symlink_metadata(&joined).is_ok() => return Err(outside()),
        Err(_) => {
            return Err(Error::Missing {
                line,
                instruction,
                written: written.to_string(),
                context: context.to_path_buf(),
            })
        }
    };
    if !real.starts_with(context) {
        return Err(outside());
    }
    Ok(Source {
        written: written.to_string(),
        path: real,
    })
}

/// The checksum of the sources as they will be copied: for each file, in
/// sorted order, its path relative to its source, type, mode, uid, gid and
/// content (a link's target). mtime and atime are left out.
pub fn checksum(sources: &[Source]) -> Result<String, Error> {
    let mut h = Sha256::new();
    for s in sources {
        h.update(s.written.as_bytes());
        h.update([0]);
        hash_tree(&mut h, &s.path, Path::new(""))?;
    }
    Ok(hex(&h.finalize()))
}

fn hash_tree(h: &mut Sha256, path: &Path, rel: &Path) -> Result<(), Error> {
    let read = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::symlink_metadata(path).map_err(read)?;
    let kind = meta.file_type();
    h.update(rel.as_os_str().as_encoded_bytes());
    h.update(
        format!(
            "\0{:o}\0{}\0{}\0",
            meta.permissions().mode(),
            meta.uid(),
            meta.gid()
        )
        .as_bytes(),
    );
    if kind.is_symlink() {
        let to = std::fs::read_link(path).map_err(read)?;
        h.update(b"L");
        h.update(to.as_os_str().as_encoded_bytes());
    } else if kind.is_dir() {
        h.update(b"D");
        let mut names: Vec<_> = std::fs::read_dir(path)
            .map_err(read)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(read)?;
        names.sort();
        for n in names {
            hash_tree(h, &path.join(&n), &rel.join(&n))?;
        }
        h.update(b"E");
    } else if kind.is_file() {
        h.update(format!("F{}\0", meta.len()).as_bytes());
        let mut f = std::fs::File::open(path).map_err(read)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf).map_err(read)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    } else {
        h.update(format!("S{}", meta.rdev()).as_bytes());
    }
    Ok(())
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> (PathBuf, PathBuf) {
        let base = std::env::temp_dir().join(format!(
            "vclab-ctx-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let ctx = base.join("ctx");
        std::fs::create_dir_all(ctx.join("d")).unwrap();
        std::fs::write(ctx.join("d/f"), "one").unwrap();
        std::fs::write(base.join("outside"), "secret").unwrap();
        std::os::unix::fs::symlink("../outside", ctx.join("link-out")).unwrap();
        (base, ctx.canonicalize().unwrap())
    }

    #[test]
    fn sources_stay_in_the_context() {
        let (base, ctx) = ctx();
        assert!(resolve(&ctx, "d/f", 3, "COPY").is_ok());
        assert!(resolve(&ctx, "./d/../d/f", 3, "COPY").is_ok());
        for bad in ["../outside", "/etc/passwd", "d/../../outside", "link-out"] {
            let e = resolve(&ctx, bad, 7, "COPY").unwrap_err();
            assert!(matches!(e, Error::Outside { line: 7, .. }), "{bad}: {e}");
            assert!(e.to_string().contains("line 7"), "{e}");
        }
        let e = resolve(&ctx, "nope", 2, "ADD").unwrap_err();
        assert!(matches!(e, Error::Missing { line: 2, .. }), "{e}");
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn checksum_follows_content_and_mode_not_mtime() {
        let (base, ctx) = ctx();
        let src = || vec![resolve(&ctx, "d", 1, "COPY").unwrap()];
        let a = checksum(&src()).unwrap();
        let f = ctx.join("d/f");
        let t = std::fs::File::options().write(true).open(&f).unwrap();
        t.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        drop(t);
        assert_eq!(a, checksum(&src()).unwrap(), "mtime must not count");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let b = checksum(&src()).unwrap();
        assert_ne!(a, b, "mode counts");
        std::fs::write(&f, "two").unwrap();
        assert_ne!(b, checksum(&src()).unwrap(), "content counts");
        std::fs::remove_dir_all(base).unwrap();
    }
}
