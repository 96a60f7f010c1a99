//! Network namespace set-up: bring the loopback interface up.

use std::os::fd::AsRawFd;

use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The control socket could not be opened.
    #[error("cannot open a socket to configure lo: {0}")]
    Socket(nix::errno::Errno),
    /// `ioctl(SIOCSIFFLAGS)` on `lo` failed.
    #[error("cannot bring lo up (SIOCSIFFLAGS): {0}")]
    Up(nix::errno::Errno),
}

/// Sets IFF_UP (with LOOPBACK and RUNNING) on `lo` in the current network
/// namespace.
pub fn loopback_up() -> Result<(), Error> {
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(Error::Socket)?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    req.ifr_ifru.ifru_flags =
        (libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: the socket is open and `req` is a valid ifreq that outlives the
    // call; SIOCSIFFLAGS only reads it.
    let rc = unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCSIFFLAGS,
            &req as *const libc::ifreq,
        )
    };
    if rc != 0 {
        return Err(Error::Up(nix::errno::Errno::last()));
    }
    Ok(())
}
