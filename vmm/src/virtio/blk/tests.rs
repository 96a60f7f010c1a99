//! The request parser and executor on virtio-queue's `MockSplitQueue`, against temp images.

use std::fs::File;
use std::io::Write;

use virtio_queue::desc::RawDescriptor;
use virtio_queue::mock::MockSplitQueue;
use virtio_queue::QueueT;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::execute::{complete, Completion, BOUNCE_BYTES};
use super::request::{self, Header, Kind, Limits, RequestError};
use super::*;
use crate::virtio::test_utils::{
    avail_event, desc, memory, queue, used_elem, used_event, used_idx, NEXT, WRITE,
};

const HDR: u64 = 0x1_0000;
const DATA: u64 = 0x2_0000;
const STATUS: u64 = 0x8_0000;
const MEM: usize = 0x10_0000;
const SECTORS: u64 = 512;

/// A deterministic byte pattern (xorshift), different for each seed.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// FNV-1a, for the round-trip check.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

struct Rig {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    disk: Disk,
    mem: GuestMemoryMmap,
    image: Vec<u8>,
}

fn rig(read_only: bool) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vclab-disk0.img");
    let image = pattern(7, (SECTORS * SECTOR_SIZE) as usize);
    File::create(&path).unwrap().write_all(&image).unwrap();
    let disk = Disk::open(&path, read_only).unwrap();
    Rig {
        _dir: dir,
        path,
        disk,
        mem: memory(MEM),
        image,
    }
}

impl Rig {
    fn limits(&self) -> Limits {
        Limits {
            seg_max: SEG_MAX,
            max_bytes: MAX_REQUEST_BYTES,
            disk_bytes: self.disk.size(),
        }
    }

    fn header(&self, kind: u32, sector: u64) {
        let h = Header {
            kind: kind.into(),
            reserved: 0.into(),
            sector: sector.into(),
        };
        self.mem.write_obj(h, GuestAddress(HDR)).unwrap();
        self.mem.write_obj(0xffu8, GuestAddress(STATUS)).unwrap();
    }

    /// Runs one chain of `descs` (NEXT flags set by the mock) with `limits`.
    fn run_with(&self, descs: &[RawDescriptor], limits: &Limits) -> Completion {
        let mock = MockSplitQueue::new(&self.mem, 16);
        let chain = mock.build_desc_chain(descs).unwrap();
        let mut buf = vec![0; BOUNCE_BYTES];
        complete(chain, &self.disk, &self.mem, limits, &mut buf)
    }

    fn run(&self, descs: &[RawDescriptor]) -> Completion {
        self.run_with(descs, &self.limits())
    }

    fn status_byte(&self) -> u8 {
        self.mem.read_obj(GuestAddress(STATUS)).unwrap()
    }

    fn guest(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.mem.read_slice(&mut v, GuestAddress(addr)).unwrap();
        v
    }
}

fn hdr() -> RawDescriptor {
    desc(HDR, 16, 0, 0)
}

fn status() -> RawDescriptor {
    desc(STATUS, 1, WRITE, 0)
}

fn done(status: u8, used_len: u32) -> Completion {
    Completion {
        status: Some(status),
        used_len,
    }
}

#[test]
fn a_good_in_reads_the_sectors_into_guest_memory() {
    let r = rig(false);
    r.header(request::VIRTIO_BLK_T_IN, 3);
    let c = r.run(&[
        hdr(),
        desc(DATA, 512, WRITE, 0),
        desc(DATA + 0x1000, 1024, WRITE, 0),
        status(),
    ]);
    assert_eq!(c, done(VIRTIO_BLK_S_OK, 1536 + 1));
    assert_eq!(r.status_byte(), VIRTIO_BLK_S_OK);
    assert_eq!(r.guest(DATA, 512), r.image[3 * 512..4 * 512]);
    assert_eq!(r.guest(DATA + 0x1000, 1024), r.image[4 * 512..6 * 512]);
}

#[test]
fn a_good_out_writes_the_image() {
    let r = rig(false);
    let data = pattern(99, 2048);
    r.mem.write_slice(&data, GuestAddress(DATA)).unwrap();
    r.header(request::VIRTIO_BLK_T_OUT, SECTORS - 4);
    let c = r.run(&[hdr(), desc(DATA, 2048, 0, 0), status()]);
    assert_eq!(c, done(VIRTIO_BLK_S_OK, 1));
    let image = std::fs::read(&r.path).unwrap();
    assert_eq!(image[(SECTORS as usize - 4) * 512..], data[..]);
    assert_eq!(
        image[..(SECTORS as usize - 4) * 512],
        r.image[..(SECTORS as usize - 4) * 512]
    );
}

#[test]
fn flush_and_get_id_complete() {
    let r = rig(false);
    r.header(request::VIRTIO_BLK_T_FLUSH, 0);
    assert_eq!(r.run(&[hdr(), status()]), done(VIRTIO_BLK_S_OK, 1));

    r.header(request::VIRTIO_BLK_T_GET_ID, 0);
    let c = r.run(&[hdr(), desc(DATA, 20, WRITE, 0), status()]);
    assert_eq!(c, done(VIRTIO_BLK_S_OK, 21));
    assert_eq!(&r.guest(DATA, 20)[..15], b"vclab-disk0.img");
    // A short buffer gets the ID's first bytes; the status is not contiguous to them.
    r.header(request::VIRTIO_BLK_T_GET_ID, 0);
    let c = r.run(&[hdr(), desc(DATA + 0x100, 5, WRITE, 0), status()]);
    assert_eq!(c, done(VIRTIO_BLK_S_OK, 6));
    assert_eq!(r.guest(DATA + 0x100, 5), b"vclab");
}

#[test]
fn a_chain_without_a_usable_status_byte_is_consumed_with_used_len_0() {
    let r = rig(false);
    r.header(request::VIRTIO_BLK_T_IN, 0);
    let none = Completion {
        status: None,
        used_len: 0,
    };
    // Missing (the data buffer is last but read... it is the status candidate: 512 bytes is
    // fine as a status, so use a read-only last descriptor).
    assert_eq!(r.run(&[hdr(), desc(DATA, 512, 0, 0)]), none);
    // Only a header.
    assert_eq!(r.run(&[hdr()]), none);
    // Read-only status.
    assert_eq!(
        r.run(&[hdr(), desc(DATA, 512, WRITE, 0), desc(STATUS, 1, 0, 0)]),
        none
    );
    // Empty status.
    assert_eq!(r.run(&[hdr(), desc(STATUS, 0, WRITE, 0)]), none);
    // Outside guest memory.
    assert_eq!(r.run(&[hdr(), desc(MEM as u64, 1, WRITE, 0)]), none);
    assert_eq!(r.status_byte(), 0xff, "nothing was written");
}

/// What, request type, sector, chain, expected status, expected used length.
type Case = (&'static str, u32, u64, Vec<RawDescriptor>, u8, u32);

#[test]
fn malformed_requests_get_ioerr_or_unsupp() {
    let r = rig(false);
    let cases: Vec<Case> = vec![
        (
            "unknown type",
            77,
            0,
            vec![hdr(), status()],
            VIRTIO_BLK_S_UNSUPP,
            1,
        ),
        (
            "IN into a device-readable buffer",
            request::VIRTIO_BLK_T_IN,
            0,
            vec![hdr(), desc(DATA, 512, 0, 0), status()],
            VIRTIO_BLK_S_IOERR,
            1,
        ),
        (
            "OUT from a device-writable buffer",
            request::VIRTIO_BLK_T_OUT,
            0,
            vec![hdr(), desc(DATA, 512, WRITE, 0), status()],
            VIRTIO_BLK_S_IOERR,
            0,
        ),
        (
            "header device-writable",
            request::VIRTIO_BLK_T_IN,
            0,
            vec![desc(HDR, 16, WRITE, 0), status()],
            VIRTIO_BLK_S_IOERR,
            0,
        ),
        (
            "header too short",
            request::VIRTIO_BLK_T_IN,
            0,
            vec![desc(HDR, 8, 0, 0), status()],
            VIRTIO_BLK_S_IOERR,
            1,
        ),
        (
            "sector past the end",
            request::VIRTIO_BLK_T_IN,
            SECTORS,
            vec![hdr(), desc(DATA, 512, WRITE, 0), status()],
            VIRTIO_BLK_S_IOERR,
            0,
        ),
        (
            "last sector plus one",
            request::VIRTIO_BLK_T_OUT,
            SECTORS - 1,
            vec![hdr(), desc(DATA, 1024, 0, 0), status()],
            VIRTIO_BLK_S_IOERR,
            1,
        ),
        (
            "sector * 512 overflows",
            request::VIRTIO_BLK_T_IN,
            u64::MAX / 256,
            vec![hdr(), desc(DATA, 512, WRITE, 0), status()],
            VIRTIO_BLK_S_IOERR,
            0,
        ),
        (
            "length not a multiple of 512",
            request::VIRTIO_BLK_T_IN,
            0,
            vec![hdr(), desc(DATA, 513, WRITE, 0), status()],
            VIRTIO_BLK_S_IOERR,
            0,
        ),
        (
            "data outside guest memory",
            request::VIRTIO_BLK_T_IN,
            0,
            vec![hdr(), desc(MEM as u64 - 512, 1024, WRITE, 0), status()],
            VIRTIO_BLK_S_IOERR,
            0,
        ),
        (
            "data at a huge address",
            request::VIRTIO_BLK_T_OUT,
            0,
            vec![hdr(), desc(u64::MAX - 100, 512, 0, 0), status()],
            VIRTIO_BLK_S_IOERR,
            1,
        ),
        (
            "readable after writable",
            request::VIRTIO_BLK_T_IN,
            0,
            vec![
                hdr(),
                desc(DATA, 512, WRITE, 0),
                desc(DATA, 512, 0, 0),
                status(),
            ],
            VIRTIO_BLK_S_IOERR,
            0,
        ),
        (
            "FLUSH with data",
            request::VIRTIO_BLK_T_FLUSH,
            0,
            vec![hdr(), desc(DATA, 512, 0, 0), status()],
            VIRTIO_BLK_S_IOERR,
            1,
        ),
    ];
    for (what, kind, sector, descs, code, used) in cases {
        r.header(kind, sector);
        assert_eq!(r.run(&descs), done(code, used), "{what}");
        assert_eq!(r.status_byte(), code, "{what}");
    }
    // Nothing was read into guest memory, nothing written to the image.
    assert_eq!(r.guest(DATA, 16), vec![0; 16]);
    assert_eq!(std::fs::read(&r.path).unwrap(), r.image);
}

#[test]
fn seg_max_and_the_byte_cap_are_enforced() {
    let r = rig(false);
    let small = Limits {
        seg_max: 2,
        max_bytes: 1024,
        disk_bytes: r.disk.size(),
    };
    r.header(request::VIRTIO_BLK_T_IN, 0);
    let three: Vec<_> = (0..3)
        .map(|i| desc(DATA + i * 512, 512, WRITE, 0))
        .collect();
    let chain = [vec![hdr()], three, vec![status()]].concat();
    assert_eq!(r.run_with(&chain, &small), done(VIRTIO_BLK_S_IOERR, 0));
    assert_eq!(
        r.run_with(&[hdr(), desc(DATA, 2048, WRITE, 0), status()], &small),
        done(VIRTIO_BLK_S_IOERR, 0)
    );
    assert_eq!(
        r.run_with(&[hdr(), desc(DATA, 1024, WRITE, 0), status()], &small),
        done(VIRTIO_BLK_S_OK, 1025)
    );
}

#[test]
fn the_parser_names_what_is_wrong() {
    let r = rig(false);
    r.header(request::VIRTIO_BLK_T_IN, SECTORS);
    let mock = MockSplitQueue::new(&r.mem, 16);
    let chain = mock
        .build_desc_chain(&[hdr(), desc(DATA, 512, WRITE, 0), status()])
        .unwrap();
    let e = request::parse(chain, &r.mem, &r.limits()).unwrap_err();
    assert_eq!(
        e.error,
        RequestError::OutOfRange {
            sector: SECTORS,
            len: 512,
            disk_bytes: SECTORS * 512
        }
    );
    assert_eq!(e.status, Some(GuestAddress(STATUS)));
    assert!(e.error.to_string().contains("sector 512"), "{}", e.error);

    r.header(request::VIRTIO_BLK_T_IN, 1);
    let chain = mock
        .build_desc_chain(&[hdr(), desc(DATA, 512, WRITE, 0), status()])
        .unwrap();
    let req = request::parse(chain, &r.mem, &r.limits()).unwrap();
    assert_eq!((req.kind, req.sector, req.data_len), (Kind::In, 1, 512));
}

#[test]
fn a_looping_chain_ends_and_is_dropped() {
    let r = rig(false);
    r.header(request::VIRTIO_BLK_T_IN, 0);
    let mock = MockSplitQueue::new(&r.mem, 16);
    // 0 → 1 → 2 → 1 → 2 ...
    let descs = [
        desc(HDR, 16, NEXT, 1),
        desc(DATA, 512, WRITE | NEXT, 2),
        desc(STATUS, 1, WRITE | NEXT, 1),
    ];
    mock.add_desc_chains(&descs, 0).unwrap();
    let mut q = queue(&r.mem, &mock);
    let chain = q.pop_descriptor_chain(&r.mem).unwrap();
    let mut buf = vec![0; BOUNCE_BYTES];
    let c = complete(chain, &r.disk, &r.mem, &r.limits(), &mut buf);
    assert_eq!(
        c,
        Completion {
            status: None,
            used_len: 0
        }
    );
    assert_eq!(r.status_byte(), 0xff);
}

#[test]
fn out_on_a_read_only_disk_is_an_ioerr_and_leaves_the_image() {
    let r = rig(true);
    r.header(request::VIRTIO_BLK_T_OUT, 0);
    r.mem.write_slice(&[0xaa; 512], GuestAddress(DATA)).unwrap();
    assert_eq!(
        r.run(&[hdr(), desc(DATA, 512, 0, 0), status()]),
        done(VIRTIO_BLK_S_IOERR, 1)
    );
    assert_eq!(std::fs::read(&r.path).unwrap(), r.image);
    // Reads still work, and the device says it is read-only.
    r.header(request::VIRTIO_BLK_T_IN, 0);
    assert_eq!(
        r.run(&[hdr(), desc(DATA, 512, WRITE, 0), status()]),
        done(VIRTIO_BLK_S_OK, 513)
    );
    assert_ne!(Block::new(r.disk).features() & VIRTIO_BLK_F_RO, 0);
}

#[test]
fn bytes_round_trip_through_the_image() {
    let r = rig(false);
    // Larger than the bounce buffer, in uneven segments.
    let total = 3 * BOUNCE_BYTES / 2;
    assert!(total as u64 <= r.disk.size());
    let data = pattern(2026, total);
    r.mem.write_slice(&data, GuestAddress(DATA)).unwrap();
    let split = [512usize, 4096 * 5, total - 512 - 4096 * 5];
    let mut addr = DATA;
    let mut out = vec![hdr()];
    for len in split {
        out.push(desc(addr, len as u32, 0, 0));
        addr += len as u64;
    }
    out.push(status());
    r.header(request::VIRTIO_BLK_T_OUT, 0);
    assert_eq!(r.run(&out), done(VIRTIO_BLK_S_OK, 1));
    r.header(request::VIRTIO_BLK_T_FLUSH, 0);
    assert_eq!(r.run(&[hdr(), status()]), done(VIRTIO_BLK_S_OK, 1));

    let back = DATA + 0x4_0000;
    r.header(request::VIRTIO_BLK_T_IN, 0);
    let c = r.run(&[hdr(), desc(back, total as u32, WRITE, 0), status()]);
    assert_eq!(c, done(VIRTIO_BLK_S_OK, total as u32 + 1));
    assert_eq!(checksum(&r.guest(back, total)), checksum(&data));
    let image = std::fs::read(&r.path).unwrap();
    assert_eq!(checksum(&image[..total]), checksum(&data));
}

#[test]
fn the_device_drains_its_queue_and_asks_for_an_interrupt() {
    let r = rig(false);
    r.header(request::VIRTIO_BLK_T_IN, 2);
    let mock = MockSplitQueue::new(&r.mem, 16);
    // Two chains: a good IN, then one with no status.
    mock.add_desc_chains(
        &[
            desc(HDR, 16, NEXT, 1),
            desc(DATA, 512, WRITE | NEXT, 2),
            desc(STATUS, 1, WRITE, 0),
            desc(HDR, 16, 0, 0),
        ],
        0,
    )
    .unwrap();
    let mut q = queue(&r.mem, &mock);
    let mut dev = Block::new(Disk::open(&r.path, false).unwrap());
    assert!(!dev.process_queue(0, &mut q, &r.mem), "inactive");
    dev.activate(dev.features(), &[true]).unwrap();
    assert!(dev.process_queue(0, &mut q, &r.mem));
    assert_eq!(used_idx(&r.mem), 2);
    assert_eq!(used_elem(&r.mem, 0), (0, 513));
    assert_eq!(used_elem(&r.mem, 1), (3, 0));
    assert_eq!(
        dev.stats(),
        Stats {
            ok: 1,
            failed: 0,
            dropped: 1
        }
    );
    assert_eq!(r.guest(DATA, 512), r.image[1024..1536]);
    // Nothing new: no interrupt.
    assert!(!dev.process_queue(0, &mut q, &r.mem));
}

#[test]
fn the_config_space_holds_capacity_seg_max_and_blk_size() {
    let r = rig(true);
    let dev = Block::new(r.disk);
    let mut cap = [0u8; 8];
    dev.read_config(0, &mut cap);
    assert_eq!(u64::from_le_bytes(cap), SECTORS);
    let mut w = [0u8; 4];
    dev.read_config(12, &mut w);
    assert_eq!(u32::from_le_bytes(w), SEG_MAX);
    dev.read_config(20, &mut w);
    assert_eq!(u32::from_le_bytes(w), 512);
    dev.read_config(21, &mut w);
    assert_eq!(w, [0x02, 0, 0, 0], "past the end reads 0");
    dev.read_config(u64::MAX, &mut w);
    assert_eq!(w, [0; 4]);
    let f = dev.features();
    for bit in [
        VIRTIO_F_VERSION_1,
        VIRTIO_BLK_F_FLUSH,
        VIRTIO_BLK_F_SEG_MAX,
        VIRTIO_BLK_F_BLK_SIZE,
        VIRTIO_BLK_F_RO,
    ] {
        assert_ne!(f & bit, 0, "{bit:#x}");
    }
}

#[test]
fn an_available_index_too_far_ahead_does_not_spin() {
    let r = rig(false);
    let mock = MockSplitQueue::new(&r.mem, 16);
    let mut q = queue(&r.mem, &mock);
    mock.avail().idx().store(100);
    let mut dev = Block::new(Disk::open(&r.path, false).unwrap());
    dev.activate(dev.features(), &[true]).unwrap();
    assert!(!dev.process_queue(0, &mut q, &r.mem));
    assert_eq!(used_idx(&r.mem), 0);
    assert_eq!(dev.stats(), Stats::default());
}

#[test]
fn an_empty_bounce_buffer_still_works() {
    let r = rig(false);
    r.header(request::VIRTIO_BLK_T_IN, 8);
    let mock = MockSplitQueue::new(&r.mem, 16);
    let chain = mock
        .build_desc_chain(&[hdr(), desc(DATA, 2048, WRITE, 0), status()])
        .unwrap();
    let c = complete(chain, &r.disk, &r.mem, &r.limits(), &mut []);
    assert_eq!(c, done(VIRTIO_BLK_S_OK, 2049));
    assert_eq!(r.guest(DATA, 2048), r.image[8 * 512..12 * 512]);
}

#[test]
fn with_event_idx_the_driver_s_used_event_decides_the_interrupt() {
    let r = rig(false);
    r.header(request::VIRTIO_BLK_T_FLUSH, 0);
    let mock = MockSplitQueue::new(&r.mem, 16);
    let mut q = queue(&r.mem, &mock);
    q.set_event_idx(true);
    let used_event = used_event(&mock, 16);
    let avail_event = avail_event(16);
    let mut dev = Block::new(Disk::open(&r.path, false).unwrap());
    dev.activate(dev.features(), &[true]).unwrap();
    // The driver wants an interrupt only after the 5th used buffer.
    r.mem.write_obj(4u16, used_event).unwrap();
    mock.add_desc_chains(&[desc(HDR, 16, NEXT, 1), desc(STATUS, 1, WRITE, 0)], 0)
        .unwrap();
    assert!(!dev.process_queue(0, &mut q, &r.mem), "used 1 of 5");
    assert_eq!(used_idx(&r.mem), 1);
    // The device asks to be notified of the next available buffer.
    assert_eq!(r.mem.read_obj::<u16>(avail_event).unwrap(), 1);
    // Now after the next one.
    r.mem.write_obj(1u16, used_event).unwrap();
    mock.add_desc_chains(&[desc(HDR, 16, NEXT, 3), desc(STATUS, 1, WRITE, 0)], 2)
        .unwrap();
    assert!(dev.process_queue(0, &mut q, &r.mem));
    assert_eq!(used_idx(&r.mem), 2);
    assert_eq!(r.mem.read_obj::<u16>(avail_event).unwrap(), 2);
}
