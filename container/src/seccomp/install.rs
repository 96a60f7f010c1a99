//! Loads a compiled [`Filter`] into the calling process: the container's,
//! last before `execve` (or, without no_new_privs, before it drops
//! CAP_SYS_ADMIN). It runs in the cloned child, so it allocates nothing and
//! calls `seccomp(2)` directly: seccompiler's `apply_filter` would also set
//! no_new_privs, which the container's configuration decides.

use nix::errno::Errno;

use super::Filter;

/// `struct sock_fprog` (linux/filter.h) over seccompiler's instructions.
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const seccompiler::sock_filter,
}

/// Installs every program of `filter`, in order. Without no_new_privs the
/// caller must hold CAP_SYS_ADMIN (EACCES otherwise).
pub fn install(filter: &Filter) -> Result<(), Errno> {
    for prog in &filter.programs {
        let len = libc::c_ushort::try_from(prog.len()).map_err(|_| Errno::E2BIG)?;
        let fprog = SockFprog {
            len,
            filter: prog.as_ptr(),
        };
        // SAFETY: `fprog` points to `len` initialised instructions that
        // outlive the call; the kernel copies them and keeps no pointer.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::c_ulong::from(filter.flags),
                &fprog as *const SockFprog,
            )
        };
        if rc != 0 {
            return Err(Errno::last());
        }
    }
    Ok(())
}
