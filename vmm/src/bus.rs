//! The MMIO bus: guest-physical address ranges mapped to devices, each device behind its own
//! lock (Firecracker's `Bus` is the model). The exit handler dispatches MMIO exits through it, so
//! a vCPU touching one device never waits on another, nor on the legacy port devices.
//!
//! The legacy port devices (COM1, i8042, the lab device) stay in the exit handler's own match:
//! their writes end the VM (`exit::Action`), which a generic bus access cannot say.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A device on a bus: accesses arrive with the offset from the device's base.
pub trait BusDevice: Send {
    /// A read of `data.len()` bytes (1, 2, 4 or 8; possibly 0 from a fuzzer) at `offset`.
    fn read(&mut self, offset: u64, data: &mut [u8]);
    /// A write of `data` at `offset`.
    fn write(&mut self, offset: u64, data: &[u8]);
}

/// A shared device, as the bus holds it.
pub type SharedDevice = Arc<Mutex<dyn BusDevice>>;

/// Errors of building a bus.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A range of zero length, or one that wraps past the end of the address space.
    #[error("bus range {base:#x}+{len:#x} is empty or wraps: give each device a real range")]
    BadRange {
        /// Start.
        base: u64,
        /// Length.
        len: u64,
    },
    /// A range that overlaps one already on the bus.
    #[error("bus range {base:#x}+{len:#x} overlaps the device at {other:#x}: move one of them")]
    Overlap {
        /// Start.
        base: u64,
        /// Length.
        len: u64,
        /// The base of the device already there.
        other: u64,
    },
}

struct Entry {
    len: u64,
    device: SharedDevice,
}

/// Address ranges → devices.
#[derive(Default)]
pub struct Bus {
    /// By base address; ranges never overlap.
    entries: BTreeMap<u64, Entry>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(b, e)| (*b, e.len)))
            .finish()
    }
}

impl Bus {
    /// An empty bus.
    pub fn new() -> Self {
        Bus::default()
    }

    /// Whether no device is on the bus.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Puts `device` at `base..base+len`.
    pub fn insert(&mut self, base: u64, len: u64, device: SharedDevice) -> Result<(), Error> {
        let end = match base.checked_add(len) {
            Some(end) if len > 0 => end,
            _ => return Err(Error::BadRange { base, len }),
        };
        // The closest range starting at or below the new end's last byte.
        if let Some((&other, entry)) = self.entries.range(..end).next_back() {
            if other + entry.len > base {
                return Err(Error::Overlap { base, len, other });
            }
        }
        self.entries.insert(base, Entry { len, device });
        Ok(())
    }

    /// The device whose range holds the whole access `addr..addr+len`, with the offset.
    fn find(&self, addr: u64, len: usize) -> Option<(&SharedDevice, u64)> {
        let (&base, entry) = self.entries.range(..=addr).next_back()?;
        let offset = addr - base;
        let last = offset.checked_add(len as u64)?;
        (last <= entry.len).then_some((&entry.device, offset))
    }

    /// Reads through the device at `addr`; false when nobody claims the access (or its device's
    /// lock is poisoned).
    pub fn read(&self, addr: u64, data: &mut [u8]) -> bool {
        match self.find(addr, data.len()) {
            Some((device, offset)) => match device.lock() {
                Ok(mut d) => {
                    d.read(offset, data);
                    true
                }
                Err(_) => false,
            },
            None => false,
        }
    }

    /// Writes through the device at `addr`; false when nobody claims the access.
    pub fn write(&self, addr: u64, data: &[u8]) -> bool {
        match self.find(addr, data.len()) {
            Some((device, offset)) => match device.lock() {
                Ok(mut d) => {
                    d.write(offset, data);
                    true
                }
                Err(_) => false,
            },
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records accesses; reads return the low byte of the offset.
    #[derive(Default)]
    struct Probe {
        writes: Vec<(u64, Vec<u8>)>,
    }

    impl BusDevice for Probe {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8);
        }
        fn write(&mut self, offset: u64, data: &[u8]) {
            self.writes.push((offset, data.to_vec()));
        }
    }

    fn bus_with(ranges: &[(u64, u64)]) -> (Bus, Vec<Arc<Mutex<Probe>>>) {
        let mut bus = Bus::new();
        let mut probes = Vec::new();
        for &(base, len) in ranges {
            let p = Arc::new(Mutex::new(Probe::default()));
            bus.insert(base, len, p.clone()).unwrap();
            probes.push(p);
        }
        (bus, probes)
    }

    #[test]
    fn dispatches_by_range_with_offsets() {
        let (bus, probes) = bus_with(&[(0x1000, 0x100), (0x2000, 0x1000)]);
        let mut data = [0u8; 4];
        assert!(bus.read(0x1010, &mut data));
        assert_eq!(data, [0x10; 4]);
        assert!(bus.write(0x2ffc, &[1, 2, 3, 4]));
        assert_eq!(
            probes[1].lock().unwrap().writes,
            vec![(0xffc, vec![1, 2, 3, 4])]
        );
        assert!(probes[0].lock().unwrap().writes.is_empty());
    }

    #[test]
    fn unclaimed_and_straddling_accesses_are_refused() {
        let (bus, _) = bus_with(&[(0x1000, 0x100)]);
        let mut data = [0u8; 4];
        assert!(!bus.read(0xfff, &mut data[..1]));
        assert!(!bus.read(0x1100, &mut data));
        // The last 2 bytes lie past the device's end.
        assert!(!bus.write(0x10fe, &data));
        assert!(!bus.read(u64::MAX, &mut data));
        assert!(bus.read(0x10fc, &mut data));
    }

    #[test]
    fn overlapping_and_empty_ranges_are_errors() {
        let (mut bus, _) = bus_with(&[(0x1000, 0x100)]);
        let dev = || Arc::new(Mutex::new(Probe::default()));
        assert_eq!(
            bus.insert(0x10ff, 1, dev()),
            Err(Error::Overlap {
                base: 0x10ff,
                len: 1,
                other: 0x1000
            })
        );
        assert!(matches!(
            bus.insert(0xf00, 0x101, dev()),
            Err(Error::Overlap { .. })
        ));
        assert!(matches!(
            bus.insert(0x3000, 0, dev()),
            Err(Error::BadRange { .. })
        ));
        assert!(matches!(
            bus.insert(u64::MAX, 2, dev()),
            Err(Error::BadRange { .. })
        ));
        assert!(bus.insert(0xf00, 0x100, dev()).is_ok());
        assert!(bus.insert(0x1100, 0x100, dev()).is_ok());
    }
}
