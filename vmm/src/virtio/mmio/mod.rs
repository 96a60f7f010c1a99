//! The virtio-mmio transport, version 2 (§4.2.2 of virtio 1.2): the register map, feature
//! negotiation, the device status state machine, queue set-up and the device's eventfds.
//!
//! Every register is 32 bits wide and 4-byte aligned; the device-specific config space from
//! 0x100 takes 1, 2, 4 and 8-byte accesses. Other accesses, writes in the wrong state and
//! reads of write-only registers are ignored (reads give 0) and counted, never a panic.

use std::io;

use virtio_queue::{Queue, QueueT};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::{interrupt, status, VirtioDevice, VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX};
use crate::bus::BusDevice;

/// "virt" in little endian.
pub const MAGIC_VALUE: u32 = 0x7472_6976;
/// The modern (virtio 1.x) transport.
pub const VERSION: u32 = 2;
/// The vendor ID the device reports ("vclb").
pub const VENDOR_ID: u32 = u32::from_le_bytes(*b"vclb");
/// The length of a device's MMIO window (registers and config space).
pub const WINDOW_LEN: u64 = 0x1000;

/// Register offsets (§4.2.2, table "MMIO Device Register Layout").
pub mod reg {
    /// MagicValue (R).
    pub const MAGIC_VALUE: u64 = 0x000;
    /// Version (R).
    pub const VERSION: u64 = 0x004;
    /// DeviceID (R).
    pub const DEVICE_ID: u64 = 0x008;
    /// VendorID (R).
    pub const VENDOR_ID: u64 = 0x00c;
    /// DeviceFeatures (R): 32 bits of the offered features chosen by DeviceFeaturesSel.
    pub const DEVICE_FEATURES: u64 = 0x010;
    /// DeviceFeaturesSel (W).
    pub const DEVICE_FEATURES_SEL: u64 = 0x014;
    /// DriverFeatures (W).
    pub const DRIVER_FEATURES: u64 = 0x020;
    /// DriverFeaturesSel (W).
    pub const DRIVER_FEATURES_SEL: u64 = 0x024;
    /// QueueSel (W).
    pub const QUEUE_SEL: u64 = 0x030;
    /// QueueNumMax (R).
    pub const QUEUE_NUM_MAX: u64 = 0x034;
    /// QueueNum (W).
    pub const QUEUE_NUM: u64 = 0x038;
    /// QueueReady (RW).
    pub const QUEUE_READY: u64 = 0x044;
    /// QueueNotify (W): the value is the queue index.
    pub const QUEUE_NOTIFY: u64 = 0x050;
    /// InterruptStatus (R).
    pub const INTERRUPT_STATUS: u64 = 0x060;
    /// InterruptACK (W).
    pub const INTERRUPT_ACK: u64 = 0x064;
    /// Status (RW).
    pub const STATUS: u64 = 0x070;
    /// QueueDescLow (W).
    pub const QUEUE_DESC_LOW: u64 = 0x080;
    /// QueueDescHigh (W).
    pub const QUEUE_DESC_HIGH: u64 = 0x084;
    /// QueueDriverLow (W): the available ring.
    pub const QUEUE_DRIVER_LOW: u64 = 0x090;
    /// QueueDriverHigh (W).
    pub const QUEUE_DRIVER_HIGH: u64 = 0x094;
    /// QueueDeviceLow (W): the used ring.
    pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
    /// QueueDeviceHigh (W).
    pub const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
    /// SHMSel (W).
    pub const SHM_SEL: u64 = 0x0ac;
    /// SHMLenLow (R): -1, no shared memory region.
    pub const SHM_LEN_LOW: u64 = 0x0b0;
    /// SHMLenHigh (R).
    pub const SHM_LEN_HIGH: u64 = 0x0b4;
    /// SHMBaseLow (R).
    pub const SHM_BASE_LOW: u64 = 0x0b8;
    /// SHMBaseHigh (R).
    pub const SHM_BASE_HIGH: u64 = 0x0bc;
    /// ConfigGeneration (R).
    pub const CONFIG_GENERATION: u64 = 0x0fc;
    /// The device-specific configuration space.
    pub const CONFIG: u64 = 0x100;
}

/// Errors of creating a transport.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// eventfd(2) failed.
    #[error("cannot create the {what} eventfd of a virtio-mmio device: {source} (raise the open-file limit?)")]
    EventFd {
        /// Which one.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// A device asked for a queue size virtio-queue refuses.
    #[error("virtio device type {device_type} asks for queue {queue} of size {size}: a queue size must be a power of two up to 32768")]
    QueueSize {
        /// The device.
        device_type: u32,
        /// The queue.
        queue: usize,
        /// The size.
        size: u16,
    },
}

/// What the transport ignored, by kind (for tests and the report).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Ignored {
    /// Accesses of a wrong width or alignment, or past the register map.
    pub bad_access: u64,
    /// Writes to read-only registers, reads of write-only ones.
    pub wrong_direction: u64,
    /// Writes not allowed in the current status (features after FEATURES_OK, queues after
    /// DRIVER_OK, a skipped status step), or naming a queue that does not exist.
    pub wrong_state: u64,
    /// FEATURES_OK refused (no VIRTIO_F_VERSION_1) and DRIVER_OK refused (a queue not
    /// ready or invalid, the device failed to start).
    pub refused: u64,
}

impl Ignored {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.bad_access + self.wrong_direction + self.wrong_state + self.refused
    }
}

/// One virtio device behind its MMIO window.
pub struct MmioTransport {
    device: Box<dyn VirtioDevice>,
    mem: GuestMemoryMmap,
    queues: Vec<Queue>,
    queue_events: Vec<EventFd>,
    irq_event: EventFd,
    device_features_sel: u32,
    driver_features_sel: u32,
    acked_features: u64,
    queue_sel: u32,
    interrupt_status: u32,
    status: u32,
    config_generation: u32,
    activated: bool,
    ignored: Ignored,
}

impl std::fmt::Debug for MmioTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmioTransport")
            .field("device_type", &self.device.device_type())
            .field("status", &self.status)
            .field("acked_features", &self.acked_features)
            .field("activated", &self.activated)
            .field("ignored", &self.ignored)
            .finish()
    }
}

impl MmioTransport {
    /// A transport for `device` over guest memory `mem` (a cheap clone of the VM's), with one
    /// non-blocking eventfd per queue and one for the interrupt.
    pub fn new(mem: GuestMemoryMmap, device: Box<dyn VirtioDevice>) -> Result<Self, Error> {
        let device_type = device.device_type();
        let mut queues = Vec::new();
        let mut queue_events = Vec::new();
        for (queue, &size) in device.queue_max_sizes().iter().enumerate() {
            queues.push(Queue::new(size).map_err(|_| Error::QueueSize {
                device_type,
                queue,
                size,
            })?);
            queue_events.push(new_eventfd("queue")?);
        }
        Ok(MmioTransport {
            device,
            mem,
            queues,
            queue_events,
            irq_event: new_eventfd("irq")?,
            device_features_sel: 0,
            driver_features_sel: 0,
            acked_features: 0,
            queue_sel: 0,
            interrupt_status: 0,
            status: 0,
            config_generation: 0,
            activated: false,
            ignored: Ignored::default(),
        })
    }

    /// One eventfd per queue, in queue order: register each with KVM_IOEVENTFD at
    /// base + [`reg::QUEUE_NOTIFY`] with datamatch = its index.
    pub fn queue_events(&self) -> &[EventFd] {
        &self.queue_events
    }

    /// The interrupt eventfd: register it with KVM_IRQFD on the device's GSI.
    pub fn irq_event(&self) -> &EventFd {
        &self.irq_event
    }

    /// The device status register.
    pub fn status(&self) -> u32 {
        self.status
    }

    /// The features the driver acknowledged.
    pub fn acked_features(&self) -> u64 {
        self.acked_features
    }

    /// Whether the device runs (DRIVER_OK accepted).
    pub fn is_activated(&self) -> bool {
        self.activated
    }

    /// What was ignored so far.
    pub fn ignored(&self) -> Ignored {
        self.ignored
    }

    /// The device (for its statistics).
    pub fn device(&self) -> &dyn VirtioDevice {
        self.device.as_ref()
    }

    /// Processes queue `index` (the worker calls this on a queue event) and raises the
    /// used-buffer interrupt when the device asks for it; true when it did. Nothing happens
    /// before activation or for a queue that is not ready.
    pub fn process_queue(&mut self, index: usize) -> bool {
        if !self.activated {
            return false;
        }
        let Some(queue) = self.queues.get_mut(index) else {
            return false;
        };
        if !queue.ready() {
            return false;
        }
        let needed = self.device.process_queue(index, queue, &self.mem);
        if needed {
            self.raise(interrupt::USED_BUFFER);
        }
        needed
    }

    /// Tells the driver the config space changed (a new generation, bit 1 of
    /// InterruptStatus).
    pub fn signal_config_change(&mut self) {
        self.config_generation = self.config_generation.wrapping_add(1);
        self.raise(interrupt::CONFIG_CHANGE);
    }

    fn raise(&mut self, bit: u32) {
        self.interrupt_status |= bit;
        if let Err(e) = self.irq_event.write(1) {
            // Only EAGAIN at a counter of u64::MAX - 1: the interrupt is pending anyway.
            log::debug!("virtio-mmio: irq eventfd write failed: {e}");
        }
    }

    fn selected_queue(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.queue_sel as usize)
    }

    /// Back to the state after creation (Status written with 0): features, queues and
    /// interrupts cleared, the device reset and re-activatable. The eventfds stay (KVM has
    /// them registered).
    fn reset(&mut self) {
        self.device.reset();
        for q in &mut self.queues {
            q.reset();
        }
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.acked_features = 0;
        self.queue_sel = 0;
        self.interrupt_status = 0;
        self.status = 0;
        self.activated = false;
    }

    fn read_register(&mut self, offset: u64) -> Option<u32> {
        Some(match offset {
            reg::MAGIC_VALUE => MAGIC_VALUE,
            reg::VERSION => VERSION,
            reg::DEVICE_ID => self.device.device_type(),
            reg::VENDOR_ID => VENDOR_ID,
            reg::DEVICE_FEATURES => match self.device_features_sel {
                0 => self.device.features() as u32,
                1 => (self.device.features() >> 32) as u32,
                _ => 0,
            },
            reg::QUEUE_NUM_MAX => self.selected_queue().map_or(0, |q| u32::from(q.max_size())),
            reg::QUEUE_READY => self.selected_queue().map_or(0, |q| u32::from(q.ready())),
            reg::INTERRUPT_STATUS => self.interrupt_status,
            reg::STATUS => self.status,
            reg::SHM_LEN_LOW | reg::SHM_LEN_HIGH | reg::SHM_BASE_LOW | reg::SHM_BASE_HIGH => {
                u32::MAX
            }
            reg::CONFIG_GENERATION => self.config_generation,
            reg::DEVICE_FEATURES_SEL
            | reg::DRIVER_FEATURES
            | reg::DRIVER_FEATURES_SEL
            | reg::QUEUE_SEL
            | reg::QUEUE_NUM
            | reg::QUEUE_NOTIFY
            | reg::INTERRUPT_ACK
            | reg::QUEUE_DESC_LOW..=reg::QUEUE_DEVICE_HIGH
            | reg::SHM_SEL => {
                self.ignored.wrong_direction += 1;
                0
            }
            _ => return None,
        })
    }

    fn write_register(&mut self, offset: u64, value: u32) -> bool {
        match offset {
            reg::DEVICE_FEATURES_SEL => self.device_features_sel = value,
            reg::DRIVER_FEATURES_SEL => self.driver_features_sel = value,
            reg::DRIVER_FEATURES => self.write_driver_features(value),
            reg::QUEUE_SEL => self.queue_sel = value,
            reg::QUEUE_NUM
            | reg::QUEUE_READY
            | reg::QUEUE_DESC_LOW
            | reg::QUEUE_DESC_HIGH
            | reg::QUEUE_DRIVER_LOW
            | reg::QUEUE_DRIVER_HIGH
            | reg::QUEUE_DEVICE_LOW
            | reg::QUEUE_DEVICE_HIGH => self.write_queue(offset, value),
            reg::QUEUE_NOTIFY => self.notify(value),
            reg::INTERRUPT_ACK => self.interrupt_status &= !value,
            reg::STATUS => self.write_status(value),
            reg::SHM_SEL => {}
            reg::MAGIC_VALUE
            | reg::VERSION
            | reg::DEVICE_ID
            | reg::VENDOR_ID
            | reg::DEVICE_FEATURES
            | reg::QUEUE_NUM_MAX
            | reg::INTERRUPT_STATUS
            | reg::SHM_LEN_LOW..=reg::SHM_BASE_HIGH
            | reg::CONFIG_GENERATION => self.ignored.wrong_direction += 1,
            _ => return false,
        }
        true
    }

    fn write_driver_features(&mut self, value: u32) {
        let negotiating = self.status & (status::DRIVER | status::FEATURES_OK) == status::DRIVER;
        let shift = match self.driver_features_sel {
            0 => 0,
            1 => 32,
            _ => {
                self.ignored.wrong_state += 1;
                return;
            }
        };
        if !negotiating {
            self.ignored.wrong_state += 1;
            return;
        }
        // Only what the device offers can be acknowledged.
        let half = (u64::from(value) << shift) & self.device.features();
        self.acked_features = (self.acked_features & !(0xffff_ffff << shift)) | half;
    }

    fn write_queue(&mut self, offset: u64, value: u32) {
        let setting_up = self.status & (status::FEATURES_OK | status::DRIVER_OK | status::FAILED)
            == status::FEATURES_OK;
        let mem = &self.mem;
        let Some(q) = self
            .queues
            .get_mut(self.queue_sel as usize)
            .filter(|_| setting_up)
        else {
            self.ignored.wrong_state += 1;
            return;
        };
        // A ready queue's layout is fixed until QueueReady is cleared (§4.2.2.2).
        if q.ready() && offset != reg::QUEUE_READY {
            self.ignored.wrong_state += 1;
            return;
        }
        match offset {
            reg::QUEUE_NUM => {
                // Not a power of two, 0 or over the maximum: the size stays as it was.
                let set = u16::try_from(value).ok().map(|size| q.try_set_size(size));
                if !matches!(set, Some(Ok(()))) {
                    self.ignored.refused += 1;
                }
            }
            reg::QUEUE_READY => {
                q.set_ready(value == 1);
                if value == 1 && !q.is_valid(mem) {
                    // Size not a power of two, rings misaligned or outside guest memory.
                    q.set_ready(false);
                    self.ignored.refused += 1;
                }
            }
            reg::QUEUE_DESC_LOW => q.set_desc_table_address(Some(value), None),
            reg::QUEUE_DESC_HIGH => q.set_desc_table_address(None, Some(value)),
            reg::QUEUE_DRIVER_LOW => q.set_avail_ring_address(Some(value), None),
            reg::QUEUE_DRIVER_HIGH => q.set_avail_ring_address(None, Some(value)),
            reg::QUEUE_DEVICE_LOW => q.set_used_ring_address(Some(value), None),
            reg::QUEUE_DEVICE_HIGH => q.set_used_ring_address(None, Some(value)),
            _ => {}
        }
    }

    /// A QueueNotify write that reached the vCPU (no ioeventfd registered): hand it to the
    /// worker through the queue's eventfd, as KVM would.
    fn notify(&mut self, value: u32) {
        match self.queue_events.get(value as usize) {
            Some(event) => {
                if let Err(e) = event.write(1) {
                    log::debug!("virtio-mmio: queue {value} eventfd write failed: {e}");
                }
            }
            None => self.ignored.wrong_state += 1,
        }
    }

    /// The status state machine (§3.1.1): 0 resets; FAILED may be added at any time;
    /// otherwise each write adds the next step to the bits already set: ACKNOWLEDGE →
    /// DRIVER → FEATURES_OK (only with VIRTIO_F_VERSION_1) → DRIVER_OK (activation).
    fn write_status(&mut self, value: u32) {
        if value == 0 {
            self.reset();
            return;
        }
        let old = self.status;
        if value & old != old {
            // Clearing bits other than by a reset.
            self.ignored.wrong_state += 1;
            return;
        }
        let added = value & !old;
        if added & status::FAILED != 0 {
            self.status |= status::FAILED;
            return;
        }
        let step = |before: u32| old & !status::DEVICE_NEEDS_RESET == before;
        match added {
            0 => {}
            status::ACKNOWLEDGE if step(0) => self.status = value,
            status::DRIVER if step(status::ACKNOWLEDGE) => self.status = value,
            status::FEATURES_OK if step(status::ACKNOWLEDGE | status::DRIVER) => {
                if self.acked_features & VIRTIO_F_VERSION_1 == 0 {
                    // Left unset: the driver reads Status back and gives up (§3.1.1).
                    self.ignored.refused += 1;
                } else {
                    self.status = value;
                }
            }
            status::DRIVER_OK
                if step(status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK) =>
            {
                self.activate(value)
            }
            _ => self.ignored.wrong_state += 1,
        }
    }

    fn activate(&mut self, value: u32) {
        let ready: Vec<bool> = self.queues.iter().map(|q| q.ready()).collect();
        let valid = self
            .queues
            .iter()
            .all(|q| !q.ready() || q.is_valid(&self.mem));
        let started = valid
            && self
                .device
                .activate(self.acked_features, &ready)
                .map_err(|e| log::warn!("{e}"))
                .is_ok();
        if started {
            let event_idx = self.acked_features & VIRTIO_RING_F_EVENT_IDX != 0;
            for q in &mut self.queues {
                q.set_event_idx(event_idx);
            }
            self.status = value;
            self.activated = true;
        } else {
            self.ignored.refused += 1;
            self.status |= status::DEVICE_NEEDS_RESET;
        }
    }
}

fn new_eventfd(what: &'static str) -> Result<EventFd, Error> {
    EventFd::new(EFD_NONBLOCK).map_err(|source| Error::EventFd { what, source })
}

impl BusDevice for MmioTransport {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= reg::CONFIG {
            if matches!(data.len(), 1 | 2 | 4 | 8) {
                self.device.read_config(offset - reg::CONFIG, data);
            } else {
                data.fill(0);
                self.ignored.bad_access += 1;
            }
            return;
        }
        let value = if data.len() == 4 && offset % 4 == 0 {
            self.read_register(offset)
        } else {
            None
        };
        match value {
            Some(v) => data.copy_from_slice(&v.to_le_bytes()),
            None => {
                data.fill(0);
                self.ignored.bad_access += 1;
            }
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset >= reg::CONFIG {
            let ok = matches!(data.len(), 1 | 2 | 4 | 8)
                && self.status & status::FAILED == 0
                && self.device.write_config(offset - reg::CONFIG, data);
            if !ok {
                self.ignored.bad_access += 1;
            }
            return;
        }
        let handled = match <[u8; 4]>::try_from(data) {
            Ok(bytes) if offset % 4 == 0 => self.write_register(offset, u32::from_le_bytes(bytes)),
            _ => false,
        };
        if !handled {
            self.ignored.bad_access += 1;
        }
    }
}

#[cfg(test)]
mod tests;
