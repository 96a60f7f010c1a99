//! A child's stdout or stderr, read without a thread: the pipe is
//! non-blocking, the owner polls it with the child's pidfd, and each complete
//! line is stamped with the time it was read (the poll wakes as soon as
//! bytes arrive, so the stamp is when the line reached the harness).

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

/// Bytes kept of a line without its newline; the rest of a longer line is dropped.
const MAX_LINE: usize = 1 << 20;

/// One pipe from the child, split into stamped lines.
#[derive(Debug)]
pub struct LinePipe<R> {
    pipe: Option<R>,
    partial: Vec<u8>,
    /// Complete lines with the time since launch at which they were read.
    pub lines: Vec<(Duration, String)>,
}

/// Puts `fd` in non-blocking mode.
fn set_nonblocking(fd: BorrowedFd<'_>) -> std::io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(std::io::Error::from)?;
    fcntl(
        fd,
        FcntlArg::F_SETFL(OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK),
    )
    .map_err(std::io::Error::from)?;
    Ok(())
}

impl<R: Read + AsFd> LinePipe<R> {
    /// Wraps `pipe` (made non-blocking); `None` gives a pipe that is already at its end.
    pub fn new(pipe: Option<R>) -> std::io::Result<Self> {
        if let Some(p) = &pipe {
            set_nonblocking(p.as_fd())?;
        }
        Ok(LinePipe {
            pipe,
            partial: Vec::new(),
            lines: Vec::new(),
        })
    }

    /// The raw fd to poll, while the pipe is open.
    pub fn raw_fd(&self) -> Option<i32> {
        self.pipe.as_ref().map(|p| p.as_fd().as_raw_fd())
    }

    /// Whether the writer side has closed (every byte read).
    pub fn at_end(&self) -> bool {
        self.pipe.is_none()
    }

    /// Reads what is there now; complete lines are stamped `now`. Returns
    /// the number of new lines.
    pub fn read_available(&mut self, now: Duration) -> usize {
        let before = self.lines.len();
        let mut buf = [0u8; 8192];
        while let Some(p) = self.pipe.as_mut() {
            match p.read(&mut buf) {
                Ok(0) => {
                    self.pipe = None;
                    if !self.partial.is_empty() {
                        let rest = std::mem::take(&mut self.partial);
                        self.lines
                            .push((now, String::from_utf8_lossy(&rest).into_owned()));
                    }
                }
                Ok(n) => self.push(&buf[..n], now),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => self.pipe = None,
            }
        }
        self.lines.len() - before
    }

    fn push(&mut self, mut bytes: &[u8], now: Duration) {
        while let Some(i) = bytes.iter().position(|b| *b == b'\n') {
            let room = MAX_LINE.saturating_sub(self.partial.len());
            self.partial.extend_from_slice(&bytes[..i.min(room)]);
            let line = std::mem::take(&mut self.partial);
            self.lines
                .push((now, String::from_utf8_lossy(&line).into_owned()));
            bytes = &bytes[i + 1..];
        }
        let room = MAX_LINE.saturating_sub(self.partial.len());
        self.partial
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Closes the pipe (a leftover grandchild may hold its other end forever).
    pub fn close(&mut self) {
        self.pipe = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn splits_lines_and_stamps_them() {
        let (r, mut w) = std::io::pipe().unwrap();
        let mut p = LinePipe::new(Some(r)).unwrap();
        assert_eq!(p.read_available(Duration::from_millis(1)), 0);
        w.write_all(b"one\ntw").unwrap();
        assert_eq!(p.read_available(Duration::from_millis(2)), 1);
        w.write_all(b"o\nthree").unwrap();
        drop(w);
        assert_eq!(p.read_available(Duration::from_millis(3)), 2);
        assert!(p.at_end());
        let got: Vec<(u128, &str)> = p
            .lines
            .iter()
            .map(|(t, l)| (t.as_millis(), l.as_str()))
            .collect();
        assert_eq!(got, [(2, "one"), (3, "two"), (3, "three")]);
    }
}
