//! Carrying out a checked request against the disk, through a bounded bounce buffer, and
//! completing a chain: status byte and used length.

use std::io;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::disk::Disk;
use super::request::{self, Kind, Limits, Request};
use super::{VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK};
use virtio_queue::desc::split::Descriptor;

/// Size of the bounce buffer between the image and guest memory.
pub const BOUNCE_BYTES: usize = 64 * 1024;

/// Errors of carrying out a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// OUT on a read-only disk.
    #[error("virtio-blk write to sector {sector} of read-only disk {path}: attach it without `,ro` to allow writes")]
    ReadOnly {
        /// The first sector.
        sector: u64,
        /// The image.
        path: String,
    },
    /// pread, pwrite or fdatasync failed.
    #[error("virtio-blk {what} at byte {offset} of {path} failed: {source}")]
    Io {
        /// The operation.
        what: &'static str,
        /// The byte offset in the image.
        offset: u64,
        /// The image.
        path: String,
        /// The OS error.
        source: io::Error,
    },
    /// A guest-memory copy failed (the buffer was checked: only a memory change could do it).
    #[error("virtio-blk copy at guest address {0:#x} failed")]
    Memory(u64),
}

/// Does `req`; returns the bytes written into the device-writable data buffers. On error,
/// `written` says how many bytes of them were written before it.
pub fn execute(
    req: &Request,
    disk: &Disk,
    mem: &GuestMemoryMmap,
    buf: &mut [u8],
    written: &mut u64,
) -> Result<(), Error> {
    let io_err = |what, offset, source| Error::Io {
        what,
        offset,
        path: disk.path().display().to_string(),
        source,
    };
    // An empty buffer (a caller's mistake) falls back to one sector on the stack.
    let mut sector = [0u8; super::SECTOR_SIZE as usize];
    let buf = if buf.is_empty() { &mut sector[..] } else { buf };
    let chunk = buf.len();
    match req.kind {
        Kind::In | Kind::Out => {
            if req.kind == Kind::Out && disk.read_only() {
                return Err(Error::ReadOnly {
                    sector: req.sector,
                    path: disk.path().display().to_string(),
                });
            }
            // parse() checked sector * 512 + data_len against the disk's size. The data is one
            // stream through the bounce buffer: each pread/pwrite covers whole chunks of it
            // (whole sectors at sector-aligned offsets, from an aligned buffer), whatever the
            // guest's segment boundaries, so an O_DIRECT image (`,direct`) takes them too.
            let chunk = chunk - chunk % super::SECTOR_SIZE as usize;
            let chunk = chunk.max(super::SECTOR_SIZE as usize).min(buf.len());
            let mut offset = req.sector * super::SECTOR_SIZE;
            let mut cursor = Cursor::default();
            let mut left = req.data_len;
            while left > 0 {
                let n = left.min(chunk as u64) as usize;
                let part = &mut buf[..n];
                if req.kind == Kind::In {
                    disk.read_at(part, offset)
                        .map_err(|e| io_err("read", offset, e))?;
                    cursor.scatter(&req.data, part, mem)?;
                    *written += n as u64;
                } else {
                    cursor.gather(&req.data, part, mem)?;
                    disk.write_at(part, offset)
                        .map_err(|e| io_err("write", offset, e))?;
                }
                offset += n as u64;
                left -= n as u64;
            }
        }
        Kind::Flush => disk.flush().map_err(|e| io_err("fdatasync", 0, e))?,
        Kind::GetId => {
            let mut id: &[u8] = disk.id();
            for seg in &req.data {
                let n = id.len().min(seg.len as usize);
                mem.write_slice(&id[..n], seg.addr)
                    .map_err(|_| Error::Memory(seg.addr.0))?;
                *written += n as u64;
                id = &id[n..];
            }
        }
    }
    Ok(())
}

/// Where the stream stands in the request's segments.
#[derive(Default)]
struct Cursor {
    /// The segment.
    seg: usize,
    /// Bytes of it done.
    done: u64,
}

impl Cursor {
    /// The next piece of guest memory, at most `max` bytes, and advances past it.
    fn next(&mut self, data: &[request::Segment], max: usize) -> Option<(GuestAddress, usize)> {
        while let Some(seg) = data.get(self.seg) {
            let rest = u64::from(seg.len) - self.done;
            if rest == 0 {
                self.seg += 1;
                self.done = 0;
                continue;
            }
            let n = rest.min(max as u64) as usize;
            let addr = GuestAddress(seg.addr.0 + self.done);
            self.done += n as u64;
            return Some((addr, n));
        }
        None
    }

    /// Copies `bytes` into the segments from here on.
    fn scatter(
        &mut self,
        data: &[request::Segment],
        mut bytes: &[u8],
        mem: &GuestMemoryMmap,
    ) -> Result<(), Error> {
        while !bytes.is_empty() {
            let (addr, n) = self.next(data, bytes.len()).ok_or(Error::Memory(0))?;
            mem.write_slice(&bytes[..n], addr)
                .map_err(|_| Error::Memory(addr.0))?;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// Fills `bytes` from the segments from here on.
    fn gather(
        &mut self,
        data: &[request::Segment],
        mut bytes: &mut [u8],
        mem: &GuestMemoryMmap,
    ) -> Result<(), Error> {
        while !bytes.is_empty() {
            let (addr, n) = self.next(data, bytes.len()).ok_or(Error::Memory(0))?;
            let (now, rest) = bytes.split_at_mut(n);
            mem.read_slice(now, addr)
                .map_err(|_| Error::Memory(addr.0))?;
            bytes = rest;
        }
        Ok(())
    }
}

/// The bounce buffer: [`BOUNCE_BYTES`] at a 4 KiB-aligned address (what O_DIRECT asks of a
/// buffer), carved out of a slightly larger allocation, without unsafe code.
#[derive(Debug)]
pub struct Bounce {
    raw: Vec<u8>,
    start: usize,
}

/// The alignment of the bounce buffer.
const BOUNCE_ALIGN: usize = 4096;

impl Default for Bounce {
    fn default() -> Self {
        let raw = vec![0u8; BOUNCE_BYTES + BOUNCE_ALIGN];
        let start = raw.as_ptr().align_offset(BOUNCE_ALIGN).min(BOUNCE_ALIGN);
        Bounce { raw, start }
    }
}

impl Bounce {
    /// The aligned buffer.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + BOUNCE_BYTES]
    }
}

/// The outcome of one chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// The status byte written (None: the chain had none).
    pub status: Option<u8>,
    /// The used length to report.
    pub used_len: u32,
}

/// Parses, executes and completes one chain: writes the status byte when there is one and
/// returns the used length (bytes written into device-writable buffers, counted from the
/// first; the status byte counts only when everything before it was written).
pub fn complete<I>(
    chain: I,
    disk: &Disk,
    mem: &GuestMemoryMmap,
    limits: &Limits,
    buf: &mut [u8],
) -> Completion
where
    I: IntoIterator<Item = Descriptor>,
{
    let req = match request::parse(chain, mem, limits) {
        Ok(req) => req,
        Err(rejected) => {
            log::debug!("{}", rejected.error);
            let Some(addr) = rejected.status else {
                return Completion {
                    status: None,
                    used_len: 0,
                };
            };
            let code = rejected.status_code();
            let ok = mem.write_obj(code, addr).is_ok();
            return Completion {
                status: ok.then_some(code),
                used_len: if ok { rejected.used_len } else { 0 },
            };
        }
    };
    let mut written = 0;
    let code = match execute(&req, disk, mem, buf, &mut written) {
        Ok(()) => VIRTIO_BLK_S_OK,
        Err(e) => {
            log::debug!("{e}");
            VIRTIO_BLK_S_IOERR
        }
    };
    let writable = match req.kind {
        Kind::In | Kind::GetId => req.data_len,
        Kind::Out | Kind::Flush => 0,
    };
    if mem.write_obj(code, req.status).is_err() {
        return Completion {
            status: None,
            used_len: u32::try_from(written).unwrap_or(u32::MAX),
        };
    }
    let used = if written == writable {
        written + 1
    } else {
        written
    };
    Completion {
        status: Some(code),
        used_len: u32::try_from(used).unwrap_or(u32::MAX),
    }
}
