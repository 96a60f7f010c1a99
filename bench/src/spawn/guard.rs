//! What outlives a harness that is SIGKILLed: the containers of OCI peers
//! (runc and crun keep them running when their own process dies), their
//! bundles, the launcher's state. The harness keeps all of it under one
//! state entry, `/run/vclab/harness-<pid>/` (rootless: the launcher's
//! rootless state root), in the launcher's state format (a `pid` file with
//! the owner's pid and start time: the guard's, so that a launcher sweeping
//! dead owners leaves the entry to the guard), plus the bundles and one small
//! file per OCI container, `oci.d/<id>` (`RUNTIME BIN`): registering or
//! forgetting one costs the same with 5 or 5,000 held.
//!
//! A guard process (`vclab guard DIR`, hidden) starts with the harness, in
//! its own session (a Ctrl-C to the terminal does not reach it), and blocks
//! reading a pipe whose write end only the harness holds. When the harness
//! ends in any way, the pipe closes: the guard deletes the OCI containers,
//! kills what is left in the listed cgroups, removes the entry and sweeps
//! the entries of dead launchers ([`vclab_container::state::sweep`]).
//! A harness that ends normally has cleaned up already; the guard finds nothing.

use std::io::{Read, Write};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a guard waits for a dead harness to be reaped (its /proc entry
/// vanishes) before cleaning anyway.
const REAP_WAIT: Duration = Duration::from_secs(3);

/// Errors of the harness's state entry.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// The state entry could not be created or written.
    #[error(
        "cannot write the harness state {path}: {source} (is /run/vclab writable? run as root)"
    )]
    Write {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The guard process could not be started.
    #[error("cannot start the guard process {program}: {source}")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The harness's state entry and its guard.
#[derive(Debug)]
pub struct Harness {
    dir: PathBuf,
    guard: Mutex<Option<Child>>,
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> GuardError + '_ {
    move |source| GuardError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// The state root for this user (the launcher's).
pub fn state_root() -> PathBuf {
    vclab_container::state::state_root(!nix::unistd::geteuid().is_root())
}

impl Harness {
    /// Creates `harness-<pid>` under the state root and, when `guard_exe` is
    /// given (the `vclab` binary), starts its guard. A SIGINT inherited
    /// ignored is given its default action back ([`restore_default_sigint`]).
    pub fn start(guard_exe: Option<&Path>) -> Result<Self, GuardError> {
        restore_default_sigint();
        let root = state_root();
        let dir = root.join(format!("harness-{}", std::process::id()));
        // The guard starts before the entry exists: a harness killed at any moment after
        // the directory is made has a guard to remove it (it cleans what it finds).
        let guard = guard_exe.map(|exe| spawn_guard(exe, &dir)).transpose()?;
        // The entry's owner is the guard when there is one: it outlives the
        // harness until it has cleaned up, so a launcher sweeping dead owners
        // never removes the entry (and its container records) first.
        let owner = guard.as_ref().map_or(std::process::id(), Child::id);
        let h = Harness {
            dir,
            guard: Mutex::new(guard),
        };
        std::fs::create_dir_all(&h.dir).map_err(write_err(&h.dir))?;
        h.write_owner(owner)?;
        Ok(h)
    }

    /// The state entry.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A fresh directory for one instance's files (`<dir>/<name>`).
    pub fn instance_dir(&self, name: &str) -> Result<PathBuf, GuardError> {
        let d = self.dir.join(name);
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).map_err(write_err(&d))?;
        Ok(d)
    }

    /// Writes the entry's `pid` file: `owner`'s pid and start time.
    fn write_owner(&self, owner: u32) -> Result<(), GuardError> {
        let me = owner;
        let start = std::fs::read_to_string(format!("/proc/{me}/stat"))
            .ok()
            .and_then(|s| {
                let rest = &s[s.rfind(')')? + 2..];
                rest.split(' ').nth(19).map(str::to_string)
            })
            .unwrap_or_else(|| "0".into());
        replace(&self.dir.join("pid"), &format!("{me} {start}\n"))
    }

    /// Records an OCI container (`runtime` is `runc`, `crun` or
    /// `vclab-container`), for the guard to delete (`BIN delete -f ID`, which
    /// also removes its cgroups).
    pub fn register_oci(&self, runtime: &str, bin: &Path, id: &str) -> Result<(), GuardError> {
        let d = self.dir.join(OCI_DIR);
        std::fs::create_dir_all(&d).map_err(write_err(&d))?;
        replace(&d.join(id), &format!("{runtime} {}\n", bin.display()))
    }

    /// Records a file outside the entry that the run made (an io disk image on a disk-backed
    /// file system), for the guard to remove after a SIGKILL; the run removes it itself
    /// otherwise, then calls [`Harness::unregister_path`].
    pub fn register_path(&self, path: &Path) -> Result<(), GuardError> {
        let d = self.dir.join(PATHS_DIR);
        std::fs::create_dir_all(&d).map_err(write_err(&d))?;
        replace(&d.join(path_record(path)), &format!("{}\n", path.display()))
    }

    /// Forgets a file recorded with [`Harness::register_path`].
    pub fn unregister_path(&self, path: &Path) {
        let _ = std::fs::remove_file(self.dir.join(PATHS_DIR).join(path_record(path)));
    }

    /// Forgets an OCI container that has been deleted.
    pub fn unregister_oci(&self, id: &str) {
        let _ = std::fs::remove_file(self.dir.join(OCI_DIR).join(id));
    }
}

/// A harness may end by SIGINT at any moment (its instances die with it, its
/// guard removes the rest), and a Ctrl-C or a test's SIGINT relies on that.
/// A process started with `&` by a non-interactive shell inherits SIGINT
/// *ignored* (HOST-NOTES.md): `vclab compare` would then run on to its end.
/// So an ignored SIGINT is set back to the default action; a handler the
/// program installed itself (`vclab density`'s) is kept.
pub fn restore_default_sigint() {
    // SAFETY: all-zero is a valid `sigaction` (no handler, empty mask) for
    // the kernel to overwrite.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only reads the current one into `old`, a
    // valid, writable `sigaction`.
    if unsafe { libc::sigaction(libc::SIGINT, std::ptr::null(), &mut old) } != 0 {
        return;
    }
    if old.sa_sigaction == libc::SIG_IGN {
        // SAFETY: the default action runs no code of ours.
        let _ = unsafe {
            nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGINT,
                nix::sys::signal::SigHandler::SigDfl,
            )
        };
    }
}

/// The entry's folder of OCI container records.
const OCI_DIR: &str = "oci.d";

/// The entry's folder of records of files made outside it ([`Harness::register_path`]).
const PATHS_DIR: &str = "paths.d";

/// A record's name for `path`: its bytes in hex (unique, no `/`, never starting with `.`).
fn path_record(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Removes the files recorded in `dir/paths.d` (only names starting with `vclab`: a record is
/// never a way to delete anything else).
fn remove_recorded_paths(dir: &Path) {
    for e in std::fs::read_dir(dir.join(PATHS_DIR))
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(text) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        let path = Path::new(text.trim_end_matches('\n'));
        let ours = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("vclab"));
        if ours && path.is_absolute() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Writes `path` through a temporary file and a rename: a launcher sweeping
/// `/run/vclab` meanwhile reads the old file or the new one, never an empty
/// one (which it would take for a dead owner).
fn replace(path: &Path, text: &str) -> Result<(), GuardError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).map_err(write_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(write_err(path))
}

/// Every place a cgroup named `id` at a hierarchy's root can be
/// (`/sys/fs/cgroup/<controller>/<id>` on v1 and hybrid, `/sys/fs/cgroup/<id>` on v2).
pub fn cgroup_dirs_named(id: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut out = vec![root.join(id)];
    if let Ok(entries) = std::fs::read_dir(root) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && !e.file_type().is_ok_and(|t| t.is_symlink()) {
                out.push(p.join(id));
            }
        }
    }
    out
}

fn spawn_guard(exe: &Path, dir: &Path) -> Result<Child, GuardError> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(exe);
    cmd.arg("guard")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the hook runs in the forked child before exec and only calls
    // setsid(2), which touches no lock or allocator state.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    cmd.spawn().map_err(|source| GuardError::Spawn {
        program: exe.to_path_buf(),
        source,
    })
}

impl Drop for Harness {
    fn drop(&mut self) {
        // Every instance has been dropped by now (each cleans up its own);
        // what remains is removed here, then the guard is let go.
        clean(&self.dir);
        let guard = self.guard.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut g) = guard {
            // One byte says "ended in order": the guard exits at once.
            if let Some(mut stdin) = g.stdin.take() {
                let _ = stdin.write_all(b"x");
            }
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = g.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = g.kill();
            let _ = g.wait();
        }
    }
}

/// Deletes the OCI containers recorded in `dir/oci.d`, then removes the
/// entry (the tasks of the cgroups its pid file lists killed first).
pub fn clean(dir: &Path) {
    for e in std::fs::read_dir(dir.join(OCI_DIR))
        .into_iter()
        .flatten()
        .flatten()
    {
        let id = e.file_name().to_string_lossy().into_owned();
        if id.starts_with('.') {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        if let Some((runtime, bin)) = text.trim_end().split_once(' ') {
            delete_until_gone(runtime, Path::new(bin), &id, dir.parent());
        }
        remove_oci_cgroups(Path::new(CGROUP_ROOT), &id);
    }
    remove_recorded_paths(dir);
    let owner = std::fs::read_to_string(dir.join("pid")).unwrap_or_default();
    vclab_container::state::remove_entry(dir, &owner);
}

/// How long [`clean`] retries the delete of a vclab container whose entry stays.
const DELETE_RETRY: Duration = Duration::from_secs(5);

/// `BIN delete -f ID`, again every 100 ms while a vclab container's entry `root/ID` is still
/// there, for up to [`DELETE_RETRY`]: a launcher killed with its harness mid-hand-over can sit
/// unreaped (this host's PID 1 reaps late) and still look alive to the first delete, which
/// then leaves the entry that its container took over a moment before.
fn delete_until_gone(runtime: &str, bin: &Path, id: &str, root: Option<&Path>) {
    let deadline = Instant::now() + DELETE_RETRY;
    loop {
        delete_oci(runtime, bin, id);
        let left = runtime == "vclab-container" && root.is_some_and(|r| r.join(id).exists());
        if !left || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Where the cgroup hierarchies are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Removes the cgroups named `/ID` (the `cgroupsPath` the harness gives its OCI containers)
/// that the runtime's own `delete` left: on cgroup v1 runc gives up on a controller whose
/// cgroup is still busy with a task killed but not yet reaped. Looks in every hierarchy under
/// `root` (v1 controllers, the hybrid host's `unified`) and at `root/ID` (cgroup v2).
pub fn remove_oci_cgroups(root: &Path, id: &str) {
    if !id.starts_with("vclab") || id.contains('/') {
        return;
    }
    let mut dirs = vec![root.join(id)];
    for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
        dirs.push(e.path().join(id));
    }
    for d in dirs.iter().filter(|d| d.is_dir()) {
        let _ = vclab_container::cgroups::remove_dir(d);
    }
}

/// `BIN delete -f ID` (crun in a private mount namespace without the cgroup2
/// mount, as it ran); errors are ignored: the container may be gone already.
pub fn delete_oci(runtime: &str, bin: &Path, id: &str) {
    let mut cmd = Command::new(bin);
    cmd.args(["delete", "-f", id]);
    if runtime == "crun" {
        super::enter_private_mount_ns_on_spawn(&mut cmd);
    }
    let _ = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The guard process: waits for its stdin to close (a harness that ended in
/// order wrote a byte first: nothing to do), then for the harness
/// (`harness-<pid>` in `dir`'s name) to be gone, then cleans `dir` and sweeps
/// dead launchers. Returns the exit code.
pub fn guard_main(dir: &Path) -> i32 {
    let mut stdin = std::io::stdin();
    let mut buf = [0u8; 64];
    let mut in_order = false;
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => in_order = true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if in_order {
        return 0;
    }
    let pid = dir
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("harness-"))
        .and_then(|p| p.parse::<i32>().ok());
    if let Some(pid) = pid {
        let deadline = Instant::now() + REAP_WAIT;
        while Instant::now() < deadline && super::tree::state(pid).is_some_and(|s| s != 'Z') {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    if dir.exists() {
        clean(dir);
    }
    if let Some(root) = dir.parent() {
        vclab_container::state::sweep_settled(root, SETTLE);
    }
    0
}

/// How long the guard keeps sweeping entries whose cgroups are still busy.
const SETTLE: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftover_oci_cgroups_go_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for d in [
            "memory/vclab-compare-1-runc-2",
            "cpuset/vclab-compare-1-runc-2",
            "unified/vclab-compare-1-runc-2",
            "vclab-compare-1-runc-2",
            "memory/vclab-compare-1-runc-3",
            "memory/other",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        remove_oci_cgroups(root, "vclab-compare-1-runc-2");
        for gone in ["memory", "cpuset", "unified"] {
            assert!(!root.join(gone).join("vclab-compare-1-runc-2").exists());
        }
        assert!(!root.join("vclab-compare-1-runc-2").exists());
        assert!(root.join("memory/vclab-compare-1-runc-3").exists());
        assert!(root.join("memory/other").exists());
        // Not a lab name, or not a plain name: left alone.
        remove_oci_cgroups(root, "other");
        remove_oci_cgroups(root, "../memory");
        assert!(root.join("memory/other").exists());
    }

    #[test]
    fn recorded_paths_are_removed_with_the_entry_and_only_lab_names() {
        let tmp = tempfile::tempdir().unwrap();
        let entry = tmp.path().join("harness-1");
        std::fs::create_dir_all(&entry).unwrap();
        let h = Harness {
            dir: entry.clone(),
            guard: Mutex::new(None),
        };
        let img = tmp.path().join("vclab-io-1.img");
        let other = tmp.path().join("precious.img");
        let forgotten = tmp.path().join("vclab-io-2.img");
        for f in [&img, &other, &forgotten] {
            std::fs::write(f, b"x").unwrap();
            h.register_path(f).unwrap();
        }
        h.unregister_path(&forgotten);
        std::mem::forget(h);
        clean(&entry);
        assert!(!img.exists(), "a recorded lab file is removed");
        assert!(other.exists(), "a file without a lab name is kept");
        assert!(
            forgotten.exists(),
            "an unregistered file is not the guard's"
        );
        assert!(!entry.exists());
    }
}
