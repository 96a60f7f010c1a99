//! virtio-blk (§5.2) on a raw image file: IN, OUT, FLUSH and GET_ID on one request queue.
//!
//! [`request::parse`] checks a chain into a [`request::Request`] (pure, fuzzed);
//! [`execute::complete`] carries it out against the [`disk::Disk`] and writes the status.

pub mod disk;
pub mod execute;
pub mod request;

use virtio_queue::{Queue, QueueT};
use vm_memory::GuestMemoryMmap;

use super::{VirtioDevice, VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX};
pub use disk::{Disk, Error};
use request::Limits;

/// Sector size of the request protocol and of `capacity` (always 512, §5.2.4).
pub const SECTOR_SIZE: u64 = 512;

/// The block device's virtio device ID (§5).
pub const DEVICE_TYPE: u32 = 2;

/// `VIRTIO_BLK_F_SEG_MAX`: `seg_max` is valid.
pub const VIRTIO_BLK_F_SEG_MAX: u64 = 1 << 2;
/// `VIRTIO_BLK_F_RO`: the disk is read-only.
pub const VIRTIO_BLK_F_RO: u64 = 1 << 5;
/// `VIRTIO_BLK_F_BLK_SIZE`: `blk_size` is valid.
pub const VIRTIO_BLK_F_BLK_SIZE: u64 = 1 << 6;
/// `VIRTIO_BLK_F_FLUSH`: the FLUSH command exists.
pub const VIRTIO_BLK_F_FLUSH: u64 = 1 << 9;

/// Status `VIRTIO_BLK_S_OK`.
pub const VIRTIO_BLK_S_OK: u8 = 0;
/// Status `VIRTIO_BLK_S_IOERR`.
pub const VIRTIO_BLK_S_IOERR: u8 = 1;
/// Status `VIRTIO_BLK_S_UNSUPP`.
pub const VIRTIO_BLK_S_UNSUPP: u8 = 2;

/// The request queue's size (the most a driver may choose).
pub const QUEUE_SIZE: u16 = 256;
/// Most data segments per request (`seg_max`): the header and status take two descriptors.
pub const SEG_MAX: u32 = QUEUE_SIZE as u32 - 2;
/// Most data bytes per request (Linux sends at most `max_sectors_kb`, 1280 KiB by default).
pub const MAX_REQUEST_BYTES: u64 = 32 << 20;

/// Offsets in the config space (`struct virtio_blk_config`).
mod config {
    /// `capacity`: le64, in 512-byte sectors.
    pub const CAPACITY: usize = 0;
    /// `seg_max`: le32.
    pub const SEG_MAX: usize = 12;
    /// `blk_size`: le32.
    pub const BLK_SIZE: usize = 20;
    /// The bytes this device fills (up to `blk_size`); the rest reads as 0.
    pub const LEN: usize = 24;
}

/// Requests seen, by outcome.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Completed with `VIRTIO_BLK_S_OK`.
    pub ok: u64,
    /// Completed with IOERR or UNSUPP.
    pub failed: u64,
    /// Consumed without a status byte (no place to write it).
    pub dropped: u64,
}

/// A virtio-blk device.
#[derive(Debug)]
pub struct Block {
    disk: Disk,
    config: [u8; config::LEN],
    limits: Limits,
    bounce: execute::Bounce,
    active: bool,
    stats: Stats,
}

impl Block {
    /// A device over `disk`.
    pub fn new(disk: Disk) -> Block {
        let mut cfg = [0u8; config::LEN];
        cfg[config::CAPACITY..config::CAPACITY + 8].copy_from_slice(&disk.sectors().to_le_bytes());
        cfg[config::SEG_MAX..config::SEG_MAX + 4].copy_from_slice(&SEG_MAX.to_le_bytes());
        cfg[config::BLK_SIZE..config::BLK_SIZE + 4]
            .copy_from_slice(&(SECTOR_SIZE as u32).to_le_bytes());
        let limits = Limits {
            seg_max: SEG_MAX,
            max_bytes: MAX_REQUEST_BYTES,
            disk_bytes: disk.size(),
        };
        Block {
            disk,
            config: cfg,
            limits,
            bounce: execute::Bounce::default(),
            active: false,
            stats: Stats::default(),
        }
    }

    /// The disk.
    pub fn disk(&self) -> &Disk {
        &self.disk
    }

    /// Requests seen so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }
}

impl VirtioDevice for Block {
    fn device_type(&self) -> u32 {
        DEVICE_TYPE
    }

    fn features(&self) -> u64 {
        let ro = if self.disk.read_only() {
            VIRTIO_BLK_F_RO
        } else {
            0
        };
        VIRTIO_F_VERSION_1
            | VIRTIO_RING_F_EVENT_IDX
            | VIRTIO_BLK_F_SEG_MAX
            | VIRTIO_BLK_F_BLK_SIZE
            | VIRTIO_BLK_F_FLUSH
            | ro
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = offset
                .checked_add(i as u64)
                .and_then(|o| usize::try_from(o).ok())
                .and_then(|o| self.config.get(o))
                .copied()
                .unwrap_or(0);
        }
    }

    fn write_config(&mut self, _offset: u64, _data: &[u8]) -> bool {
        // No writable field: `writeback` needs VIRTIO_BLK_F_CONFIG_WCE, not offered.
        false
    }

    fn activate(&mut self, _acked_features: u64, ready: &[bool]) -> Result<(), super::Error> {
        if !ready.first().copied().unwrap_or(false) {
            return Err(super::Error::QueueNotReady {
                device_type: DEVICE_TYPE,
                queue: 0,
            });
        }
        self.active = true;
        Ok(())
    }

    fn process_queue(&mut self, index: usize, queue: &mut Queue, mem: &GuestMemoryMmap) -> bool {
        if !self.active || index != 0 {
            return false;
        }
        let mut used_any = false;
        loop {
            // No notifications while the queue is drained: each costs the guest a VM exit.
            if queue.disable_notification(mem).is_err() {
                break;
            }
            let mut popped = false;
            while let Some(chain) = queue.pop_descriptor_chain(mem) {
                popped = true;
                let head = chain.head_index();
                let done = execute::complete(
                    chain,
                    &self.disk,
                    mem,
                    &self.limits,
                    self.bounce.as_mut_slice(),
                );
                match done.status {
                    Some(VIRTIO_BLK_S_OK) => self.stats.ok += 1,
                    Some(_) => self.stats.failed += 1,
                    None => self.stats.dropped += 1,
                }
                if queue.add_used(mem, head, done.used_len).is_err() {
                    log::debug!("virtio-blk: used ring update for head {head} failed");
                }
                used_any = true;
            }
            // More chains arrived while notifications were off: go again. Unless nothing could
            // be popped: an available index more than the queue size ahead is refused by
            // virtio-queue yet still differs from ours (the fuzzer found this spinning).
            match queue.enable_notification(mem) {
                Ok(true) if popped => continue,
                _ => break,
            }
        }
        used_any && queue.needs_notification(mem).unwrap_or(true)
    }

    fn reset(&mut self) {
        self.active = false;
    }
}

#[cfg(test)]
mod tests;
