//! Per-container state under `/run/vclab/<id>/` (rootless: `$XDG_RUNTIME_DIR/vclab`
//! or `/tmp/vclab-<uid>`):
//! - `pid`: who owns the entry on the first line, then the container's cgroup
//!   directories, one a line. The owner is the launcher (`<pid> <start time>`)
//!   while it lives: an attached run, or `create` until it has finished. A
//!   created (detached) container owns its entry itself
//!   (`container <pid> <start time>`) until `delete`.
//! - `state.json` ([`Record`]): the container's first process (pid and start
//!   time, so a recycled pid is not mistaken for it), bundle, annotations,
//!   creation time and the hooks that run later (poststart, poststop).
//! - `exec.fifo` (created containers): the container's process blocks opening
//!   it until `start` opens it for reading (runc's scheme); `start` removes it.
//!
//! In the container's mount namespace a tmpfs covers the directory and holds
//! the overlay's `upper`, `work` and `root`, so the host never sees them. A
//! launcher that dies without cleaning up (SIGKILL) leaves its entry behind;
//! the next run (and `list`) sweeps entries whose launcher is gone. Entries of
//! created containers are never swept: a container that has exited is
//! `stopped` until `delete`, as with runc.

use std::io;
use std::path::{Path, PathBuf};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The state directory could not be created or written.
    #[error("cannot prepare the state directory {path}: {source} (is it writable?)")]
    Create {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A container with this id is already running.
    #[error("a container with id {0:?} already exists: choose another id")]
    Exists(String),
    /// No container has this id.
    #[error("container {0:?} does not exist: see `list` for the containers")]
    NotFound(String),
    /// The id cannot name a container (it would name a path outside its entry).
    #[error("invalid container id {0:?}: give 1-64 letters, digits, '-', '_' or '.', not starting with '.'")]
    InvalidId(String),
    /// The state record could not be read.
    #[error("cannot read the state of container {id:?} ({path}): {reason}")]
    Read {
        /// The container id.
        id: String,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The state record file in a container's directory.
pub const RECORD: &str = "state.json";
/// The FIFO a created container's process waits on until `start`.
pub const FIFO: &str = "exec.fifo";

/// A process identified by pid and start time (clock ticks since boot), so
/// that a recycled pid is not mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Proc {
    /// The pid (in the launcher's PID namespace).
    pub pid: i32,
    /// Field 22 of `/proc/<pid>/stat`.
    pub start: u64,
}

impl Proc {
    /// `pid` with its start time read now.
    pub fn of(pid: i32) -> Self {
        Proc {
            pid,
            start: start_time(pid as u32).unwrap_or(0),
        }
    }

    /// Whether the process still runs: same start time and not a zombie.
    pub fn alive(&self) -> bool {
        owner_alive(&format!("{} {}", self.pid, self.start))
    }
}

/// A hook of the runtime spec, kept for the verbs that run it later.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Hook {
    /// Absolute path of the program.
    pub path: PathBuf,
    /// argv, including argv[0] (the path when empty).
    #[serde(default)]
    pub args: Vec<String>,
    /// Its environment (`KEY=VAL`), nothing else.
    #[serde(default)]
    pub env: Vec<String>,
    /// Seconds before it is killed (`None`: [`crate::hooks::DEFAULT_TIMEOUT`]).
    #[serde(default)]
    pub timeout: Option<u64>,
}

/// What `state.json` records about a container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// Container id.
    pub id: String,
    /// The container's first process.
    pub init: Proc,
    /// Created by `create` (or `run --detach`): no launcher waits for it.
    pub detached: bool,
    /// The bundle directory (with `--rootfs`: the rootfs).
    pub bundle: PathBuf,
    /// The bundle's annotations.
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    /// Creation time, RFC 3339 UTC.
    pub created: String,
    /// The uid that created it.
    pub owner_uid: u32,
    /// Hooks run by `start` after the user's program started.
    #[serde(default)]
    pub poststart: Vec<Hook>,
    /// Hooks run when the container is deleted.
    #[serde(default)]
    pub poststop: Vec<Hook>,
}

/// Whether `id` can name a container: 1-64 letters, digits, '-', '_' or
/// '.', not starting with '.' (so never `.`, `..` or a path: `root.join(id)`
/// stays one entry below the root).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !id.starts_with('.')
}

/// [`valid_id`], as an error.
fn check_id(id: &str) -> Result<(), Error> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_string()))
    }
}

/// The state root for this user.
pub fn state_root(rootless: bool) -> PathBuf {
    if !rootless {
        return PathBuf::from("/run/vclab");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => Path::new(&dir).join("vclab"),
        _ => PathBuf::from(format!("/tmp/vclab-{}", nix::unistd::geteuid())),
    }
}

/// One run's state directory; [`State::remove`] deletes it.
#[derive(Debug)]
pub struct State {
    /// `<root>/<id>`.
    pub dir: PathBuf,
}

fn create_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Create {
        path: path.to_path_buf(),
        source,
    }
}

impl State {
    /// Creates `<root>/<id>`. The overlay's `upper`, `work` and `root` are
    /// made later, by the child, on a tmpfs mounted over this directory in
    /// the container's own mount namespace.
    pub fn create(root: &Path, id: &str) -> Result<Self, Error> {
        check_id(id)?;
        let dir = root.join(id);
        let marked_here = mark(root, id)?;
        if let Err(e) = std::fs::create_dir(&dir) {
            // A marker that was there before is the entry's own launcher's: it stays.
            if marked_here {
                unmark(root, id.as_ref());
            }
            return Err(match e.kind() {
                io::ErrorKind::AlreadyExists => Error::Exists(id.to_string()),
                _ => create_err(&dir)(e),
            });
        }
        Ok(State { dir })
    }

    /// Writes the `pid` file: the launcher's pid and start time on the first
    /// line, then the container's cgroup directories, one a line.
    pub fn write_owner(&self, cgroup_dirs: &[PathBuf]) -> Result<(), Error> {
        let me = std::process::id();
        let mut text = format!("{me} {}\n", start_time(me).unwrap_or(0));
        for d in cgroup_dirs {
            text.push_str(&d.to_string_lossy());
            text.push('\n');
        }
        // Through a rename: a sweep must never read a half-written file.
        write_atomic(&self.dir, "pid", text.as_bytes())
    }

    /// Hands the entry from the launcher to the container's own process
    /// `init` (a created container, which lives until `delete`): rewrites the
    /// `pid` file's first line as `container <pid> <start>`.
    pub fn hand_over(&self, init: Proc, cgroup_dirs: &[PathBuf]) -> Result<(), Error> {
        let mut text = format!("container {} {}\n", init.pid, init.start);
        for d in cgroup_dirs {
            text.push_str(&d.to_string_lossy());
            text.push('\n');
        }
        write_atomic(&self.dir, "pid", text.as_bytes())?;
        if let (Some(root), Some(id)) = (self.dir.parent(), self.dir.file_name()) {
            unmark(root, id);
        }
        Ok(())
    }

    /// An attached run: adds the container's process to the owner line
    /// (`<launcher pid> <start> <container pid> <start>`; readers of the
    /// owner take the first two words).
    pub fn set_init(&self, init: Proc, cgroup_dirs: &[PathBuf]) -> Result<(), Error> {
        let me = std::process::id();
        let mut text = format!(
            "{me} {} {} {}\n",
            start_time(me).unwrap_or(0),
            init.pid,
            init.start
        );
        for d in cgroup_dirs {
            text.push_str(&d.to_string_lossy());
            text.push('\n');
        }
        write_atomic(&self.dir, "pid", text.as_bytes())
    }

    /// Writes `state.json` (atomically: readers never see half a record).
    pub fn write_record(&self, record: &Record) -> Result<(), Error> {
        let text = serde_json::to_vec(record).map_err(|e| Error::Create {
            path: self.dir.join(RECORD),
            source: e.into(),
        })?;
        write_atomic(&self.dir, RECORD, &text)
    }

    /// Makes `exec.fifo` (mode 0622: the container's user, whoever it is,
    /// can open it for writing) and opens it with `O_PATH`, for the
    /// container's process to reopen through `/proc/self/fd` once the
    /// directory is hidden under its tmpfs.
    pub fn make_fifo(&self) -> Result<std::os::fd::OwnedFd, Error> {
        use nix::sys::stat::Mode;
        let path = self.dir.join(FIFO);
        let err = |e: nix::errno::Errno| Error::Create {
            path: path.clone(),
            source: e.into(),
        };
        nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o622)).map_err(err)?;
        // mkfifo applies the umask: set the mode as meant.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o622))
            .map_err(create_err(&path))?;
        nix::fcntl::open(
            &path,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(err)
    }

    /// Deletes the directory tree.
    pub fn remove(&self) {
        remove_tree(&self.dir);
        if let (Some(root), Some(id)) = (self.dir.parent(), self.dir.file_name()) {
            unmark(root, id);
        }
    }
}

/// The directory of launcher markers, next to the state root
/// (`/run/vclab-launchers`): one empty file per entry a launcher owns (made
/// before the entry, removed when the entry goes or a created container
/// takes it over), so that the sweep every run makes visits those entries
/// only, not every created container's (thousands, in a density ramp). It
/// stays (empty) between runs: /run is ext4 on the lab hosts, and making
/// and removing it for every run cost about 5 ms.
pub fn marks_dir(root: &Path) -> PathBuf {
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    root.with_file_name(format!("{name}-launchers"))
}

/// Marks `id` as a launcher's; true when the marker is new (false: another launcher of the
/// same id marked it first). The marker holds the launcher's pid and start time, so that a
/// launcher killed before its entry exists leaves a marker the next sweep drops at once.
fn mark(root: &Path, id: &str) -> Result<bool, Error> {
    let dir = marks_dir(root);
    let path = dir.join(id);
    let me = std::process::id();
    let owner = format!("{me} {}\n", start_time(me).unwrap_or(0));
    let create = || create_filled(&dir, &path, owner.as_bytes());
    match create() {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(&dir).map_err(create_err(&dir))?;
            std::fs::create_dir_all(root).map_err(create_err(root))?;
            match create() {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(create_err(&path)(e)),
            }
        }
        Err(e) => Err(create_err(&path)(e)),
    }
}

fn unmark(root: &Path, id: &std::ffi::OsStr) {
    let _ = std::fs::remove_file(marks_dir(root).join(id));
}

impl Record {
    /// The OCI state with `status` (pid 0 when stopped).
    pub fn oci_state(&self, status: ContainerStatus) -> OciState {
        OciState {
            oci_version: vclab_contract::container::OCI_VERSION.to_string(),
            id: self.id.clone(),
            status,
            pid: if status == ContainerStatus::Stopped {
                0
            } else {
                self.init.pid
            },
            bundle: self.bundle.to_string_lossy().into_owned(),
            annotations: self.annotations.clone(),
            created: Some(self.created.clone()),
        }
    }
}

/// Writes `dir/name` through a temporary file and a rename.
fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<(), Error> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(name);
    std::fs::write(&tmp, data).map_err(create_err(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(create_err(&path))
}

/// One container's entry as the lifecycle verbs see it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The directory.
    pub dir: PathBuf,
    /// Container id (the directory's name).
    pub id: String,
    /// The `pid` file's text (owner line, then cgroup directories).
    pub owner: String,
    /// `state.json`, once written.
    pub record: Option<Record>,
}

impl Entry {
    /// Reads the entry of container `id` under `root`.
    pub fn open(root: &Path, id: &str) -> Result<Self, Error> {
        check_id(id)?;
        let dir = root.join(id);
        if !dir.is_dir() {
            return Err(Error::NotFound(id.to_string()));
        }
        let owner = std::fs::read_to_string(dir.join("pid")).unwrap_or_default();
        let path = dir.join(RECORD);
        let record = match std::fs::read(&path) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| Error::Read {
                id: id.to_string(),
                path: path.clone(),
                reason: e.to_string(),
            })?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(Error::Read {
                    id: id.to_string(),
                    path,
                    reason: e.to_string(),
                })
            }
        };
        Ok(Entry {
            dir,
            id: id.to_string(),
            owner,
            record,
        })
    }

    /// The container's process: from the record, or (an attached run) the
    /// owner line's third and fourth words.
    pub fn init(&self) -> Option<Proc> {
        if let Some(r) = &self.record {
            return Some(r.init);
        }
        if self.container_owned() {
            return None;
        }
        let mut w = self.owner.lines().next()?.split_whitespace().skip(2);
        Some(Proc {
            pid: w.next()?.parse().ok()?,
            start: w.next()?.parse().ok()?,
        })
    }

    /// The status: `creating` before the container's process is known;
    /// while it lives `created` (its `exec.fifo` is still there) or
    /// `running`; `stopped` once it has exited.
    pub fn status(&self) -> ContainerStatus {
        match self.init() {
            None => ContainerStatus::Creating,
            Some(p) if !p.alive() => ContainerStatus::Stopped,
            Some(_) if self.record.is_some() && self.dir.join(FIFO).exists() => {
                ContainerStatus::Created
            }
            Some(_) => ContainerStatus::Running,
        }
    }

    /// The container's cgroup directories (the `pid` file after its first line).
    pub fn cgroups(&self) -> Vec<PathBuf> {
        self.owner
            .lines()
            .skip(1)
            .filter(|l| !l.is_empty())
            .map(PathBuf::from)
            .collect()
    }

    /// Whether a launcher still owns the entry (an attached run, or a
    /// `create` in progress).
    pub fn launcher_alive(&self) -> bool {
        let first = self.owner.lines().next().unwrap_or("");
        !self.container_owned() && owner_alive(first)
    }

    /// Whether a created container owns the entry (kept until `delete`).
    pub fn container_owned(&self) -> bool {
        self.owner.starts_with(CONTAINER_OWNED)
    }

    /// The OCI state (pid 0 once stopped, as runc). An attached run without
    /// a record has no bundle or creation time to show.
    pub fn oci_state(&self) -> OciState {
        let status = self.status();
        if let Some(r) = &self.record {
            let mut st = r.oci_state(status);
            st.id = self.id.clone();
            return st;
        }
        OciState {
            oci_version: vclab_contract::container::OCI_VERSION.to_string(),
            id: self.id.clone(),
            status,
            pid: match (status, self.init()) {
                (ContainerStatus::Running, Some(p)) => p.pid,
                _ => 0,
            },
            bundle: String::new(),
            annotations: Default::default(),
            created: None,
        }
    }

    /// Removes the entry: mounts below it, its cgroups (tasks killed
    /// first), the directory.
    pub fn remove(&self) {
        remove_entry(&self.dir, &self.owner);
    }
}

/// The OCI state and status types (defined in `vclab-contract`).
pub use vclab_contract::container::{ContainerStatus, OciState};

/// The `pid` file's first word for an entry a created container owns.
const CONTAINER_OWNED: &str = "container ";

/// The entries under `root` that hold a container (skipping the harness's
/// and other foreign directories), sorted by id.
pub fn entries(root: &Path) -> Vec<Entry> {
    let Ok(dir) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = dir
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    ids.sort();
    ids.iter()
        .filter_map(|id| Entry::open(root, id).ok())
        .filter(|e| e.record.is_some() || e.owner.starts_with(|c: char| c.is_ascii_digit()))
        .filter(|e| e.record.is_some() || !e.id.starts_with("harness-"))
        .collect()
}

/// Now as RFC 3339 UTC with nanoseconds (`2026-12-01T09:12:00.123456789Z`).
pub fn rfc3339_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs(), d.subsec_nanos())
}

/// The civil UTC date and time of `secs` since the epoch: (year, month,
/// day, hour, minute, second), by Howard Hinnant's civil_from_days.
pub fn civil_utc(secs: u64) -> (i64, i64, i64, u64, u64, u64) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem / 3600, rem / 60 % 60, rem % 60)
}

/// Formats seconds since the epoch as RFC 3339 UTC.
pub fn rfc3339(secs: u64, nanos: u32) -> String {
    let (year, month, day, h, m, s) = civil_utc(secs);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{nanos:09}Z")
}

/// Removes a state directory. overlayfs leaves `work/work` with mode 000,
/// which a non-root owner cannot list: open it up first.
fn remove_tree(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(
        dir.join("work/work"),
        std::fs::Permissions::from_mode(0o700),
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The start time (clock ticks since boot, field 22 of `/proc/<pid>/stat`).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Whether `pid` is a zombie (state `Z` in `/proc/<pid>/stat`).
fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let rest = &stat[stat.rfind(')')? + 2..];
            rest.chars().next()
        })
        == Some('Z')
}

/// Whether the launcher recorded in `pid_text` ("pid starttime") still runs.
fn owner_alive(pid_text: &str) -> bool {
    let mut f = pid_text.split_whitespace();
    let (Some(pid), start) = (f.next().and_then(|p| p.parse::<u32>().ok()), f.next()) else {
        return false;
    };
    // A zombie has exited: its parent may reap it late (PID 1 does on some hosts).
    if zombie(pid) {
        return false;
    }
    match (start_time(pid), start.and_then(|s| s.parse::<u64>().ok())) {
        (Some(now), Some(then)) => then == 0 || now == then,
        _ => false,
    }
}

/// An entry without a pid file older than this is a launcher killed between
/// `mkdir` and writing the file.
const ORPHAN_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes what dead launchers left under `root`: mounts below their
/// directory (detached), their cgroups (tasks killed first), their
/// directory. Returns the ids swept. Entries of live launchers, of created
/// containers (kept until `delete`), and fresh entries without a pid file
/// yet, are left alone. It visits the entries launchers marked (see
/// [`marks_dir`]) and the harness's `harness-*` entries, so its cost does not
/// grow with the number of created containers; [`sweep_all`] visits every
/// entry.
pub fn sweep(root: &Path) -> Vec<String> {
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(marks_dir(root))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    if let Ok(d) = std::fs::read_dir(root) {
        names.extend(
            d.flatten()
                .map(|e| e.file_name())
                .filter(|n| n.to_string_lossy().starts_with("harness-")),
        );
    }
    names.sort();
    names.dedup();
    let swept: Vec<String> = names
        .iter()
        .filter(|n| sweep_one(root, n))
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    // A launcher of a lean container killed after making the shared memory
    // cgroup and before joining it leaves it empty: remove it if it is (an
    // rmdir of a cgroup in use fails with EBUSY; a launcher joining it
    // meanwhile makes it again).
    if !swept.is_empty() {
        if let Some(shared) = crate::cgroups::v1::shared_dir() {
            crate::cgroups::v1::release_shared(&shared);
        }
    }
    swept
}

/// [`sweep`] over every entry under `root` (also entries older launchers
/// did not mark); `list` uses it.
pub fn sweep_all(root: &Path) -> Vec<String> {
    let mut swept = sweep(root);
    let Ok(entries) = std::fs::read_dir(root) else {
        return swept;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().starts_with('.') && sweep_one(root, &name) {
            swept.push(name.to_string_lossy().into_owned());
        }
    }
    swept
}

/// [`sweep`], then again every 100 ms for up to `within` while an entry of a dead launcher is
/// left (kept because its cgroup is busy until the killed tasks are reaped, which this host's
/// PID 1 does late). For a guard, which sweeps once and exits.
pub fn sweep_settled(root: &Path, within: std::time::Duration) -> Vec<String> {
    let deadline = std::time::Instant::now() + within;
    let mut swept = sweep(root);
    while dead_entries(root) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        swept.extend(sweep(root));
    }
    swept
}

/// How many marked entries name a launcher that is gone.
fn dead_entries(root: &Path) -> usize {
    std::fs::read_dir(marks_dir(root))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| root.join(e.file_name()).is_dir() && marker_owner_dead(root, &e.file_name()))
        .count()
}

fn older_than_orphan_age(path: &Path) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > ORPHAN_AGE)
}

/// Creates `path` (in `dir`) holding `content`, failing with `AlreadyExists` when it exists. The
/// file is written unnamed (`O_TMPFILE`) and then linked into place, so it never exists empty: a
/// launcher killed before the link leaves nothing. Where the file system has no `O_TMPFILE`, it
/// is created, then written (a sweep that meets it empty waits for `ORPHAN_AGE`).
fn create_filled(dir: &Path, path: &Path, content: &[u8]) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let unnamed = std::fs::OpenOptions::new()
        .write(true)
        .mode(0o644)
        .custom_flags(libc::O_TMPFILE)
        .open(dir);
    let mut f = match unnamed {
        Ok(f) => f,
        Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR)) => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)?;
            return io::Write::write_all(&mut f, content);
        }
        Err(e) => return Err(e),
    };
    io::Write::write_all(&mut f, content)?;
    let from = std::ffi::CString::new(format!("/proc/self/fd/{}", f.as_raw_fd()))?;
    let to = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?;
    // SAFETY: two NUL-terminated paths that outlive the call; linkat only reads them.
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether the marker of `name` names a launcher that is gone (an empty or
/// missing marker says nothing).
fn marker_owner_dead(root: &Path, name: &std::ffi::OsStr) -> bool {
    let owner = std::fs::read_to_string(marks_dir(root).join(name)).unwrap_or_default();
    !owner.is_empty() && !owner_alive(owner.lines().next().unwrap_or(""))
}

/// Sweeps the entry `name` if a dead launcher left it; true if it did.
fn sweep_one(root: &Path, name: &std::ffi::OsStr) -> bool {
    let dir = root.join(name);
    if !dir.is_dir() {
        // A marker without an entry: a launcher killed right after marking
        // (its owner line dead), or one about to make its entry (alive).
        let marker = marks_dir(root).join(name);
        if marker_owner_dead(root, name) || older_than_orphan_age(&marker) {
            unmark(root, name);
        }
        return false;
    }
    // An empty file reads like a missing one: its writer may be between
    // creating and filling it (a writer that does not rename).
    let owner = match std::fs::read_to_string(dir.join("pid")) {
        Ok(text) if !text.is_empty() => text,
        _ if older_than_orphan_age(&dir) || marker_owner_dead(root, name) => String::new(),
        _ => return false,
    };
    let first = owner.lines().next().unwrap_or("");
    // A created container keeps its entry, stopped or not, until `delete`.
    if first.starts_with(CONTAINER_OWNED) {
        unmark(root, name);
        return false;
    }
    if owner_alive(first) {
        return false;
    }
    remove_entry_when_free(&dir, &owner)
}

/// Removes one state entry whose owner is gone: mounts below `dir`
/// (detached), the cgroups listed after the first line of `owner` (the pid
/// file's text; tasks killed first), then the directory.
pub fn remove_entry(dir: &Path, owner: &str) {
    unmount_below(dir);
    remove_cgroups(owner);
    remove_tree(dir);
    if let (Some(root), Some(id)) = (dir.parent(), dir.file_name()) {
        unmark(root, id);
    }
}

/// [`remove_entry`] for the sweep of a dead launcher's entry, which keeps the entry (and its
/// marker) while one of its cgroups cannot be removed yet — a task killed there but not yet
/// reaped keeps a v1 cgroup busy past the retries — so that the next sweep tries again instead
/// of losing the only record of it. True when the entry is gone.
fn remove_entry_when_free(dir: &Path, owner: &str) -> bool {
    unmount_below(dir);
    if !remove_cgroups(owner) {
        return false;
    }
    remove_tree(dir);
    if let (Some(root), Some(id)) = (dir.parent(), dir.file_name()) {
        unmark(root, id);
    }
    true
}

/// Kills the tasks of, then removes, each cgroup listed after the owner line; true when none is
/// left.
fn remove_cgroups(owner: &str) -> bool {
    let mut all = true;
    for cg in owner.lines().skip(1).filter(|l| !l.is_empty()) {
        let cg = Path::new(cg);
        kill_tasks(cg);
        all &= crate::cgroups::remove_dir(cg).is_ok();
    }
    all
}

fn unmount_below(dir: &Path) {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    let mut targets: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|t| Path::new(t).starts_with(dir))
        .collect();
    targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
    for t in targets {
        let _ = nix::mount::umount2(t, nix::mount::MntFlags::MNT_DETACH);
    }
}

fn kill_tasks(cgroup: &Path) {
    let Ok(procs) = std::fs::read_to_string(cgroup.join("cgroup.procs")) else {
        return;
    };
    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_then_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("vclab");
        let s = State::create(&root, "a1").unwrap();
        s.write_owner(&[PathBuf::from("/sys/fs/cgroup/pids/vclab-a1")])
            .unwrap();
        let text = std::fs::read_to_string(s.dir.join("pid")).unwrap();
        assert!(
            text.starts_with(&format!("{} ", std::process::id())),
            "{text}"
        );
        assert!(text.ends_with("\n/sys/fs/cgroup/pids/vclab-a1\n"), "{text}");
        assert!(matches!(State::create(&root, "a1"), Err(Error::Exists(_))));
        // The refused second launcher leaves the first one's marker alone.
        assert!(marks_dir(&root).join("a1").exists());
        s.remove();
        assert!(!marks_dir(&root).join("a1").exists());
        // A refused launcher removes the marker it made itself (the entry's owner had none).
        std::fs::create_dir(root.join("b1")).unwrap();
        assert!(matches!(State::create(&root, "b1"), Err(Error::Exists(_))));
        assert!(!marks_dir(&root).join("b1").exists());
        assert!(!root.join("a1").exists());
    }

    #[test]
    fn a_marker_without_an_entry_goes_once_its_launcher_is_dead() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("vclab");
        std::fs::create_dir_all(marks_dir(&root)).unwrap();
        // A launcher killed between marking and making its entry (no such pid).
        std::fs::write(marks_dir(&root).join("dead1"), "999999999 1\n").unwrap();
        // One that is alive and about to make its entry: this process.
        assert!(mark(&root, "live1").unwrap());
        sweep(&root);
        assert!(!marks_dir(&root).join("dead1").exists());
        assert!(marks_dir(&root).join("live1").exists());
        // An entry without its pid file yet, whose launcher died: swept at once.
        std::fs::create_dir_all(root.join("dead2")).unwrap();
        std::fs::write(marks_dir(&root).join("dead2"), "999999999 1\n").unwrap();
        assert_eq!(sweep(&root), ["dead2"]);
        assert!(!root.join("dead2").exists());
        // An empty marker (an older launcher's) waits for ORPHAN_AGE.
        std::fs::write(marks_dir(&root).join("old1"), "").unwrap();
        sweep(&root);
        assert!(marks_dir(&root).join("old1").exists());
    }

    #[test]
    fn ids_that_leave_the_root_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("vclab");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        for id in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "sub/..",
            ".hidden",
            &"a".repeat(65),
        ] {
            assert!(
                matches!(Entry::open(&root, id), Err(Error::InvalidId(_))),
                "{id:?}"
            );
            assert!(
                matches!(State::create(&root, id), Err(Error::InvalidId(_))),
                "{id:?}"
            );
        }
        // Nothing above or beside the root was touched.
        assert!(root.join("sub").is_dir() && tmp.path().is_dir());
        assert!(valid_id("abc-1_2.x") && valid_id(&"a".repeat(64)));
    }

    #[test]
    fn a_marker_is_never_seen_empty_and_is_made_once() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("m");
        create_filled(tmp.path(), &path, b"123 456\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"123 456\n");
        let again = create_filled(tmp.path(), &path, b"other\n").unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"123 456\n");
        // Nothing else in the directory: the unnamed file went into place or away.
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
        let root = tmp.path().join("vclab");
        std::fs::create_dir_all(&root).unwrap();
        assert!(mark(&root, "c1").unwrap());
        assert!(!mark(&root, "c1").unwrap());
        let owner = std::fs::read_to_string(marks_dir(&root).join("c1")).unwrap();
        assert!(
            owner.starts_with(&format!("{} ", std::process::id())),
            "{owner}"
        );
    }

    #[test]
    fn a_dead_launchers_entry_stays_until_its_cgroups_can_go() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("entry");
        std::fs::create_dir_all(&dir).unwrap();
        // Stands for a cgroup that refuses rmdir: a directory that is not empty.
        let cg = tmp.path().join("cg");
        std::fs::create_dir_all(&cg).unwrap();
        std::fs::write(cg.join("task"), b"").unwrap();
        let owner = format!("999999999 1\n{}\n", cg.display());
        assert!(!remove_entry_when_free(&dir, &owner));
        assert!(dir.exists() && cg.exists());
        std::fs::remove_file(cg.join("task")).unwrap();
        assert!(remove_entry_when_free(&dir, &owner));
        assert!(!dir.exists() && !cg.exists());
    }

    #[test]
    fn sweep_removes_dead_and_keeps_live() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("vclab");
        let live = State::create(&root, "live").unwrap();
        live.write_owner(&[]).unwrap();
        let dead = root.join("dead");
        std::fs::create_dir_all(dead.join("upper")).unwrap();
        let gone_cg = tmp.path().join("fake-cgroup");
        std::fs::create_dir(&gone_cg).unwrap();
        // A pid that cannot exist (above pid_max).
        std::fs::write(
            dead.join("pid"),
            format!("99999999 5\n{}\n", gone_cg.display()),
        )
        .unwrap();
        let fresh = root.join("fresh");
        std::fs::create_dir(&fresh).unwrap();
        // Not marked: only the full sweep visits it.
        assert!(sweep(&root).is_empty());
        assert_eq!(sweep_all(&root), vec!["dead".to_string()]);
        assert!(!dead.exists());
        assert!(!gone_cg.exists());
        assert!(live.dir.exists());
        assert!(fresh.exists());
        // A marked entry of a dead launcher: the quick sweep finds it, and
        // drops its marker.
        let killed = State::create(&root, "killed").unwrap();
        std::fs::write(killed.dir.join("pid"), "99999999 5\n").unwrap();
        let marks = marks_dir(&root);
        assert_eq!(marks, tmp.path().join("vclab-launchers"));
        assert!(marks.join("killed").exists());
        assert_eq!(sweep(&root), vec!["killed".to_string()]);
        assert!(!killed.dir.exists());
        assert!(!marks.join("killed").exists());
        assert!(marks.join("live").exists());
        live.remove();
        assert!(!marks.join("live").exists());
    }

    #[test]
    fn created_containers_are_not_swept() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("vclab");
        let s = State::create(&root, "det").unwrap();
        s.hand_over(
            Proc {
                pid: 99_999_999,
                start: 5,
            },
            &[],
        )
        .unwrap();
        assert!(sweep(&root).is_empty());
        let e = Entry::open(&root, "det").unwrap();
        assert!(!e.launcher_alive());
        assert_eq!(e.status(), ContainerStatus::Creating, "no record yet");
        let rec = Record {
            id: "det".into(),
            init: Proc {
                pid: 99_999_999,
                start: 5,
            },
            detached: true,
            bundle: "/b".into(),
            annotations: Default::default(),
            created: rfc3339(0, 0),
            owner_uid: 0,
            poststart: Vec::new(),
            poststop: Vec::new(),
        };
        s.write_record(&rec).unwrap();
        let e = Entry::open(&root, "det").unwrap();
        assert_eq!(e.status(), ContainerStatus::Stopped);
        let st = e.oci_state();
        assert_eq!((st.pid, st.bundle.as_str()), (0, "/b"));
        assert_eq!(entries(&root).len(), 1);
        assert!(matches!(
            Entry::open(&root, "nope"),
            Err(Error::NotFound(_))
        ));
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1_798_761_599, 0), "2026-12-31T23:59:59.000000000Z");
    }

    #[test]
    fn reused_pid_counts_as_dead() {
        let me = std::process::id();
        let start = start_time(me).unwrap();
        assert!(owner_alive(&format!("{me} {start}")));
        assert!(!owner_alive(&format!("{me} {}", start + 1)));
        assert!(!owner_alive("garbage"));
    }
}
