//! Helpers of the virtio unit tests: guest memory, descriptors, a driver's set-up dance.

use virtio_queue::desc::{split::Descriptor, RawDescriptor};
use virtio_queue::mock::MockSplitQueue;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::mmio::{reg, MmioTransport};
use super::{status, VIRTIO_F_VERSION_1};
use crate::bus::BusDevice;

/// `VRING_DESC_F_NEXT`.
pub const NEXT: u16 = 1;
/// `VRING_DESC_F_WRITE`.
pub const WRITE: u16 = 2;

/// Where the tests put the used ring. `MockSplitQueue::create` (virtio-queue 0.18) puts it
/// over the available ring's upper half and `used_event` (it adds the ring's length in
/// entries, not bytes), so the mock is used for the descriptor table and available ring only.
pub const USED_RING: u64 = 0x8000;

/// A queue over `mock`'s descriptor table and available ring, with the used ring at
/// [`USED_RING`] (cleared).
pub fn queue(mem: &GuestMemoryMmap, mock: &MockSplitQueue<'_, GuestMemoryMmap>) -> Queue {
    let mut q: Queue = mock.create_queue().unwrap();
    q.set_used_ring_address(Some(USED_RING as u32), Some(0));
    mem.write_slice(&[0; 4], GuestAddress(USED_RING)).unwrap();
    q
}

/// The used ring's index.
pub fn used_idx(mem: &GuestMemoryMmap) -> u16 {
    mem.read_obj(GuestAddress(USED_RING + 2)).unwrap()
}

/// Used element `i`: (descriptor head, length).
pub fn used_elem(mem: &GuestMemoryMmap, i: u64) -> (u32, u32) {
    let at = USED_RING + 4 + 8 * i;
    let id = mem.read_obj(GuestAddress(at)).unwrap();
    (id, mem.read_obj(GuestAddress(at + 4)).unwrap())
}

/// `used_event`, after the available ring of a queue of `size`.
pub fn used_event(mock: &MockSplitQueue<'_, GuestMemoryMmap>, size: u64) -> GuestAddress {
    GuestAddress(mock.avail_addr().0 + 4 + 2 * size)
}

/// `avail_event`, after the used ring of a queue of `size`.
pub fn avail_event(size: u64) -> GuestAddress {
    GuestAddress(USED_RING + 4 + 8 * size)
}

/// One region of `len` bytes at 0.
pub fn memory(len: usize) -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), len)]).unwrap()
}

/// A raw split descriptor.
pub fn desc(addr: u64, len: u32, flags: u16, next: u16) -> RawDescriptor {
    RawDescriptor::from(Descriptor::new(addr, len, flags, next))
}

/// Reads a 32-bit register.
pub fn read32(t: &mut MmioTransport, offset: u64) -> u32 {
    let mut data = [0u8; 4];
    t.read(offset, &mut data);
    u32::from_le_bytes(data)
}

/// Writes a 32-bit register.
pub fn write32(t: &mut MmioTransport, offset: u64, value: u32) {
    t.write(offset, &value.to_le_bytes());
}

/// ACKNOWLEDGE → DRIVER → features (all offered, VERSION_1 included) → FEATURES_OK.
pub fn negotiate(t: &mut MmioTransport) {
    write32(t, reg::STATUS, status::ACKNOWLEDGE);
    write32(t, reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
    for sel in 0..2 {
        write32(t, reg::DEVICE_FEATURES_SEL, sel);
        let offered = read32(t, reg::DEVICE_FEATURES);
        write32(t, reg::DRIVER_FEATURES_SEL, sel);
        write32(t, reg::DRIVER_FEATURES, offered);
    }
    assert_ne!(t.acked_features() & VIRTIO_F_VERSION_1, 0);
    write32(
        t,
        reg::STATUS,
        status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
    );
    assert_ne!(read32(t, reg::STATUS) & status::FEATURES_OK, 0);
}

/// Points queue `index` at `mock`'s descriptor table and available ring and the used ring at
/// [`USED_RING`], and makes it ready.
pub fn setup_queue<M: vm_memory::GuestMemory>(
    t: &mut MmioTransport,
    index: u32,
    mock: &MockSplitQueue<'_, M>,
    size: u16,
) {
    write32(t, reg::QUEUE_SEL, index);
    write32(t, reg::QUEUE_NUM, u32::from(size));
    let split = |a: GuestAddress| (a.0 as u32, (a.0 >> 32) as u32);
    for (addr, low) in [
        (mock.desc_table_addr(), reg::QUEUE_DESC_LOW),
        (mock.avail_addr(), reg::QUEUE_DRIVER_LOW),
        (GuestAddress(USED_RING), reg::QUEUE_DEVICE_LOW),
    ] {
        let (lo, hi) = split(addr);
        write32(t, low, lo);
        write32(t, low + 4, hi);
    }
    write32(t, reg::QUEUE_READY, 1);
}

/// Sets DRIVER_OK.
pub fn driver_ok(t: &mut MmioTransport) {
    write32(
        t,
        reg::STATUS,
        status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK,
    );
}
