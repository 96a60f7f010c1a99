//! The jailed child's side, in order: new mount and net namespaces (the pid namespace came with
//! the fork) → private propagation → a small tmpfs on the jail's root holding only `/dev/kvm`,
//! `/dev/null` and read-only binds of the kernel (and initrd) → `pivot_root` into it, the old
//! root detached, the new root read-only → groups, gid, uid dropped (capabilities go with uid 0)
//! → the parent-death signal set again (a uid change clears it). Firecracker's jailer does the
//! same with a copied binary and `chroot`; here the VMM is already running, so nothing is
//! executed inside.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Errors of building the jail, each naming the call and the path.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed.
    #[error("jail: {call} {path} failed: {source}")]
    Call {
        /// The call.
        call: &'static str,
        /// Its path argument (or what it acted on).
        path: String,
        /// The OS error.
        source: io::Error,
    },
    /// A path holds a NUL byte.
    #[error("jail: the path {0:?} holds a NUL byte")]
    Nul(PathBuf),
    /// A device the jail needs is not a character device.
    #[error("jail: {0} is not a character device (is the kvm module loaded?)")]
    NotDevice(String),
}

/// What goes into the jail.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The jail's root (a directory on the host).
    pub root: PathBuf,
    /// Host files bound read-only into the root: (host path, name inside the root).
    pub files: Vec<(PathBuf, &'static str)>,
    /// The uid and gid the VMM runs as.
    pub uid: u32,
    /// The gid.
    pub gid: u32,
}

fn c(path: &Path) -> Result<CString, Error> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Nul(path.to_path_buf()))
}

fn check(rc: libc::c_int, call: &'static str, path: &Path) -> Result<(), Error> {
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::Call {
            call,
            path: path.display().to_string(),
            source: io::Error::last_os_error(),
        })
    }
}

fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<(), Error> {
    let src = source.map(c).transpose()?;
    let tgt = c(target)?;
    let fs = fstype.map(|f| CString::new(f).unwrap_or_default());
    let data = data.map(|d| CString::new(d).unwrap_or_default());
    let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: every pointer is null or a NUL-terminated string that outlives the call.
    let rc = unsafe { libc::mount(ptr(&src), tgt.as_ptr(), ptr(&fs), flags, ptr(&data).cast()) };
    check(rc, "mount", target)
}

/// Makes a character device node at `path` with the same device number as `like` on the host.
fn mknod_like(like: &Path, path: &Path, mode: libc::mode_t) -> Result<(), Error> {
    let meta = std::fs::metadata(like).map_err(|source| Error::Call {
        call: "stat",
        path: like.display().to_string(),
        source,
    })?;
    if !meta.file_type().is_char_device() {
        return Err(Error::NotDevice(like.display().to_string()));
    }
    let p = c(path)?;
    // SAFETY: `p` is NUL-terminated; mknod only creates the node.
    let rc = unsafe { libc::mknod(p.as_ptr(), libc::S_IFCHR | mode, meta.rdev()) };
    check(rc, "mknod", path)?;
    // The umask may have cut the mode: set it as asked.
    // SAFETY: `p` is NUL-terminated.
    let rc = unsafe { libc::chmod(p.as_ptr(), mode) };
    check(rc, "chmod", path)
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), Error> {
    let p = c(path)?;
    // SAFETY: `p` is NUL-terminated.
    let rc = unsafe { libc::chown(p.as_ptr(), uid, gid) };
    check(rc, "chown", path)
}

fn io_call(call: &'static str, path: &Path, r: io::Result<()>) -> Result<(), Error> {
    r.map_err(|source| Error::Call {
        call,
        path: path.display().to_string(),
        source,
    })
}

/// New mount and net namespaces for the calling (already forked, single-threaded) process.
pub fn unshare() -> Result<(), Error> {
    // SAFETY: unshare takes only flags; the caller is single-threaded.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWNET) };
    check(rc, "unshare(CLONE_NEWNS|CLONE_NEWNET)", Path::new("-"))
}

/// Builds the root and enters it; returns the paths of the plan's files inside.
pub fn enter(plan: &Plan) -> Result<Vec<PathBuf>, Error> {
    let root = &plan.root;
    mount(
        None,
        Path::new("/"),
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
    )?;
    mount(
        Some(Path::new("tmpfs")),
        root,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some("mode=0755,size=64k,nr_inodes=32"),
    )?;
    let dev = root.join("dev");
    io_call("mkdir", &dev, std::fs::create_dir(&dev))?;
    mknod_like(Path::new("/dev/kvm"), &dev.join("kvm"), 0o600)?;
    chown(&dev.join("kvm"), plan.uid, plan.gid)?;
    mknod_like(Path::new("/dev/null"), &dev.join("null"), 0o666)?;
    let mut inside = Vec::new();
    for (host, name) in &plan.files {
        let target = root.join(name);
        io_call("create", &target, std::fs::write(&target, b""))?;
        mount(Some(host), &target, None, libc::MS_BIND, None)?;
        let ro = libc::MS_BIND
            | libc::MS_REMOUNT
            | libc::MS_RDONLY
            | libc::MS_NOSUID
            | libc::MS_NODEV
            | libc::MS_NOEXEC;
        mount(None, &target, None, ro, None)?;
        inside.push(Path::new("/").join(name));
    }
    pivot(root)?;
    let ro_root = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID;
    mount(None, Path::new("/"), None, ro_root | libc::MS_NOEXEC, None)?;
    Ok(inside)
}

/// `pivot_root(root, root)`, then the old root (stacked under it) detached.
fn pivot(root: &Path) -> Result<(), Error> {
    io_call("chdir", root, std::env::set_current_dir(root))?;
    let dot = c(Path::new("."))?;
    // SAFETY: both arguments are the NUL-terminated "."; the call changes only this mount ns.
    let rc = unsafe { libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) };
    check(rc as libc::c_int, "pivot_root", root)?;
    // SAFETY: "." is NUL-terminated; MNT_DETACH unmounts the old root lazily.
    let rc = unsafe { libc::umount2(dot.as_ptr(), libc::MNT_DETACH) };
    check(rc, "umount2 (old root)", root)?;
    io_call("chdir", Path::new("/"), std::env::set_current_dir("/"))
}

/// Drops to `uid`/`gid` with no supplementary groups (uid 0 → non-zero clears every
/// capability), then sets `PR_SET_DUMPABLE` (so /proc shows the process as its uid's) and the
/// parent-death signal again.
pub fn drop_privileges(uid: u32, gid: u32) -> Result<(), Error> {
    let what = Path::new("-");
    // SAFETY: an empty group list; no pointer is read.
    let rc = unsafe { libc::setgroups(0, std::ptr::null()) };
    check(rc, "setgroups", what)?;
    // SAFETY: setresgid takes only ids.
    let rc = unsafe { libc::setresgid(gid, gid, gid) };
    check(rc, "setresgid", what)?;
    // SAFETY: setresuid takes only ids.
    let rc = unsafe { libc::setresuid(uid, uid, uid) };
    check(rc, "setresuid", what)?;
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
    check(rc, "prctl(PR_SET_DUMPABLE)", what)?;
    parent_death_signal()?;
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    check(rc, "prctl(PR_SET_NO_NEW_PRIVS)", what)
}

/// SIGKILL when the parent (the jailing VMM) dies.
pub fn parent_death_signal() -> Result<(), Error> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    check(rc, "prctl(PR_SET_PDEATHSIG)", Path::new("-"))
}
