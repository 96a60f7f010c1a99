//! The jail's host-side state: `/run/vclab/jail-<id>/` holding `owner` (the jailing VMM's pid
//! and start time, then the jail's cgroup directories, one a line) and `root/` (the empty mount
//! point of the jail's tmpfs, which lives in the jail's own mount namespace only). Everything
//! else of the jail disappears with its namespaces, so a jail whose VMM was SIGKILLed leaves
//! just this entry and its cgroups, which the next `--jail` run sweeps.

use std::io;
use std::path::{Path, PathBuf};

/// Where the jails' entries live.
pub const RUN_DIR: &str = "/run/vclab";
/// The prefix of a jail entry's directory and of its cgroup (`vclab-jail-<id>`).
pub const PREFIX: &str = "jail-";

/// Errors of the jail's state directory.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A directory or file could not be created.
    #[error("cannot create the jail's {path}: {source} (is /run writable? run as root)")]
    Create {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The process's own start time could not be read.
    #[error("cannot read this process's start time from /proc/self/stat")]
    StartTime,
}

/// One jail's entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `/run/vclab/jail-<id>`.
    pub dir: PathBuf,
    /// `<dir>/root`, the jail's root.
    pub root: PathBuf,
}

/// The start time (clock ticks since boot, field 22) in the text of /proc/PID/stat.
pub fn start_time(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and ')': the fields after it follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn start_of(pid: &str) -> Option<u64> {
    start_time(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Creates the entry of jail `id` owned by this process, listing `cgroups`.
pub fn create(id: &str, cgroups: &[PathBuf]) -> Result<Entry, Error> {
    let dir = Path::new(RUN_DIR).join(format!("{PREFIX}{id}"));
    let root = dir.join("root");
    let create = |path: &Path, r: io::Result<()>| {
        r.map_err(|source| Error::Create {
            path: path.to_path_buf(),
            source,
        })
    };
    create(&dir, std::fs::create_dir_all(&root))?;
    let start = start_of("self").ok_or(Error::StartTime)?;
    let mut owner = format!("{} {start}\n", std::process::id());
    for c in cgroups {
        owner.push_str(&format!("{}\n", c.display()));
    }
    // Written aside and renamed: a concurrent sweep never reads a partial record.
    let (tmp, path) = (dir.join(".owner"), dir.join("owner"));
    create(&tmp, std::fs::write(&tmp, owner))?;
    create(&path, std::fs::rename(&tmp, &path))?;
    Ok(Entry { dir, root })
}

/// Removes the entry (its root is an empty mount point on the host) and the cgroups it lists.
pub fn remove(dir: &Path) {
    if let Ok(owner) = std::fs::read_to_string(dir.join("owner")) {
        let dirs: Vec<PathBuf> = owner.lines().skip(1).map(PathBuf::from).collect();
        if let Err(e) = super::cgroup::remove(&dirs) {
            log::warn!("{e}");
        }
    }
    let _ = std::fs::remove_dir(dir.join("root"));
    let _ = std::fs::remove_file(dir.join(".owner"));
    let _ = std::fs::remove_file(dir.join("owner"));
    if let Err(e) = std::fs::remove_dir(dir) {
        if e.kind() != io::ErrorKind::NotFound {
            log::warn!("cannot remove the jail entry {}: {e}", dir.display());
        }
    }
}

/// Whether the `owner` text names a live process (same pid and start time).
fn owner_alive(owner: &str) -> bool {
    let mut first = owner.lines().next().unwrap_or("").split_whitespace();
    match (
        first.next(),
        first.next().and_then(|s| s.parse::<u64>().ok()),
    ) {
        (Some(pid), Some(start)) => start_of(pid) == Some(start),
        _ => false,
    }
}

/// Removes the entries (and cgroups) of jails whose VMM is gone; returns how many.
pub fn sweep() -> usize {
    let Ok(entries) = std::fs::read_dir(RUN_DIR) else {
        return 0;
    };
    let mut swept = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().starts_with(PREFIX) {
            continue;
        }
        let dir = e.path();
        // An entry without an owner file is one being created: left alone unless old.
        let owner = std::fs::read_to_string(dir.join("owner"));
        let stale = match owner {
            Ok(text) => !owner_alive(&text),
            Err(_) => e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 60),
        };
        if stale {
            remove(&dir);
            swept += 1;
        }
    }
    swept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_after_a_command_with_spaces() {
        let stat = "123 (a b) c) S 1 123 123 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 1 2";
        assert_eq!(start_time(stat), Some(98765));
        assert_eq!(start_time("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_made_up_one_is_not() {
        let me = start_of("self").unwrap();
        assert!(owner_alive(&format!("{} {me}\n", std::process::id())));
        assert!(!owner_alive(&format!(
            "{} {}\n",
            std::process::id(),
            me + 1
        )));
        assert!(!owner_alive("not a pid\n"));
        assert!(!owner_alive(""));
    }
}
