//! Raw system calls and errno names for the probe.

/// A system call's outcome: its return value, or the errno it failed with.
pub type SysResult = Result<i64, i32>;

/// Calls system call `nr` with six raw arguments and returns its result or errno.
pub fn raw(nr: i64, a: [u64; 6]) -> SysResult {
    // SAFETY: the probe only passes arguments chosen in `reach.rs`/`escapes.rs` to be harmless
    // (invalid pointers the kernel checks, never memory of this process it could overwrite except
    // buffers owned by the caller); a raw syscall has no other Rust-level invariant.
    let rc = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if rc == -1 {
        Err(errno())
    } else {
        Ok(rc)
    }
}

/// The calling thread's errno.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The symbolic name of `errno` (`EPERM`), or `E<number>` for one not listed.
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::E2BIG => "E2BIG",
        libc::ENOEXEC => "ENOEXEC",
        libc::EBADF => "EBADF",
        libc::ECHILD => "ECHILD",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::ENOSPC => "ENOSPC",
        libc::ESPIPE => "ESPIPE",
        libc::EROFS => "EROFS",
        libc::ERANGE => "ERANGE",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTSUP => "EOPNOTSUPP",
        libc::ENOKEY => "ENOKEY",
        libc::EKEYREJECTED => "EKEYREJECTED",
        libc::EBADMSG => "EBADMSG",
        libc::ENOTSOCK => "ENOTSOCK",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::ENOPKG => "ENOPKG",
        libc::EUSERS => "EUSERS",
        _ => return format!("E{errno}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_errnos_and_numbers_unknown_ones() {
        assert_eq!(errno_name(libc::EPERM), "EPERM");
        assert_eq!(errno_name(libc::ENOSYS), "ENOSYS");
        assert_eq!(errno_name(4000), "E4000");
    }

    #[test]
    fn raw_returns_the_errno() {
        // close(-1) fails with EBADF everywhere.
        assert_eq!(
            raw(libc::SYS_close, [u64::MAX, 0, 0, 0, 0, 0]),
            Err(libc::EBADF)
        );
        assert!(raw(libc::SYS_getpid, [0; 6]).is_ok_and(|p| p > 0));
    }
}
