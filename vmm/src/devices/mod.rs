//! Step 6: the VM's devices. The legacy ones are port-I/O state machines driven by the exit
//! handler, with no thread of their own; MMIO devices (virtio) sit on the [`Bus`] with their own
//! locks, and do their I/O on the VMM's I/O thread.

pub mod i8042;
pub mod labctl;
pub mod serial;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::bus::Bus;

/// Where a byte stream from the guest goes.
#[derive(Debug, Clone)]
pub enum Sink {
    /// The VMM's stdout.
    Stdout,
    /// A file.
    File(Arc<File>),
    /// Dropped.
    Off,
    /// A buffer (tests and library users that want the text).
    Memory(Arc<Mutex<Vec<u8>>>),
}

impl Sink {
    /// Writes `bytes`; errors are logged, never fatal (a closed stdout must
    /// not crash the VM).
    pub fn write_all(&self, bytes: &[u8]) {
        let result = match self {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes).and_then(|_| out.flush())
            }
            Sink::File(f) => (&**f).write_all(bytes),
            Sink::Off => Ok(()),
            Sink::Memory(buf) => {
                if let Ok(mut b) = buf.lock() {
                    b.extend_from_slice(bytes);
                }
                Ok(())
            }
        };
        if let Err(e) = result {
            log::debug!("guest output lost: {e}");
        }
    }
}

/// Nanoseconds since the run's time origin.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
}

impl Clock {
    /// A clock counting from `origin`.
    pub fn new(origin: Instant) -> Self {
        Clock { origin }
    }

    /// Nanoseconds since the origin.
    pub fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }
}

/// Accesses nobody claimed: reads returned all-ones, writes were dropped.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Unclaimed {
    /// Port reads.
    pub pio_reads: u64,
    /// Port writes.
    pub pio_writes: u64,
    /// MMIO reads.
    pub mmio_reads: u64,
    /// MMIO writes.
    pub mmio_writes: u64,
}

/// Every device of the VM plus the run's bookkeeping.
pub struct Devices {
    /// COM1.
    pub serial: serial::Console,
    /// The keyboard controller (reset line).
    pub i8042: i8042::I8042,
    /// The lab control device.
    pub labctl: labctl::LabCtl,
    /// The MMIO devices (empty unless a disk is attached).
    pub mmio: Arc<Bus>,
    /// Accesses to ports and MMIO addresses with no device.
    pub unclaimed: Unclaimed,
    /// VM exits seen, by kind.
    pub exits: BTreeMap<&'static str, u64>,
    /// The run's clock.
    pub clock: Clock,
}
