//! Parsing one virtio-blk request (§5.2.6) from a descriptor chain: a pure function of the
//! chain and guest memory, so it can be fuzzed. Layout (what Linux sends): the 16-byte header
//! in the first descriptor (device-readable), the data buffers, then the status byte in the
//! last descriptor (device-writable).
//!
//! Every descriptor is checked against guest memory; the data against the request type's
//! direction, `seg_max`, the byte cap and the disk's size. The walk is bounded by
//! virtio-queue (at most the queue size, or the indirect table's, descriptors) and keeps at
//! most `seg_max` data segments.

use virtio_queue::desc::split::Descriptor;
use vm_memory::{ByteValued, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, Le32, Le64};

use super::SECTOR_SIZE;

/// `VIRTIO_BLK_T_IN`: read sectors.
pub const VIRTIO_BLK_T_IN: u32 = 0;
/// `VIRTIO_BLK_T_OUT`: write sectors.
pub const VIRTIO_BLK_T_OUT: u32 = 1;
/// `VIRTIO_BLK_T_FLUSH`: make written data durable.
pub const VIRTIO_BLK_T_FLUSH: u32 = 4;
/// `VIRTIO_BLK_T_GET_ID`: the device ID string.
pub const VIRTIO_BLK_T_GET_ID: u32 = 8;

/// The request header (`struct virtio_blk_req` up to `sector`).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct Header {
    /// `VIRTIO_BLK_T_*`.
    pub kind: Le32,
    /// Reserved (was `ioprio`).
    pub reserved: Le32,
    /// The first 512-byte sector.
    pub sector: Le64,
}

// SAFETY: three little-endian integers with no padding; any bit pattern is valid.
unsafe impl ByteValued for Header {}

/// Size of [`Header`] in guest memory.
pub const HEADER_LEN: u32 = 16;

/// What a request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Read into the data buffers.
    In,
    /// Write from the data buffers.
    Out,
    /// fdatasync.
    Flush,
    /// Write the device ID into the data buffers.
    GetId,
}

/// One data buffer in guest memory (checked to lie inside it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Guest-physical start.
    pub addr: GuestAddress,
    /// Length in bytes.
    pub len: u32,
}

/// A checked request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The type.
    pub kind: Kind,
    /// The first sector (IN and OUT; 0 otherwise as the driver sent it).
    pub sector: u64,
    /// The data buffers in order.
    pub data: Vec<Segment>,
    /// Their total length.
    pub data_len: u64,
    /// Where the status byte goes.
    pub status: GuestAddress,
}

/// The limits a request is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most data segments per request (the config space's `seg_max`).
    pub seg_max: u32,
    /// Most data bytes per request.
    pub max_bytes: u64,
    /// The disk's size in bytes.
    pub disk_bytes: u64,
}

/// Why a chain is not a valid request.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// The chain has no last descriptor that can take the status byte.
    #[error("virtio-blk chain has no status byte: the last descriptor is missing, device-readable, empty, outside guest memory or still chained (a loop)")]
    NoStatus,
    /// The first descriptor cannot hold the header.
    #[error("virtio-blk header at {addr:#x} (len {len}) is device-writable, shorter than 16 bytes or outside guest memory")]
    BadHeader {
        /// The descriptor's address.
        addr: u64,
        /// Its length.
        len: u32,
    },
    /// A request type the device does not implement.
    #[error("virtio-blk request type {0} is not supported")]
    Unsupported(u32),
    /// A data descriptor goes the wrong way for the request type.
    #[error("virtio-blk data buffer at {addr:#x} has the wrong direction for the request type")]
    Direction {
        /// The descriptor's address.
        addr: u64,
    },
    /// A data descriptor lies (partly) outside guest memory.
    #[error("virtio-blk data buffer {addr:#x}+{len:#x} is outside guest memory")]
    OutsideMemory {
        /// The descriptor's address.
        addr: u64,
        /// Its length.
        len: u32,
    },
    /// More data descriptors than `seg_max`.
    #[error("virtio-blk request has more than {seg_max} data segments")]
    TooManySegments {
        /// The limit.
        seg_max: u32,
    },
    /// More data bytes than the cap.
    #[error("virtio-blk request of {len} bytes is over the {max} byte cap")]
    TooLong {
        /// The data length.
        len: u64,
        /// The cap.
        max: u64,
    },
    /// IN/OUT data that is not whole sectors.
    #[error("virtio-blk request of {0} bytes is not a multiple of 512")]
    NotSectorMultiple(u64),
    /// Sectors past the end of the disk (or a range that overflows).
    #[error("virtio-blk request for sector {sector} (+{len} bytes) is past the end of the {disk_bytes}-byte disk")]
    OutOfRange {
        /// The first sector.
        sector: u64,
        /// The data length.
        len: u64,
        /// The disk's size.
        disk_bytes: u64,
    },
    /// FLUSH with data buffers.
    #[error("virtio-blk FLUSH request carries data buffers")]
    FlushWithData,
}

/// A chain that is not a valid request, and how to complete it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    /// Why.
    pub error: RequestError,
    /// Where the status byte goes, when the chain has one.
    pub status: Option<GuestAddress>,
    /// The used length to report once the status is written: 1 when the status byte is the
    /// chain's only device-writable byte, else 0 (nothing before it was written).
    pub used_len: u32,
}

impl Rejected {
    /// The status byte for this rejection.
    pub fn status_code(&self) -> u8 {
        match self.error {
            RequestError::Unsupported(_) => super::VIRTIO_BLK_S_UNSUPP,
            _ => super::VIRTIO_BLK_S_IOERR,
        }
    }
}

fn in_memory(mem: &GuestMemoryMmap, addr: GuestAddress, len: u32) -> bool {
    len == 0 || GuestMemoryBackend::check_range(mem, addr, len as usize)
}

/// Parses the descriptors of one chain (in order) into a [`Request`].
pub fn parse<I>(chain: I, mem: &GuestMemoryMmap, limits: &Limits) -> Result<Request, Rejected>
where
    I: IntoIterator<Item = Descriptor>,
{
    let mut header: Option<Descriptor> = None;
    let mut pending: Option<Descriptor> = None;
    let mut data: Vec<Segment> = Vec::new();
    let mut too_many = false;
    let mut direction_error: Option<u64> = None;
    let mut writable_data = false;
    let mut readable_data = false;
    let mut data_len: u64 = 0;
    let mut outside: Option<Segment> = None;
    for desc in chain {
        if header.is_none() {
            header = Some(desc);
            continue;
        }
        // The previous "last" descriptor turns out to be a data buffer.
        if let Some(prev) = pending.replace(desc) {
            let seg = Segment {
                addr: prev.addr(),
                len: prev.len(),
            };
            if prev.is_write_only() {
                writable_data = true;
            } else {
                readable_data = true;
                if writable_data && direction_error.is_none() {
                    // Device-readable after device-writable (§2.7.4.2).
                    direction_error = Some(seg.addr.0);
                }
            }
            data_len += u64::from(seg.len);
            if outside.is_none() && !in_memory(mem, seg.addr, seg.len) {
                outside = Some(seg);
            }
            if data.len() < limits.seg_max as usize {
                data.push(seg);
            } else {
                too_many = true;
            }
        }
    }

    let status = match pending {
        Some(d)
            if d.is_write_only()
                && !d.has_next()
                && d.len() >= 1
                && in_memory(mem, d.addr(), 1) =>
        {
            d.addr()
        }
        _ => {
            return Err(Rejected {
                error: RequestError::NoStatus,
                status: None,
                used_len: 0,
            })
        }
    };
    let writable_before = writable_data || header.is_some_and(|h| h.is_write_only());
    let reject = |error| Rejected {
        error,
        status: Some(status),
        used_len: u32::from(!writable_before),
    };

    let header = match header {
        Some(h) if !h.is_write_only() && h.len() >= HEADER_LEN => h,
        Some(h) => {
            return Err(reject(RequestError::BadHeader {
                addr: h.addr().0,
                len: h.len(),
            }))
        }
        None => return Err(reject(RequestError::NoStatus)),
    };
    let fields: Header = mem.read_obj(header.addr()).map_err(|_| {
        reject(RequestError::BadHeader {
            addr: header.addr().0,
            len: header.len(),
        })
    })?;
    let sector = u64::from(fields.sector);
    let kind = match u32::from(fields.kind) {
        VIRTIO_BLK_T_IN => Kind::In,
        VIRTIO_BLK_T_OUT => Kind::Out,
        VIRTIO_BLK_T_FLUSH => Kind::Flush,
        VIRTIO_BLK_T_GET_ID => Kind::GetId,
        other => return Err(reject(RequestError::Unsupported(other))),
    };

    if let Some(addr) = direction_error {
        return Err(reject(RequestError::Direction { addr }));
    }
    let wrong_way = match kind {
        Kind::In | Kind::GetId => readable_data,
        Kind::Out => writable_data,
        Kind::Flush => false,
    };
    if wrong_way {
        let addr = data.first().map_or(0, |s| s.addr.0);
        return Err(reject(RequestError::Direction { addr }));
    }
    if kind == Kind::Flush && (!data.is_empty() || too_many) {
        return Err(reject(RequestError::FlushWithData));
    }
    if too_many {
        return Err(reject(RequestError::TooManySegments {
            seg_max: limits.seg_max,
        }));
    }
    if let Some(seg) = outside {
        return Err(reject(RequestError::OutsideMemory {
            addr: seg.addr.0,
            len: seg.len,
        }));
    }
    if data_len > limits.max_bytes {
        return Err(reject(RequestError::TooLong {
            len: data_len,
            max: limits.max_bytes,
        }));
    }
    if matches!(kind, Kind::In | Kind::Out) {
        if data_len % SECTOR_SIZE != 0 {
            return Err(reject(RequestError::NotSectorMultiple(data_len)));
        }
        let end = sector
            .checked_mul(SECTOR_SIZE)
            .and_then(|start| start.checked_add(data_len));
        if end.is_none_or(|end| end > limits.disk_bytes) {
            return Err(reject(RequestError::OutOfRange {
                sector,
                len: data_len,
                disk_bytes: limits.disk_bytes,
            }));
        }
    }
    Ok(Request {
        kind,
        sector,
        data,
        data_len,
        status,
    })
}
