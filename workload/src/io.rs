//! The `io` kernel's interface: a disk as a [`BlockSource`] (a file on the host, a virtio-blk
//! device in the unikernel, a byte slice in tests), a [`Clock`] for per-request latency, the disk
//! image every runtime reads ([`image_block`]) and [`run_io`].
//!
//! What the kernel does with params `size`, `iterations`, `seed` ([`Layout`]): the first `size`
//! bytes of the disk are `size / 4096` blocks; the last [`Layout::scratch_blocks`] of them are a
//! scratch area, the others the read region.
//! 1. a sequential pass reads the read region in 128 KiB requests;
//! 2. `iterations` random 4 KiB reads at blocks of the read region drawn from SplitMix64(`seed`);
//! 3. every scratch block is written with data generated from `seed`, then all are read back and
//!    compared with it (a difference is [`IoError::Verify`]).
//!
//! Every byte read is folded into one running state with the other kernels' mix, so the checksum
//! depends only on the params and the read region's content: the scratch area's old content never
//! counts. Times are those spent in the source's `read`/`write` calls (queue depth 1).

use core::fmt;

pub use vclab_contract::io::{
    IoStats, BLOCK_SIZE, BUFFER_ALIGN, BUFFER_LEN, SECTORS_PER_BLOCK, SECTOR_SIZE,
};

use crate::checksum::Checksum;
use crate::params::{Kernel, Params, ParamsError};

/// A disk addressed in 512-byte sectors. The kernel only ever transfers whole 4 KiB blocks at
/// 4 KiB-aligned sectors, from a [`BUFFER_ALIGN`]-aligned buffer of at most [`BUFFER_LEN`] bytes.
pub trait BlockSource {
    /// What a failed transfer says (an errno, a virtio status, a timeout...).
    type Error: fmt::Display;

    /// The disk's size in sectors.
    fn sectors(&self) -> u64;

    /// Reads `buf.len()` bytes from `sector` on.
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), Self::Error>;

    /// Writes `buf` at `sector`.
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), Self::Error>;
}

/// A monotonic clock in nanoseconds (a clock that always says 0 makes every time 0).
pub trait Clock {
    /// Now, in nanoseconds since any fixed origin.
    fn now_ns(&mut self) -> u64;
}

impl<F: FnMut() -> u64> Clock for F {
    fn now_ns(&mut self) -> u64 {
        self()
    }
}

/// The transfer that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A read.
    Read,
    /// A write.
    Write,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Read => "read",
            Op::Write => "write",
        })
    }
}

/// Why the io kernel stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoError<E> {
    /// The params are not io params or out of bounds.
    Params(ParamsError),
    /// The disk is smaller than the region `size` asks for.
    DiskTooSmall {
        /// Sectors the region needs.
        needed: u64,
        /// Sectors the disk has.
        sectors: u64,
    },
    /// The source refused a transfer.
    Disk {
        /// Read or write.
        op: Op,
        /// The first sector of the request.
        sector: u64,
        /// The source's reason.
        error: E,
    },
    /// A scratch block read back differs from what was written.
    Verify {
        /// The block's first sector.
        sector: u64,
    },
}

impl<E: fmt::Display> fmt::Display for IoError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoError::Params(e) => write!(f, "{e}"),
            IoError::DiskTooSmall { needed, sectors } => write!(
                f,
                "the disk has {sectors} sectors but the io region needs {needed} ({} bytes): use \
                 a smaller size or a bigger image (vclab-workload io-image --size BYTES)",
                needed.saturating_mul(SECTOR_SIZE)
            ),
            IoError::Disk { op, sector, error } => {
                write!(f, "disk {op} at sector {sector} failed: {error}")
            }
            IoError::Verify { sector } => write!(
                f,
                "the scratch block at sector {sector} read back differs from what was written: \
                 the disk loses or misplaces writes"
            ),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for IoError<E> {}

/// How the io kernel splits the disk region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Blocks of the read region (blocks `0..read_blocks`).
    pub read_blocks: u64,
    /// Blocks of the scratch area, right after the read region: a 16th of the region, 1 to 64.
    pub scratch_blocks: u64,
}

impl Layout {
    /// The layout of validated io params.
    pub fn of(params: &Params) -> Result<Layout, ParamsError> {
        if params.kernel != Kernel::Io {
            return Err(ParamsError::UnknownKernel);
        }
        params.validate()?;
        let blocks = params.size / BLOCK_SIZE as u64;
        let scratch_blocks = (blocks / 16).clamp(1, 64);
        Ok(Layout {
            read_blocks: blocks - scratch_blocks,
            scratch_blocks,
        })
    }

    /// Sectors the region covers.
    pub fn sectors(&self) -> u64 {
        (self.read_blocks + self.scratch_blocks) * SECTORS_PER_BLOCK
    }
}

/// What an io run produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoOutcome {
    /// The checksum: equal for equal params and disk content on every runtime.
    pub checksum: Checksum,
    /// 4 KiB blocks transferred: read region + random reads + scratch writes + read-backs.
    pub ops: u64,
    /// Throughput and latency ([`IoStats::direct`] is left `None` for the caller).
    pub stats: IoStats,
}

/// Tag mixed into the image's block seeds.
const IMAGE_TAG: u64 = 0x696d_6167_6500_0000;
/// Tag mixed into the scratch writes' seeds.
const WRITE_TAG: u64 = 0x7772_6974_6500_0000;

/// Fills `out` (one block, [`BLOCK_SIZE`] bytes; a shorter slice gets the block's start) with
/// block `block` of the io disk image made from `seed`: SplitMix64 seeded per block, so any block
/// can be made or checked alone.
pub fn image_block(seed: u64, block: u64, out: &mut [u8]) {
    crate::kernels::io_block_data(IMAGE_TAG ^ seed, block, out);
}

/// Fills `out` with the data the kernel writes on scratch block `index` for `seed`.
pub(crate) fn write_data(seed: u64, index: u64, out: &mut [u8]) {
    crate::kernels::io_block_data(WRITE_TAG ^ seed, index, out);
}

/// Runs the io kernel on `disk` with a transfer buffer taken from `scratch` (at least
/// [`Params::scratch_len`] bytes; aligned inside), timing each request with `clock`.
pub fn run_io<S: BlockSource, C: Clock>(
    params: &Params,
    scratch: &mut [u8],
    disk: &mut S,
    clock: &mut C,
) -> Result<IoOutcome, IoError<S::Error>> {
    let layout = Layout::of(params).map_err(IoError::Params)?;
    let needed = params.scratch_len().map_err(IoError::Params)?;
    let too_small = IoError::Params(ParamsError::ScratchTooSmall {
        needed,
        got: scratch.len(),
    });
    let offset = scratch.as_ptr().align_offset(BUFFER_ALIGN);
    let buf = offset
        .checked_add(BUFFER_LEN)
        .and_then(|end| scratch.get_mut(offset..end))
        .ok_or(too_small)?;
    if disk.sectors() < layout.sectors() {
        return Err(IoError::DiskTooSmall {
            needed: layout.sectors(),
            sectors: disk.sectors(),
        });
    }
    crate::kernels::io(params, &layout, buf, disk, clock)
}

/// A disk in memory (tests, and anyone who wants the checksum without a device).
pub struct SliceDisk<'a> {
    bytes: &'a mut [u8],
}

impl<'a> SliceDisk<'a> {
    /// The disk made of `bytes` (a trailing partial sector is not addressable).
    pub fn new(bytes: &'a mut [u8]) -> SliceDisk<'a> {
        SliceDisk { bytes }
    }

    fn range(&self, sector: u64, len: usize) -> Result<core::ops::Range<usize>, OutOfRange> {
        let start = sector
            .checked_mul(SECTOR_SIZE)
            .and_then(|s| usize::try_from(s).ok());
        let end = start.and_then(|s| s.checked_add(len));
        match (start, end) {
            (Some(s), Some(e)) if e <= self.bytes.len() => Ok(s..e),
            _ => Err(OutOfRange {
                sector,
                sectors: self.sectors(),
            }),
        }
    }
}

/// A [`SliceDisk`] request past its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfRange {
    /// The request's first sector.
    pub sector: u64,
    /// The disk's sectors.
    pub sectors: u64,
}

impl fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "request at sector {} runs past the end of the {}-sector disk",
            self.sector, self.sectors
        )
    }
}

impl BlockSource for SliceDisk<'_> {
    type Error = OutOfRange;

    fn sectors(&self) -> u64 {
        self.bytes.len() as u64 / SECTOR_SIZE
    }

    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), OutOfRange> {
        let r = self.range(sector, buf.len())?;
        if let Some(src) = self.bytes.get(r) {
            buf.copy_from_slice(src);
        }
        Ok(())
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), OutOfRange> {
        let r = self.range(sector, buf.len())?;
        if let Some(dst) = self.bytes.get_mut(r) {
            dst.copy_from_slice(buf);
        }
        Ok(())
    }
}
