//! Virtio devices over the virtio-mmio transport (virtio 1.2, OASIS,
//! <https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html>).
//!
//! - [`mmio`]: the transport, version 2 (§4.2.2): the register map, feature negotiation, the
//!   status state machine, queue set-up through `virtio_queue::Queue`, the queue and irq
//!   eventfds.
//! - [`worker`]: the `vclab-vmm-io` thread: one epoll loop over every queue eventfd; the vCPU
//!   threads never do device I/O.
//! - [`blk`]: the block device (§5.2) on a raw image file.
//!
//! None of this exists unless a disk is configured: a VM without one is as cheap as before.

pub mod blk;
pub mod mmio;
pub mod worker;

use virtio_queue::Queue;
use vm_memory::GuestMemoryMmap;

pub use mmio::MmioTransport;

/// VIRTIO_F_VERSION_1 (§6): the device and driver follow virtio 1.x. A modern transport
/// refuses FEATURES_OK without it.
pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;

/// VIRTIO_RING_F_EVENT_IDX (§2.7.10): the driver and device say in the rings when they want
/// the next notification and interrupt, so a busy queue costs fewer VM exits and interrupts.
/// The transport turns it on in each queue when the driver acknowledges it.
pub const VIRTIO_RING_F_EVENT_IDX: u64 = 1 << 29;

/// Device status bits (§2.1).
pub mod status {
    /// The guest found the device.
    pub const ACKNOWLEDGE: u32 = 1;
    /// The guest has a driver for it.
    pub const DRIVER: u32 = 2;
    /// The driver is set up: the device may be used.
    pub const DRIVER_OK: u32 = 4;
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u32 = 8;
    /// The device hit an error it cannot recover from without a reset.
    pub const DEVICE_NEEDS_RESET: u32 = 64;
    /// The driver gave up on the device.
    pub const FAILED: u32 = 128;
}

/// InterruptStatus bits (§4.2.2).
pub mod interrupt {
    /// The device used a buffer in at least one queue.
    pub const USED_BUFFER: u32 = 1;
    /// The device's configuration changed.
    pub const CONFIG_CHANGE: u32 = 2;
}

/// Why a device refused to start.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The driver did not make every queue the device needs ready.
    #[error("virtio device type {device_type}: queue {queue} is not ready at DRIVER_OK: the guest driver must set up every queue before DRIVER_OK")]
    QueueNotReady {
        /// The virtio device type.
        device_type: u32,
        /// The queue.
        queue: usize,
    },
}

/// A virtio device behind a transport: what the transport asks of it. The transport owns the
/// queues (their registers are transport registers) and hands each to the device to process.
pub trait VirtioDevice: Send {
    /// The virtio device ID (§5: 2 for a block device).
    fn device_type(&self) -> u32;
    /// The feature bits the device offers (VIRTIO_F_VERSION_1 included).
    fn features(&self) -> u64;
    /// The maximum size of each queue; the length is the number of queues.
    fn queue_max_sizes(&self) -> &[u16];
    /// Reads the device-specific configuration space at `offset` (from 0x100 of the transport).
    /// Bytes past the end of the space read as 0.
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// Writes the configuration space; returns false when the write was refused (read-only
    /// fields), so the transport can count it.
    fn write_config(&mut self, offset: u64, data: &[u8]) -> bool;
    /// Starts the device at DRIVER_OK with the features the driver acknowledged;
    /// `ready[i]` says whether the driver set up queue `i`.
    fn activate(&mut self, acked_features: u64, ready: &[bool]) -> Result<(), Error>;
    /// Processes the available buffers of queue `index`; true when the driver should get a
    /// used-buffer interrupt.
    fn process_queue(&mut self, index: usize, queue: &mut Queue, mem: &GuestMemoryMmap) -> bool;
    /// Back to the state before activation (the driver wrote 0 to Status).
    fn reset(&mut self);
}

#[cfg(test)]
pub(crate) mod test_utils;
