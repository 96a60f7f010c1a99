//! Escape checks: each tries one thing a container must not do, in a form that cannot change the
//! host even where it is allowed (a value written back unchanged, a mount that fails for want of a
//! filesystem type, a device node removed at once, garbage for the module loader, a trace by a
//! child that exits at once). Each ends `blocked` (with the errno) or `ALLOWED`.

use std::ffi::CString;
use std::fs::{self, OpenOptions};
use std::io::Write;

use super::sys;

/// The checks, in the order of the JSON line; their names are the line's `check` values.
pub const CHECKS: [&str; 10] = [
    "proc_sys_write",
    "sysrq_trigger_write",
    "sys_write",
    "mount",
    "mknod_block",
    "ptrace_outside",
    "kernel_module",
    "unshare_user",
    "raw_socket",
    "keyctl",
];

/// How a check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The attempt failed with this errno.
    Blocked(i32),
    /// The attempt got through; what happened.
    Allowed(String),
    /// Not run; why.
    Skipped(&'static str),
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// One of [`CHECKS`].
    pub name: &'static str,
    /// Its verdict.
    pub verdict: Verdict,
    /// What was tried (the path or call).
    pub detail: String,
}

/// Runs every check (`run` false: every one is skipped; `target_pid`: a process outside the
/// container for the ptrace check).
pub fn probe(run: bool, target_pid: Option<i32>) -> Vec<Check> {
    CHECKS
        .iter()
        .map(|&name| {
            let (verdict, detail) = if run {
                check(name, target_pid)
            } else {
                (Verdict::Skipped("not asked (--escapes)"), String::new())
            };
            Check {
                name,
                verdict,
                detail,
            }
        })
        .collect()
}

/// Runs one check by name.
fn check(name: &str, target_pid: Option<i32>) -> (Verdict, String) {
    match name {
        "proc_sys_write" => write_back(&["/proc/sys/kernel/printk_ratelimit"]),
        "sysrq_trigger_write" => open_for_write("/proc/sysrq-trigger"),
        "sys_write" => write_back(&[
            "/sys/kernel/mm/transparent_hugepage/khugepaged/pages_to_scan",
            "/sys/kernel/mm/ksm/pages_to_scan",
        ]),
        "mount" => mount(),
        "mknod_block" => mknod_block(),
        "ptrace_outside" => ptrace(target_pid),
        "kernel_module" => kernel_module(),
        "unshare_user" => unshare_user(),
        "raw_socket" => raw_socket(),
        _ => keyctl(),
    }
}

/// The errno of an I/O error (EIO when it has none).
fn io_errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// Writes the first existing file's current value back to it.
fn write_back(paths: &[&str]) -> (Verdict, String) {
    let mut last = (Verdict::Blocked(libc::ENOENT), paths.join(" or "));
    for &path in paths {
        let current = match fs::read(path) {
            Ok(v) => v,
            Err(e) => {
                last = (Verdict::Blocked(io_errno(&e)), format!("read {path}"));
                continue;
            }
        };
        let detail = format!("write the current value back to {path}");
        let result = OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut f| f.write_all(&current));
        return match result {
            Ok(()) => (Verdict::Allowed("written (unchanged)".into()), detail),
            Err(e) => (Verdict::Blocked(io_errno(&e)), detail),
        };
    }
    last
}

/// Opens `path` for writing and writes nothing (opening is the gate; a byte could trigger).
fn open_for_write(path: &str) -> (Verdict, String) {
    let detail = format!("open {path} for writing (nothing written)");
    match OpenOptions::new().write(true).open(path) {
        Ok(_) => (Verdict::Allowed("opened for writing".into()), detail),
        Err(e) => (Verdict::Blocked(io_errno(&e)), detail),
    }
}

/// `mount("none", "/", NULL, 0, NULL)`: EPERM without CAP_SYS_ADMIN (or from a filter); with it,
/// EINVAL for the missing filesystem type, so nothing is ever mounted.
fn mount() -> (Verdict, String) {
    let detail = "mount(\"none\", \"/\", NULL, 0, NULL)".to_owned();
    let (src, dst) = (c"none", c"/");
    let r = sys::raw(
        libc::SYS_mount,
        [src.as_ptr() as u64, dst.as_ptr() as u64, 0, 0, 0, 0],
    );
    (gate(r, "past the capability check"), detail)
}

/// EPERM/EACCES/ENOSYS: blocked; anything else: the call got past its permission gate.
fn gate(r: sys::SysResult, what: &str) -> Verdict {
    match r {
        Err(e @ (libc::EPERM | libc::EACCES | libc::ENOSYS)) => Verdict::Blocked(e),
        Err(e) => Verdict::Allowed(format!("{} ({what})", sys::errno_name(e))),
        Ok(_) => Verdict::Allowed(format!("succeeded ({what})")),
    }
}

/// `mknod` of block device 7:0 (loop0) in the first writable directory, removed at once; when it
/// is created, whether it also opens (read-only) is noted.
fn mknod_block() -> (Verdict, String) {
    let pid = std::process::id();
    let mut last = libc::EROFS;
    for dir in ["/tmp", "/dev/shm", "/dev", "/run", "/"] {
        let path = format!("{}/vclab-probe-blk-{pid}", dir.trim_end_matches('/'));
        let Ok(c) = CString::new(path.clone()) else {
            continue;
        };
        let detail = format!("mknod {path} b 7 0");
        // SAFETY: `c` is a NUL-terminated path; mode and device are plain numbers.
        let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFBLK | 0o600, libc::makedev(7, 0)) };
        if rc == 0 {
            // SAFETY: `c` is a NUL-terminated path; O_RDONLY|O_NONBLOCK reads nothing.
            let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK) };
            let open = if fd >= 0 {
                // SAFETY: `fd` was just opened by this function and is not used again.
                unsafe { libc::close(fd) };
                "and it opens".to_owned()
            } else {
                format!("open: {}", sys::errno_name(sys::errno()))
            };
            // SAFETY: `c` is a NUL-terminated path of the node this function created.
            unsafe { libc::unlink(c.as_ptr()) };
            return (
                Verdict::Allowed(format!("created, removed; {open}")),
                detail,
            );
        }
        let e = sys::errno();
        if e == libc::EPERM {
            return (Verdict::Blocked(e), detail);
        }
        last = e;
    }
    (
        Verdict::Blocked(last),
        "mknod in /tmp, /dev/shm, /dev, /run, /".into(),
    )
}

/// PTRACE_SEIZE of `target` by a forked child that exits at once (which detaches it; a seize
/// does not stop the tracee).
fn ptrace(target: Option<i32>) -> (Verdict, String) {
    let Some(pid) = target else {
        return (Verdict::Skipped("no --target-pid given"), String::new());
    };
    let detail = format!("ptrace(PTRACE_SEIZE, {pid})");
    let r = in_child(|| {
        sys::raw(
            libc::SYS_ptrace,
            [libc::PTRACE_SEIZE as u64, pid as u64, 0, 0, 0, 0],
        )
    });
    match r {
        Ok(_) => (Verdict::Allowed("seized (detached at once)".into()), detail),
        Err(e) => (Verdict::Blocked(e), detail),
    }
}

/// `init_module` of 64 zero bytes (not an ELF file: rejected with ENOEXEC once past the gate).
fn kernel_module() -> (Verdict, String) {
    let image = [0u8; 64];
    let params = c"";
    let r = sys::raw(
        libc::SYS_init_module,
        [
            image.as_ptr() as u64,
            image.len() as u64,
            params.as_ptr() as u64,
            0,
            0,
            0,
        ],
    );
    (
        gate(r, "the module loader was reached"),
        "init_module(64 zero bytes)".into(),
    )
}

/// `unshare(CLONE_NEWUSER)` in a forked child.
fn unshare_user() -> (Verdict, String) {
    let r = in_child(|| {
        sys::raw(
            libc::SYS_unshare,
            [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0],
        )
    });
    let detail = "unshare(CLONE_NEWUSER)".to_owned();
    match r {
        Ok(_) => (Verdict::Allowed("new user namespace".into()), detail),
        Err(e) => (Verdict::Blocked(e), detail),
    }
}

/// `socket(AF_PACKET, SOCK_RAW, ETH_P_ALL)`, closed at once.
fn raw_socket() -> (Verdict, String) {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: socket takes plain numbers.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
    let detail = "socket(AF_PACKET, SOCK_RAW, ETH_P_ALL)".to_owned();
    if fd < 0 {
        return (Verdict::Blocked(sys::errno()), detail);
    }
    // SAFETY: `fd` was just opened here and is not used again.
    unsafe { libc::close(fd) };
    (Verdict::Allowed("opened".into()), detail)
}

/// `keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)`: looks up, creates nothing.
fn keyctl() -> (Verdict, String) {
    const KEYCTL_GET_KEYRING_ID: u64 = 0;
    const KEY_SPEC_SESSION_KEYRING: i64 = -3;
    let r = sys::raw(
        libc::SYS_keyctl,
        [
            KEYCTL_GET_KEYRING_ID,
            KEY_SPEC_SESSION_KEYRING as u64,
            0,
            0,
            0,
            0,
        ],
    );
    (
        gate(r, "the key service was reached"),
        "keyctl(KEYCTL_GET_KEYRING_ID, session keyring, no create)".into(),
    )
}

/// Runs `f` in a forked child and returns its result (errno as the child's exit status).
fn in_child(f: impl FnOnce() -> sys::SysResult) -> sys::SysResult {
    // SAFETY: the probe is single-threaded; the child runs `f` (raw system calls) and exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(sys::errno());
    }
    if pid == 0 {
        let code = match f() {
            Ok(_) => 0,
            Err(e) => e.clamp(1, 255),
        };
        // SAFETY: _exit ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid int; `pid` is our child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if sys::errno() != libc::EINTR {
            return Err(sys::errno());
        }
    }
    match (libc::WIFEXITED(status), libc::WEXITSTATUS(status)) {
        (true, 0) => Ok(0),
        (true, e) => Err(e),
        // Killed (e.g. SIGSYS from a filter): report ENOSYS, the filter's refusal.
        (false, _) => Err(libc::ENOSYS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_unless_asked() {
        let checks = probe(false, None);
        assert_eq!(checks.len(), CHECKS.len());
        assert!(checks
            .iter()
            .all(|c| matches!(c.verdict, Verdict::Skipped(_))));
    }

    #[test]
    fn gate_reads_errnos() {
        assert_eq!(gate(Err(libc::EPERM), "x"), Verdict::Blocked(libc::EPERM));
        assert_eq!(gate(Err(libc::ENOSYS), "x"), Verdict::Blocked(libc::ENOSYS));
        assert!(matches!(gate(Err(libc::EINVAL), "x"), Verdict::Allowed(_)));
        assert!(matches!(gate(Ok(3), "x"), Verdict::Allowed(_)));
    }

    #[test]
    fn in_child_returns_the_errno() {
        assert_eq!(
            in_child(|| sys::raw(libc::SYS_close, [u64::MAX, 0, 0, 0, 0, 0])),
            Err(libc::EBADF)
        );
        assert_eq!(in_child(|| Ok(5)), Ok(0));
    }
}
