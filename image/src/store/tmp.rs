//! A temporary directory removed when dropped (on every path, errors and
//! panics included) unless it was renamed into place.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The directory could not be created.
    #[error(
        "cannot create temporary directory {path}: {source} (check that its parent is writable)"
    )]
    Create {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The directory could not be renamed into place.
    #[error("cannot rename {from} to {to}: {source} (both must be on one file system)")]
    Rename {
        /// The temporary directory.
        from: PathBuf,
        /// Where it was to go.
        to: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A directory under `parent` named `<prefix>-<pid>-<n>`.
#[derive(Debug)]
pub struct TempDir {
    path: Option<PathBuf>,
}

impl TempDir {
    /// Creates a fresh directory in `parent` (created too if missing).
    pub fn new_in(parent: &Path, prefix: &str) -> Result<Self, Error> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = parent.join(format!("{prefix}-{}-{n}", std::process::id()));
        let made = std::fs::create_dir_all(parent).and_then(|()| std::fs::create_dir(&path));
        made.map_err(|source| Error::Create {
            path: path.clone(),
            source,
        })?;
        Ok(TempDir { path: Some(path) })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// Renames it to `to` (which must not exist, or be an empty directory)
    /// and keeps it there.
    pub fn persist(mut self, to: &Path) -> Result<(), Error> {
        let from = self.path.take().unwrap_or_default();
        match std::fs::rename(&from, to) {
            Ok(()) => Ok(()),
            Err(source) => {
                self.path = Some(from.clone());
                Err(Error::Rename {
                    from,
                    to: to.to_path_buf(),
                    source,
                })
            }
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            remove_tree(&p);
        }
    }
}

/// Removes the directories under `parent` that [`TempDir::new_in`] made
/// for processes that are gone (a build killed by a signal runs no
/// destructor); returns how many. Another live build's are kept.
pub fn sweep(parent: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name.rsplit('-').nth(1).and_then(|p| p.parse::<u32>().ok());
        let dead = pid
            .is_some_and(|p| p != std::process::id() && !Path::new(&format!("/proc/{p}")).exists());
        if dead {
            remove_tree(&e.path());
            removed += 1;
        }
    }
    removed
}

/// Removes a directory tree, first making its directories writable (an
/// overlay work directory or an image's read-only directories would
/// otherwise stop the removal). Errors are ignored: nothing is left to do.
pub fn remove_tree(path: &Path) {
    if std::fs::remove_dir_all(path).is_ok() || !path.exists() {
        return;
    }
    make_writable(path);
    let _ = std::fs::remove_dir_all(path);
}

fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            make_writable(&e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_unless_persisted() {
        let base = std::env::temp_dir().join(format!("vclab-tmp-test-{}", std::process::id()));
        let t = TempDir::new_in(&base, "x").unwrap();
        let p = t.path().to_path_buf();
        std::fs::create_dir_all(p.join("a/b")).unwrap();
        drop(t);
        assert!(!p.exists());
        let t = TempDir::new_in(&base, "y").unwrap();
        let to = base.join("kept");
        t.persist(&to).unwrap();
        assert!(to.is_dir());
        // A dead process's directory is swept, a live one's kept.
        std::fs::create_dir_all(base.join("layer-999999999-0/x")).unwrap();
        let live = TempDir::new_in(&base, "layer").unwrap();
        assert_eq!(sweep(&base), 1);
        assert!(live.path().is_dir() && to.is_dir());
        assert!(!base.join("layer-999999999-0").exists());
        drop(live);
        remove_tree(&base);
        assert!(!base.exists());
    }
}
