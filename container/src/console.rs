//! `process.terminal`: the container's stdio on a pseudo-terminal.
//!
//! The container's process opens the pty in its own devpts instance (after
//! its mounts, as runc does), makes the slave its stdin, stdout, stderr and
//! controlling terminal, and sends the master over a unix socket
//! (`SCM_RIGHTS`):
//! - with `--console-socket PATH`, over a connection the launcher opened to
//!   PATH before the clone (the container cannot reach host paths once its
//!   root is pivoted): runc's protocol, the message text is the pty's name;
//! - on an attached run without one, over a socket pair to the launcher,
//!   which relays the master to its own stdin and stdout ([`Relay`]).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

/// Errors of the console set-up (launcher side).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The console socket could not be reached.
    #[error(
        "cannot connect to the console socket {path}: {source} (is a receiver listening there?)"
    )]
    Connect {
        /// The socket.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The socket pair for the relay could not be made.
    #[error("cannot create the console socket pair: {0}")]
    Pair(Errno),
    /// The pty master did not arrive from the container.
    #[error("cannot receive the pty master from the container: {0}")]
    Receive(Errno),
}

/// Connects to the console socket at `path` (runc's `--console-socket`).
pub fn connect(path: &Path) -> Result<OwnedFd, Error> {
    std::os::unix::net::UnixStream::connect(path)
        .map(OwnedFd::from)
        .map_err(|source| Error::Connect {
            path: path.to_path_buf(),
            source,
        })
}

/// A connected pair of unix stream sockets, close-on-exec: (launcher's end,
/// container's end).
pub fn pair() -> Result<(OwnedFd, OwnedFd), Error> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(Error::Pair)
}

/// Receives one descriptor sent with `SCM_RIGHTS` on `sock`.
pub fn receive_fd(sock: BorrowedFd<'_>) -> Result<OwnedFd, Error> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!(RawFd);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(Error::Receive)?;
    for c in msg.cmsgs().map_err(Error::Receive)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor in our
                // table for this message; nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(Error::Receive(Errno::ENOMSG))
}

// ---- container side (no allocation: see process.rs) ----

/// Opens a pty in the container's devpts, sends its master on `sock`, and
/// makes the slave the calling process's stdio and controlling terminal (it
/// must lead a session). Returns the failed step and the error.
pub(crate) fn attach_in_child(sock: RawFd) -> Result<(), (&'static str, Errno)> {
    use nix::fcntl::OFlag;
    let master = nix::fcntl::open(
        c"/dev/ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| ("open /dev/ptmx", e))?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int through the pointer, which is valid
    // for the call.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(("unlock the pty", Errno::last()));
    }
    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new
    // descriptor for the slave (Linux 4.13), no pointers.
    let slave = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY,
        )
    };
    if slave < 0 {
        return Err(("open the pty slave", Errno::last()));
    }
    // SAFETY: the ioctl just returned this descriptor; nothing else owns it.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    send_fd(sock, master.as_raw_fd(), b"/dev/ptmx").map_err(|e| ("send the pty master", e))?;
    drop(master);
    // SAFETY: `sock` is the socket the parent passed for this one message;
    // nothing else in this process uses it (an `--init` PID 1, which never
    // execs, would otherwise keep it), and it is closed once.
    unsafe { libc::close(sock) };
    nix::unistd::dup2_stdin(&slave).map_err(|e| ("dup the pty slave", e))?;
    nix::unistd::dup2_stdout(&slave).map_err(|e| ("dup the pty slave", e))?;
    nix::unistd::dup2_stderr(&slave).map_err(|e| ("dup the pty slave", e))?;
    drop(slave);
    // SAFETY: TIOCSCTTY takes an int by value (0: do not steal), no pointers.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(("make the pty the controlling terminal", Errno::last()));
    }
    Ok(())
}

/// `sendmsg` of `fd` with `SCM_RIGHTS` and the bytes `text`, built on the
/// stack (nix's `sendmsg` allocates its control buffer).
fn send_fd(sock: RawFd, fd: RawFd, text: &[u8]) -> Result<(), Errno> {
    // Room for one descriptor's control message, 8-byte aligned as cmsghdr.
    let mut control = [0u64; 4];
    let mut iov = libc::iovec {
        iov_base: text.as_ptr() as *mut libc::c_void,
        iov_len: text.len(),
    };
    // SAFETY: msghdr is plain data for which all-zero bytes are valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    debug_assert!(msg.msg_controllen <= std::mem::size_of_val(&control));
    // SAFETY: `msg` names a control buffer of msg_controllen bytes, so the
    // first header lies within it.
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    if cmsg.is_null() {
        return Err(Errno::EINVAL);
    }
    // SAFETY: `cmsg` points into `control`, aligned and large enough for a
    // header and one descriptor (CMSG_SPACE above); CMSG_LEN computes a size.
    unsafe {
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
    }
    // SAFETY: CMSG_DATA points just past the header inside `control`, with
    // room for one descriptor; write_unaligned needs no alignment.
    unsafe { std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd) };
    // SAFETY: `msg` and what it points to (iov, text, control) live for the
    // call; sendmsg only reads them.
    let rc = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
    if rc < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

// ---- launcher side: the attached relay ----

/// Copies the pty master to the launcher's stdout and the launcher's stdin
/// to the master; while it lives, a terminal on the launcher's stdin is in
/// raw mode (the container's pty does the line editing), restored on drop.
pub struct Relay {
    master: OwnedFd,
    stdin_open: bool,
    saved: Option<nix::sys::termios::Termios>,
}

impl Relay {
    /// Starts relaying `master`; copies the launcher's window size to it.
    pub fn new(master: OwnedFd) -> Self {
        use nix::sys::termios;
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, &raw);
            let mut ws: libc::winsize = libc::winsize {
                ws_row: 0,
                ws_col: 0,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            // SAFETY: TIOCGWINSZ writes one winsize through the valid pointer.
            if unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } == 0 {
                // SAFETY: TIOCSWINSZ reads one winsize through the valid pointer.
                unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
            }
        }
        Relay {
            master,
            stdin_open: true,
            saved,
        }
    }

    /// The master, to poll for output.
    pub fn master(&self) -> BorrowedFd<'_> {
        self.master.as_fd()
    }

    /// Whether stdin is still worth polling.
    pub fn stdin_open(&self) -> bool {
        self.stdin_open
    }

    /// Copies what the master has to stdout; false at its end (EIO: every
    /// slave is closed).
    pub fn pump_output(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        match nix::unistd::read(&self.master, &mut buf) {
            Ok(0) | Err(Errno::EIO) => false,
            Ok(n) => {
                write_all(std::io::stdout().as_fd(), &buf[..n]);
                true
            }
            Err(Errno::EINTR | Errno::EAGAIN) => true,
            Err(_) => false,
        }
    }

    /// Copies what stdin has to the master; at its end stops polling it.
    pub fn pump_input(&mut self) {
        let mut buf = [0u8; 4096];
        match nix::unistd::read(std::io::stdin().as_fd(), &mut buf) {
            Ok(0) => self.stdin_open = false,
            Ok(n) => write_all(self.master.as_fd(), &buf[..n]),
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(_) => self.stdin_open = false,
        }
    }

    /// After the container exited: copies the rest of its output.
    pub fn drain(&mut self) {
        while self.pump_output() {}
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin().as_fd(),
                nix::sys::termios::SetArg::TCSANOW,
                t,
            );
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(0) => return,
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_descriptor_crosses_the_pair() {
        let (a, b) = pair().unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        send_fd(b.as_raw_fd(), w.as_raw_fd(), b"/dev/ptmx").unwrap();
        drop(w);
        let got = receive_fd(a.as_fd()).unwrap();
        nix::unistd::write(&got, b"hi").unwrap();
        drop(got);
        let mut buf = [0u8; 4];
        assert_eq!(nix::unistd::read(&r, &mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"hi");
    }
}
