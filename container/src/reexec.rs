//! CVE-2019-5736: a container must not be able to write the launcher's
//! binary. The container's first process is a clone of the launcher, so
//! until its `execve` its `/proc/self/exe` is the launcher's binary (and an
//! `--init` PID 1 never execs); a process in the container that gets hold of
//! that link (`/proc/1/exe`, or a `#!/proc/self/exe` script as the command)
//! could reopen it for writing once no launcher runs it any more.
//!
//! So before it starts a container the launcher re-executes itself from a
//! binary the container cannot write, as runc does:
//! 1. already protected: `/proc/self/exe` is on a read-only mount (this
//!    re-exec, or a binary installed on a read-only file system), or a
//!    sealed memfd → nothing to do;
//! 2. as root: a detached read-only bind mount of the binary
//!    (`open_tree(OPEN_TREE_CLONE)` + `mount_setattr(MOUNT_ATTR_RDONLY)`)
//!    and `execveat` of it — no copy, the page cache is shared; the mount is
//!    in no namespace, so nothing can remount it;
//! 3. otherwise (rootless, or a kernel before 5.12): a sealed memfd copy
//!    (F_SEAL_WRITE, SHRINK, GROW, SEAL) and `execveat` of it.
//!
//! Writing through the link then fails (EROFS, or EPERM on the seals) and the
//! host binary is never touched. A library caller of [`crate::run`] runs the
//! container from its own binary: the protection is the command line's.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;

/// Set in the environment of the re-executed launcher, so that a re-exec
/// that did not protect the binary fails instead of looping.
const MARKER: &str = "_VCLAB_REEXEC";

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A step of the re-exec failed.
    #[error(
        "cannot protect the launcher binary from the container (CVE-2019-5736): {what}: {errno}"
    )]
    Step {
        /// The step.
        what: &'static str,
        /// The error.
        errno: Errno,
    },
    /// The re-executed launcher still runs from a writable binary.
    #[error("cannot protect the launcher binary from the container (CVE-2019-5736): the re-executed launcher still runs from a writable file; install it on a read-only file system")]
    Unprotected,
}

fn step(what: &'static str) -> impl Fn(Errno) -> Error {
    move |errno| Error::Step { what, errno }
}

/// Whether this process runs from a binary the container cannot write.
pub fn protected() -> Result<bool, Error> {
    let exe = nix::fcntl::open(
        "/proc/self/exe",
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(step("open /proc/self/exe"))?;
    let vfs = nix::sys::statvfs::fstatvfs(&exe).map_err(step("statvfs /proc/self/exe"))?;
    if vfs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
        return Ok(true);
    }
    let file = std::fs::File::open("/proc/self/exe").map_err(|e| Error::Step {
        what: "read /proc/self/exe",
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
    })?;
    let seals = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GET_SEALS).unwrap_or(0);
    Ok(seals & libc::F_SEAL_WRITE != 0)
}

/// Re-executes the launcher from a protected binary unless it already runs
/// from one. Returns only when it does (or with the error).
pub fn ensure_protected() -> Result<(), Error> {
    let again = std::env::var_os(MARKER).is_some();
    if again {
        std::env::remove_var(MARKER);
    }
    if protected()? {
        return Ok(());
    }
    if again {
        return Err(Error::Unprotected);
    }
    let exe = match read_only_mount() {
        Ok(fd) => fd,
        Err(_) => sealed_copy()?,
    };
    let argv: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
        .collect();
    let mut envp: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    envp.push(CString::new(format!("{MARKER}=1")).unwrap_or_default());
    let errno = match nix::unistd::execveat(&exe, c"", &argv, &envp, AtFlags::AT_EMPTY_PATH) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    Err(Error::Step {
        what: "execveat the protected launcher",
        errno,
    })
}

/// A detached read-only bind mount of the running binary (needs
/// CAP_SYS_ADMIN; Linux 5.12 for `mount_setattr`).
fn read_only_mount() -> Result<OwnedFd, Errno> {
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC as libc::c_uint;
    // SAFETY: the path is a NUL-terminated literal; open_tree returns a new
    // descriptor or -1 and writes no memory of ours.
    let raw = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c"/proc/self/exe".as_ptr(),
            flags,
        )
    };
    if raw < 0 {
        return Err(Errno::last());
    }
    // SAFETY: `raw` is a new descriptor owned by nobody else.
    let tree = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: `attr` is a valid mount_attr of the size passed, read by the
    // kernel during the call only; the path is an empty NUL-terminated
    // literal (AT_EMPTY_PATH: the mount `tree` itself).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if rc != 0 {
        return Err(Errno::last());
    }
    Ok(tree)
}

/// A sealed memfd copy of the running binary.
fn sealed_copy() -> Result<OwnedFd, Error> {
    use nix::sys::memfd::{memfd_create, MFdFlags as MemFdCreateFlag};
    let base = MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING;
    // MFD_EXEC (Linux 6.3) says the copy is meant to be executed.
    let exec = MemFdCreateFlag::from_bits_retain(0x0010);
    let fd = memfd_create(c"vclab-container", base | exec)
        .or_else(|_| memfd_create(c"vclab-container", base))
        .map_err(step("memfd_create"))?;
    let mut src = std::fs::File::open("/proc/self/exe").map_err(|e| Error::Step {
        what: "read /proc/self/exe",
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
    })?;
    let mut dst = std::fs::File::from(fd);
    std::io::copy(&mut src, &mut dst).map_err(|e| Error::Step {
        what: "copy the launcher into a memfd",
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
    })?;
    let seals = nix::fcntl::SealFlag::F_SEAL_SEAL
        | nix::fcntl::SealFlag::F_SEAL_SHRINK
        | nix::fcntl::SealFlag::F_SEAL_GROW
        | nix::fcntl::SealFlag::F_SEAL_WRITE;
    nix::fcntl::fcntl(&dst, nix::fcntl::FcntlArg::F_ADD_SEALS(seals))
        .map_err(step("seal the memfd"))?;
    Ok(OwnedFd::from(dst))
}
