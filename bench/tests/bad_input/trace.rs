//! What a run may leave behind, and whose it is.
//!
//! Other users of the machine (other test runs) create and remove `vclab*` state at the same
//! time, so a difference between two snapshots is only blamed on a row when it is the row's:
//! its name holds the test's id prefix or the pid of the row's process (the launcher's
//! generated ids, `harness-<pid>`, `jail-<pid>`, `vclab-compare-<pid>-…` all do), it is a
//! path in the test's temp dir, or it is a cgroup below the test's own. Processes need no
//! guessing: the test is a child subreaper, so whatever a row's process leaves running is
//! re-parented to it and shows up among its children.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One snapshot of the things a run could leave: state entries, cgroups, mounts, network
/// links, temp files.
#[derive(Default)]
pub struct Snapshot {
    items: BTreeSet<String>,
}

/// How long processes a row left may take to exit on their own (a guard told to go).
const GRACE: Duration = Duration::from_secs(3);

fn names_in(dir: &str, prefix: &str, items: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(prefix) {
            items.insert(format!("{dir}/{}", e.file_name().to_string_lossy()));
        }
    }
}

/// Every `vclab*` directory under `dir`, at most `depth` levels down.
fn cgroups_in(dir: &Path, depth: u32, items: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if depth == 0 || !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = e.path();
        if e.file_name().to_string_lossy().starts_with("vclab") {
            items.insert(format!("cgroup {}", path.display()));
        }
        cgroups_in(&path, depth - 1, items);
    }
}

impl Snapshot {
    /// Takes one now.
    pub fn take() -> Snapshot {
        let mut items = BTreeSet::new();
        names_in("/run/vclab", "", &mut items);
        names_in("/run/vclab-launchers", "", &mut items);
        names_in("/run/runc", "vclab", &mut items);
        names_in("/run/crun", "vclab", &mut items);
        names_in("/sys/class/net", "vclab", &mut items);
        names_in("/sys/class/net", "vctap", &mut items);
        names_in(
            &std::env::temp_dir().display().to_string(),
            "vclab",
            &mut items,
        );
        // v1 controllers and the cgroup2 mount (/sys/fs/cgroup/unified) alike.
        cgroups_in(Path::new("/sys/fs/cgroup"), 8, &mut items);
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for line in mounts.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if let (Some(point), Some(dash)) = (f.get(4), f.iter().position(|w| *w == "-")) {
                let source = f.get(dash + 2).unwrap_or(&"");
                items.insert(format!("mount {point} from {source}"));
            }
        }
        Snapshot { items }
    }

    /// What is in `after` and not in `self`, and belongs to the row (see the module doc).
    pub fn new_since(&self, after: &Snapshot, owner: &Owner) -> Vec<String> {
        after
            .items
            .difference(&self.items)
            .filter(|i| owner.owns(i))
            .cloned()
            .collect()
    }
}

/// What marks a thing as the test's or a row's.
pub struct Owner {
    /// The id prefix of every container the test names.
    pub prefix: String,
    /// The test's temp dir.
    pub tmp: PathBuf,
    /// The test's own cgroups, `/sys/fs/cgroup/<controller><path>` (not `/`).
    pub own_cgroups: Vec<String>,
    /// The row's process.
    pub pid: u32,
}

/// `text` holds `n` as a number of its own (not inside a longer one).
fn holds_number(text: &str, n: u32) -> bool {
    let n = n.to_string();
    let b = text.as_bytes();
    text.match_indices(&n).any(|(at, _)| {
        let before = at.checked_sub(1).map(|i| b[i]);
        let after = b.get(at + n.len()).copied();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

impl Owner {
    /// The test's own cgroups, read from /proc/self/cgroup.
    pub fn own_cgroups() -> Vec<String> {
        let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mut dirs = Vec::new();
        for line in text.lines() {
            let mut f = line.splitn(3, ':');
            let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or("/"));
            if path == "/" {
                continue;
            }
            for c in ctrls.split(',') {
                let mount = match c {
                    "" => "unified".to_string(),
                    c => c.trim_start_matches("name=").to_string(),
                };
                dirs.push(format!("/sys/fs/cgroup/{mount}{path}/"));
            }
        }
        dirs
    }

    fn owns(&self, item: &str) -> bool {
        item.contains(&self.prefix)
            || item.contains(&self.tmp.display().to_string())
            || holds_number(item, self.pid)
            || self
                .own_cgroups
                .iter()
                .any(|c| item.starts_with(&format!("cgroup {c}")))
    }
}

/// The pids of this process's children (of every thread).
fn children() -> Vec<i32> {
    let mut pids = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return pids;
    };
    for t in tasks.flatten() {
        let text = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        pids.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok()),
        );
    }
    pids
}

fn describe(pid: i32) -> String {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
    format!("process {pid}: {}", cmd.trim())
}

/// This process's children now (the test's own long-lived ones, to [`left_processes`]).
pub fn children_now() -> Vec<i32> {
    children()
}

/// The processes a row left (re-parented to this subreaper) other than `keep`, after
/// [`GRACE`] for those on their way out; the ones still there are killed, reaped and named.
pub fn left_processes(keep: &[i32]) -> Vec<String> {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    use nix::unistd::Pid;
    let deadline = Instant::now() + GRACE;
    loop {
        let theirs = || children().into_iter().filter(|p| !keep.contains(p));
        for pid in theirs() {
            // Reaps a child that has exited; leaves a running one alone.
            let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
        }
        let alive: Vec<i32> = theirs().collect();
        if alive.is_empty() {
            return Vec::new();
        }
        if Instant::now() > deadline {
            let named: Vec<String> = alive.iter().map(|&p| describe(p)).collect();
            for pid in alive {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::SIGKILL);
                let reaped = waitpid(Pid::from_raw(pid), None);
                debug_assert!(!matches!(reaped, Ok(WaitStatus::StillAlive)));
            }
            return named;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn numbers_are_matched_whole() {
    assert!(holds_number("/run/vclab/harness-123", 123));
    assert!(holds_number("vclab-compare-123-runc-7", 123));
    assert!(holds_number("/run/vclab/123-0", 123));
    assert!(!holds_number("/run/vclab/harness-1234", 123));
    assert!(!holds_number("/run/vclab/harness-9123", 123));
}
