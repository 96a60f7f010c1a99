//! A polling virtio-blk driver on the virtio-mmio version 2 (modern) transport, at CPL 3: the
//! registers are plain memory in the identity map, so each access is one MMIO exit and nothing
//! needs ring 0. One split queue of [`QUEUE_SIZE`] entries in this image's `.bss`, one request
//! at a time, completion found by polling the used ring (IF is 0 at CPL 3; the driver asks for
//! no interrupts), each request bounded by [`REQUEST_TIMEOUT_MS`] of TSC time.
//!
//! Specification: Virtual I/O Device (VIRTIO) Version 1.2, 4.2.2 (MMIO registers), 4.2.3.1
//! (device initialisation), 2.7 (split virtqueues), 5.2 (block device).

use core::fmt;
use core::sync::atomic::{fence, Ordering};

use vclab_contract::io::{MmioDevice, MmioDeviceError, SECTOR_SIZE};
use vclab_workload::io::BlockSource;

use crate::bootinfo::IDENTITY_END;
use crate::clock;

// MMIO register offsets (4.2.2).
const MAGIC: u64 = 0x000;
const VERSION: u64 = 0x004;
const DEVICE_ID: u64 = 0x008;
const DEVICE_FEATURES: u64 = 0x010;
const DEVICE_FEATURES_SEL: u64 = 0x014;
const DRIVER_FEATURES: u64 = 0x020;
const DRIVER_FEATURES_SEL: u64 = 0x024;
const QUEUE_SEL: u64 = 0x030;
const QUEUE_NUM_MAX: u64 = 0x034;
const QUEUE_NUM: u64 = 0x038;
const QUEUE_READY: u64 = 0x044;
const QUEUE_NOTIFY: u64 = 0x050;
const STATUS: u64 = 0x070;
const QUEUE_DESC: u64 = 0x080;
const QUEUE_DRIVER: u64 = 0x090;
const QUEUE_DEVICE: u64 = 0x0a0;
const CONFIG_GENERATION: u64 = 0x0fc;
const CONFIG: u64 = 0x100;

/// "virt", little-endian.
const MAGIC_VALUE: u32 = 0x7472_6976;
/// The modern transport; 1 is legacy.
const MODERN: u32 = 2;
/// virtio device id of a block device (5).
const BLOCK_DEVICE: u32 = 2;

// Device status bits (2.1).
const ACKNOWLEDGE: u32 = 1;
const DRIVER: u32 = 2;
const DRIVER_OK: u32 = 4;
const FEATURES_OK: u32 = 8;
const NEEDS_RESET: u32 = 64;
const FAILED: u32 = 128;

// Feature bits (6, 5.2.3).
const F_VERSION_1: u64 = 1 << 32;
const F_SIZE_MAX: u64 = 1 << 1;
const F_SEG_MAX: u64 = 1 << 2;
const F_RO: u64 = 1 << 5;
const F_BLK_SIZE: u64 = 1 << 6;

// virtio_blk_config offsets (5.2.4) from CONFIG.
const CFG_CAPACITY: u64 = 0x00;
const CFG_SIZE_MAX: u64 = 0x08;
const CFG_SEG_MAX: u64 = 0x0c;
const CFG_BLK_SIZE: u64 = 0x14;

// Requests (5.2.6).
const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const S_OK: u8 = 0;
const S_IOERR: u8 = 1;
const S_UNSUPP: u8 = 2;

// Descriptor flags (2.7.5) and the avail ring's no-interrupt flag (2.7.7).
const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;
const AVAIL_F_NO_INTERRUPT: u16 = 1;

/// Entries of the one queue (a power of two, as split queues need; less if the device offers
/// less).
pub const QUEUE_SIZE: u16 = 64;
/// Longest wait for one request.
pub const REQUEST_TIMEOUT_MS: u64 = 5_000;
/// TSC ticks per millisecond assumed when the frequency is unknown (5 GHz: at least the timeout).
const FALLBACK_TICKS_PER_MS: u64 = 5_000_000;
/// Largest bytes per data descriptor this driver makes (without a device limit).
const MAX_SEGMENT: usize = 1 << 20;
/// The smallest register window that holds the block config fields read here.
const MIN_WINDOW: u64 = CONFIG + 0x18;

/// The queue and request memory the device reads and writes: one page each for the descriptor
/// table, the available ring, the used ring and the request header + status byte.
#[repr(C, align(4096))]
struct Dma {
    desc: [u8; 4096],
    avail: [u8; 4096],
    used: [u8; 4096],
    request: [u8; 4096],
}

/// The only instance; the device owns what the driver hands it between notify and completion.
static mut DMA: Dma = Dma {
    desc: [0; 4096],
    avail: [0; 4096],
    used: [0; 4096],
    request: [0; 4096],
};

/// Offset of the status byte in the request page (the header takes the first 16 bytes).
const STATUS_BYTE: u64 = 64;

/// Why the disk could not be found, set up or used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlkError {
    /// No `virtio_mmio.device=` entry names a block device.
    NoDevice {
        /// Entries seen.
        entries: usize,
    },
    /// An entry does not parse.
    Cmdline(MmioDeviceError<'static>),
    /// The register window is outside the identity-mapped 4 GiB or too small.
    Window {
        /// Base address.
        base: u64,
        /// Window size.
        size: u64,
    },
    /// A legacy (version 1) or unknown transport.
    Version {
        /// Base address.
        base: u64,
        /// The version read.
        version: u32,
    },
    /// The device does not offer VIRTIO_F_VERSION_1.
    NoVersion1 {
        /// Base address.
        base: u64,
    },
    /// The device did not keep FEATURES_OK.
    FeaturesRefused {
        /// Base address.
        base: u64,
    },
    /// Queue 0 is missing or already live.
    Queue {
        /// Base address.
        base: u64,
        /// QueueNumMax read.
        num_max: u32,
    },
    /// The device did not finish its reset.
    ResetTimeout {
        /// Base address.
        base: u64,
    },
    /// A write on a read-only disk (VIRTIO_BLK_F_RO).
    ReadOnly,
    /// A request did not complete in time.
    Timeout {
        /// Base address.
        base: u64,
        /// The device status register then.
        status: u32,
    },
    /// The device completed a request with an error status.
    Status {
        /// The status byte.
        status: u8,
    },
    /// The used ring returned a descriptor the driver did not submit.
    BadUsed {
        /// The id found.
        id: u32,
    },
}

impl fmt::Display for BlkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BlkError::NoDevice { entries } => write!(
                f,
                "vclab.kernel=io needs a virtio-blk disk, and none of the {entries} \
                 virtio_mmio.device=<size>@<base>:<irq> entries on the command line holds one \
                 (virtio magic and device id 2): \
                 attach a disk (vclab: --disk PATH; QEMU: -device virtio-blk-device)"
            ),
            BlkError::Cmdline(e) => write!(f, "{e}"),
            BlkError::Window { base, size } => write!(
                f,
                "virtio-mmio window {base:#x}+{size:#x} is not below 4 GiB or smaller than \
                 {MIN_WINDOW:#x} bytes: the guest maps only the first 4 GiB"
            ),
            BlkError::Version { base, version } => write!(
                f,
                "virtio-mmio at {base:#x} is version {version}, not 2 (modern): legacy devices \
                 are not supported (QEMU: -global virtio-mmio.force-legacy=false)"
            ),
            BlkError::NoVersion1 { base } => write!(
                f,
                "virtio-blk at {base:#x} does not offer VIRTIO_F_VERSION_1"
            ),
            BlkError::FeaturesRefused { base } => write!(
                f,
                "virtio-blk at {base:#x} refused the features (FEATURES_OK did not stick)"
            ),
            BlkError::Queue { base, num_max } => write!(
                f,
                "virtio-blk at {base:#x}: queue 0 unusable (QueueNumMax {num_max}, or already ready)"
            ),
            BlkError::ResetTimeout { base } => write!(
                f,
                "virtio-blk at {base:#x} did not reset (status stayed non-zero)"
            ),
            BlkError::ReadOnly => f.write_str(
                "the virtio-blk disk is read-only (VIRTIO_BLK_F_RO) and the io kernel writes its \
                 scratch area: attach it writable",
            ),
            BlkError::Timeout { base, status } => write!(
                f,
                "virtio-blk at {base:#x}: request not completed within {REQUEST_TIMEOUT_MS} ms \
                 (device status {status:#x}{})",
                if status & NEEDS_RESET != 0 {
                    ": DEVICE_NEEDS_RESET, the device gave up on the queue"
                } else {
                    ""
                }
            ),
            BlkError::Status { status } => write!(
                f,
                "virtio-blk request failed with status {status} ({})",
                match status {
                    S_IOERR => "VIRTIO_BLK_S_IOERR",
                    S_UNSUPP => "VIRTIO_BLK_S_UNSUPP",
                    _ => "unknown",
                }
            ),
            BlkError::BadUsed { id } => write!(
                f,
                "virtio-blk used ring returned descriptor {id}, which was not submitted"
            ),
        }
    }
}

/// A ready virtio-blk device.
pub struct VirtioBlk {
    base: u64,
    capacity: u64,
    read_only: bool,
    queue_size: u16,
    /// Largest bytes per data descriptor.
    seg_bytes: usize,
    /// Data descriptors per request.
    max_segs: usize,
    avail_idx: u16,
    used_idx: u16,
    timeout_ticks: u64,
}

impl VirtioBlk {
    /// Finds the first block device among the command line's `virtio_mmio.device=` entries and
    /// sets it up (windows holding no device or another kind are skipped).
    pub fn find(cmdline: &'static str, tsc_khz: Option<u64>) -> Result<VirtioBlk, BlkError> {
        let mut entries = 0;
        for entry in MmioDevice::find(cmdline) {
            entries += 1;
            let dev = entry.map_err(BlkError::Cmdline)?;
            if dev.base >= IDENTITY_END
                || dev.size < MIN_WINDOW
                || dev.base.saturating_add(dev.size) > IDENTITY_END
            {
                return Err(BlkError::Window {
                    base: dev.base,
                    size: dev.size,
                });
            }
            if reg(dev.base, MAGIC) == MAGIC_VALUE && reg(dev.base, DEVICE_ID) == BLOCK_DEVICE {
                return VirtioBlk::init(dev.base, tsc_khz);
            }
        }
        Err(BlkError::NoDevice { entries })
    }

    /// Device initialisation (4.2.3.1, 3.1.1).
    fn init(base: u64, tsc_khz: Option<u64>) -> Result<VirtioBlk, BlkError> {
        let version = reg(base, VERSION);
        if version != MODERN {
            return Err(BlkError::Version { base, version });
        }
        let timeout_ticks =
            REQUEST_TIMEOUT_MS.saturating_mul(tsc_khz.unwrap_or(FALLBACK_TICKS_PER_MS));
        set_reg(base, STATUS, 0);
        let start = clock::rdtsc();
        while reg(base, STATUS) != 0 {
            if clock::rdtsc().wrapping_sub(start) > timeout_ticks {
                return Err(BlkError::ResetTimeout { base });
            }
            core::hint::spin_loop();
        }
        set_reg(base, STATUS, ACKNOWLEDGE);
        set_reg(base, STATUS, ACKNOWLEDGE | DRIVER);
        set_reg(base, DEVICE_FEATURES_SEL, 1);
        let high = u64::from(reg(base, DEVICE_FEATURES));
        set_reg(base, DEVICE_FEATURES_SEL, 0);
        let offered = high << 32 | u64::from(reg(base, DEVICE_FEATURES));
        if offered & F_VERSION_1 == 0 {
            set_reg(base, STATUS, FAILED);
            return Err(BlkError::NoVersion1 { base });
        }
        let accepted = offered & (F_VERSION_1 | F_RO | F_BLK_SIZE | F_SIZE_MAX | F_SEG_MAX);
        set_reg(base, DRIVER_FEATURES_SEL, 1);
        set_reg(base, DRIVER_FEATURES, (accepted >> 32) as u32);
        set_reg(base, DRIVER_FEATURES_SEL, 0);
        set_reg(base, DRIVER_FEATURES, accepted as u32);
        set_reg(base, STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
        if reg(base, STATUS) & FEATURES_OK == 0 {
            set_reg(base, STATUS, FAILED);
            return Err(BlkError::FeaturesRefused { base });
        }

        set_reg(base, QUEUE_SEL, 0);
        let num_max = reg(base, QUEUE_NUM_MAX);
        if num_max == 0 || reg(base, QUEUE_READY) != 0 {
            set_reg(base, STATUS, FAILED);
            return Err(BlkError::Queue { base, num_max });
        }
        // The largest power of two within both limits.
        let limit = num_max.min(u32::from(QUEUE_SIZE));
        let queue_size = 1u16 << (31 - limit.leading_zeros());
        let dma = dma_base();
        for page in 0..4 {
            fill_zero(dma + page * 4096, 4096);
        }
        write_u16(dma_avail(), AVAIL_F_NO_INTERRUPT);
        set_reg(base, QUEUE_NUM, u32::from(queue_size));
        set_reg64(base, QUEUE_DESC, dma_desc());
        set_reg64(base, QUEUE_DRIVER, dma_avail());
        set_reg64(base, QUEUE_DEVICE, dma_used());
        set_reg(base, QUEUE_READY, 1);

        let (capacity, size_max, seg_max) = read_config(base);
        let seg_bytes = if accepted & F_SIZE_MAX != 0 && size_max >= SECTOR_SIZE as u32 {
            (size_max as usize & !(SECTOR_SIZE as usize - 1)).min(MAX_SEGMENT)
        } else {
            MAX_SEGMENT
        };
        let ring_segs = usize::from(queue_size).saturating_sub(2).max(1);
        let max_segs = if accepted & F_SEG_MAX != 0 && seg_max > 0 {
            (seg_max as usize).min(ring_segs)
        } else {
            ring_segs
        };
        set_reg(base, STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        Ok(VirtioBlk {
            base,
            capacity,
            read_only: accepted & F_RO != 0,
            queue_size,
            seg_bytes,
            max_segs,
            avail_idx: 0,
            used_idx: 0,
            timeout_ticks,
        })
    }

    /// One request of `len` bytes at `addr` (guest-physical = virtual), split over as many data
    /// descriptors as the device's limits ask; waits for its completion.
    fn request(&mut self, kind: u32, sector: u64, addr: u64, len: usize) -> Result<(), BlkError> {
        let request = dma_request();
        write_u32(request, kind);
        write_u32(request + 4, 0);
        write_u64(request + 8, sector);
        write_u8(request + STATUS_BYTE, 0xff);
        let data_flags = if kind == T_IN { DESC_F_WRITE } else { 0 };
        write_desc(0, request, 16, DESC_F_NEXT, 1);
        let mut next = 1u16;
        let mut done = 0usize;
        while done < len {
            let n = (len - done).min(self.seg_bytes);
            write_desc(
                next,
                addr + done as u64,
                n as u32,
                data_flags | DESC_F_NEXT,
                next + 1,
            );
            done += n;
            next += 1;
        }
        write_desc(next, request + STATUS_BYTE, 1, DESC_F_WRITE, 0);

        let slot = u64::from(self.avail_idx % self.queue_size);
        write_u16(dma_avail() + 4 + 2 * slot, 0);
        // The descriptors and the ring entry before the index; everything before the notify.
        fence(Ordering::SeqCst);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        write_u16(dma_avail() + 2, self.avail_idx);
        fence(Ordering::SeqCst);
        set_reg(self.base, QUEUE_NOTIFY, 0);

        let start = clock::rdtsc();
        while read_u16(dma_used() + 2) == self.used_idx {
            if clock::rdtsc().wrapping_sub(start) > self.timeout_ticks {
                return Err(BlkError::Timeout {
                    base: self.base,
                    status: reg(self.base, STATUS),
                });
            }
            core::hint::spin_loop();
        }
        // The used element and the data after the index.
        fence(Ordering::SeqCst);
        let slot = u64::from(self.used_idx % self.queue_size);
        let id = read_u32(dma_used() + 4 + 8 * slot);
        self.used_idx = self.used_idx.wrapping_add(1);
        if id != 0 {
            return Err(BlkError::BadUsed { id });
        }
        match read_u8(request + STATUS_BYTE) {
            S_OK => Ok(()),
            status => Err(BlkError::Status { status }),
        }
    }

    /// Splits a transfer into requests of at most `max_segs × seg_bytes` bytes.
    fn transfer(&mut self, kind: u32, sector: u64, addr: u64, len: usize) -> Result<(), BlkError> {
        if self.read_only && kind == T_OUT {
            return Err(BlkError::ReadOnly);
        }
        let per_request = self.seg_bytes.saturating_mul(self.max_segs);
        let mut done = 0usize;
        while done < len {
            let n = (len - done).min(per_request);
            let at = sector + (done as u64) / SECTOR_SIZE;
            self.request(kind, at, addr + done as u64, n)?;
            done += n;
        }
        Ok(())
    }
}

impl BlockSource for VirtioBlk {
    type Error = BlkError;

    fn sectors(&self) -> u64 {
        self.capacity
    }

    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlkError> {
        let addr = buf.as_mut_ptr() as u64;
        self.transfer(T_IN, sector, addr, buf.len())
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), BlkError> {
        self.transfer(T_OUT, sector, buf.as_ptr() as u64, buf.len())
    }
}

/// capacity (sectors), size_max, seg_max, read under a stable config generation (4.2.2).
fn read_config(base: u64) -> (u64, u32, u32) {
    let mut values = (0, 0, 0);
    for _ in 0..16 {
        let generation = reg(base, CONFIG_GENERATION);
        let low = u64::from(reg(base, CONFIG + CFG_CAPACITY));
        let high = u64::from(reg(base, CONFIG + CFG_CAPACITY + 4));
        values = (
            high << 32 | low,
            reg(base, CONFIG + CFG_SIZE_MAX),
            reg(base, CONFIG + CFG_SEG_MAX),
        );
        let _blk_size = reg(base, CONFIG + CFG_BLK_SIZE);
        if reg(base, CONFIG_GENERATION) == generation {
            break;
        }
    }
    values
}

/// Writes descriptor `index`: addr, len, flags, next (2.7.5).
fn write_desc(index: u16, addr: u64, len: u32, flags: u16, next: u16) {
    let at = dma_desc() + 16 * u64::from(index);
    write_u64(at, addr);
    write_u32(at + 8, len);
    write_u16(at + 12, flags);
    write_u16(at + 14, next);
}

fn dma_base() -> u64 {
    core::ptr::addr_of!(DMA) as u64
}

fn dma_desc() -> u64 {
    dma_base()
}

fn dma_avail() -> u64 {
    dma_base() + 4096
}

fn dma_used() -> u64 {
    dma_base() + 2 * 4096
}

fn dma_request() -> u64 {
    dma_base() + 3 * 4096
}

/// Reads a 32-bit register.
fn reg(base: u64, offset: u64) -> u32 {
    read_u32(base + offset)
}

/// Writes a 32-bit register.
fn set_reg(base: u64, offset: u64, value: u32) {
    write_u32(base + offset, value);
}

/// Writes a 64-bit address as its low and high registers.
fn set_reg64(base: u64, offset: u64, value: u64) {
    set_reg(base, offset, value as u32);
    set_reg(base, offset + 4, (value >> 32) as u32);
}

fn read_u8(addr: u64) -> u8 {
    // SAFETY: callers pass addresses in this driver's DMA pages (in the image, identity-mapped,
    // writable at CPL 3); the device may change them, hence volatile.
    unsafe { (addr as *const u8).read_volatile() }
}

fn read_u16(addr: u64) -> u16 {
    // SAFETY: as read_u8; the ring fields are 2-byte aligned.
    unsafe { (addr as *const u16).read_volatile() }
}

fn read_u32(addr: u64) -> u32 {
    // SAFETY: a DMA page (4-byte aligned field) or a register of a virtio-mmio window that
    // `VirtioBlk::find` checked lies inside the identity-mapped 4 GiB; volatile so each access
    // happens exactly once, in order.
    unsafe { (addr as *const u32).read_volatile() }
}

fn write_u8(addr: u64, value: u8) {
    // SAFETY: as read_u8.
    unsafe { (addr as *mut u8).write_volatile(value) }
}

fn write_u16(addr: u64, value: u16) {
    // SAFETY: as read_u16.
    unsafe { (addr as *mut u16).write_volatile(value) }
}

fn write_u32(addr: u64, value: u32) {
    // SAFETY: as read_u32.
    unsafe { (addr as *mut u32).write_volatile(value) }
}

fn write_u64(addr: u64, value: u64) {
    // SAFETY: a DMA page field, 8-byte aligned.
    unsafe { (addr as *mut u64).write_volatile(value) }
}

/// Zeroes `len` bytes of the DMA pages from `addr`, with volatile stores.
fn fill_zero(addr: u64, len: u64) {
    for at in (addr..addr + len).step_by(8) {
        write_u64(at, 0);
    }
}
