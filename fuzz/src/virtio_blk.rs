//! The `virtio_blk` target: a guest's descriptor table, available ring and buffers, taken from
//! the input, behind a virtio-mmio transport with a virtio-blk device over a small image.
//!
//! Input: byte 0 = flags (bit 0: read-only disk; bits 1–4: queue size 2^(n mod 9); bit 5:
//! reset the device after the first pass and run it again), then the bytes of guest memory
//! from address 0: descriptor table at 0, available ring at 0x1000, used ring at 0x2000 (the
//! device writes it), buffers anywhere. Guest memory is 64 KiB at 0 and 64 KiB at 0x20000
//! with a hole between, so descriptors can point into the hole or past the end.

use std::path::PathBuf;
use std::sync::OnceLock;

use vclab_vmm::bus::BusDevice;
use vclab_vmm::virtio::blk::{Block, Disk};
use vclab_vmm::virtio::mmio::reg;
use vclab_vmm::virtio::{status, MmioTransport};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// The image's size: 128 sectors.
pub const DISK_BYTES: u64 = 64 * 1024;
/// The available ring's address.
pub const AVAIL: u64 = 0x1000;
/// The used ring's address.
pub const USED: u64 = 0x2000;

/// The image, made once per process (kept with its directory).
fn image() -> &'static (tempfile::TempDir, PathBuf) {
    static IMAGE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temp dir for the fuzz image");
        let path = dir.path().join("fuzz-disk.img");
        let bytes: Vec<u8> = (0..DISK_BYTES).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, bytes).expect("the fuzz image");
        (dir, path)
    })
}

fn write32(t: &mut MmioTransport, offset: u64, value: u32) {
    t.write(offset, &value.to_le_bytes());
}

fn read32(t: &mut MmioTransport, offset: u64) -> u32 {
    let mut data = [0u8; 4];
    t.read(offset, &mut data);
    u32::from_le_bytes(data)
}

/// What a Linux driver does: negotiate every offered feature, set up queue 0, DRIVER_OK.
fn bring_up(t: &mut MmioTransport, size: u16) {
    write32(t, reg::STATUS, status::ACKNOWLEDGE);
    write32(t, reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
    for sel in 0..2 {
        write32(t, reg::DEVICE_FEATURES_SEL, sel);
        let offered = read32(t, reg::DEVICE_FEATURES);
        write32(t, reg::DRIVER_FEATURES_SEL, sel);
        write32(t, reg::DRIVER_FEATURES, offered);
    }
    let ok = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
    write32(t, reg::STATUS, ok);
    write32(t, reg::QUEUE_SEL, 0);
    write32(t, reg::QUEUE_NUM, u32::from(size));
    write32(t, reg::QUEUE_DESC_LOW, 0);
    write32(t, reg::QUEUE_DRIVER_LOW, AVAIL as u32);
    write32(t, reg::QUEUE_DEVICE_LOW, USED as u32);
    write32(t, reg::QUEUE_READY, 1);
    write32(t, reg::STATUS, ok | status::DRIVER_OK);
}

/// Runs one input (see the module docs); panics when the image changes size (a write outside
/// it). The ring contents are not checked: IN requests may overwrite them.
pub fn run(data: &[u8]) {
    let Some((&flags, bytes)) = data.split_first() else {
        return;
    };
    let read_only = flags & 1 != 0;
    let size = 1u16 << (((flags >> 1) & 0xf) % 9);
    let mem = GuestMemoryMmap::from_ranges(&[
        (GuestAddress(0), 0x1_0000),
        (GuestAddress(0x2_0000), 0x1_0000),
    ])
    .expect("guest memory");
    let n = bytes.len().min(0x1_0000);
    mem.write_slice(&bytes[..n], GuestAddress(0))
        .expect("the input fits");
    // The used ring starts empty, as a driver leaves it.
    mem.write_slice(&[0u8; 4], GuestAddress(USED))
        .expect("used ring");

    let (_, path) = image();
    let disk = Disk::open(path, read_only).expect("the fuzz image opens");
    let mut t = MmioTransport::new(mem.clone(), Box::new(Block::new(disk))).expect("transport");
    bring_up(&mut t, size);
    t.process_queue(0);
    if flags & 0x20 != 0 {
        write32(&mut t, reg::STATUS, 0);
        mem.write_slice(&[0u8; 4], GuestAddress(USED))
            .expect("used ring");
        bring_up(&mut t, size);
        t.process_queue(0);
    }
    let len = std::fs::metadata(path).expect("the image").len();
    assert_eq!(len, DISK_BYTES, "the image changed size");
}
