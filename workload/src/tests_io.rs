//! io kernel tests on an in-memory disk: determinism, what the checksum depends on, errors.

use super::io::{image_block, Layout, OutOfRange, SliceDisk, BLOCK_SIZE, SECTORS_PER_BLOCK};
use super::*;

/// A disk image of `blocks` blocks made from `seed`.
fn image(seed: u64, blocks: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; blocks as usize * BLOCK_SIZE];
    for (b, block) in bytes.chunks_exact_mut(BLOCK_SIZE).enumerate() {
        image_block(seed, b as u64, block);
    }
    bytes
}

fn params(size: u64, iterations: u64, seed: u64) -> Params {
    Params {
        kernel: Kernel::Io,
        size,
        iterations,
        seed,
    }
}

/// A clock that advances 1 µs per reading.
fn ticking() -> impl FnMut() -> u64 {
    let mut now = 0;
    move || {
        now += 1000;
        now
    }
}

fn run_on(p: &Params, disk: &mut [u8]) -> Result<IoOutcome, IoError<OutOfRange>> {
    let mut scratch = vec![0u8; p.scratch_len().unwrap()];
    run_io(p, &mut scratch, &mut SliceDisk::new(disk), &mut ticking())
}

#[test]
fn same_params_and_image_same_checksum_and_counts() {
    let p = params(256 << 10, 100, 7);
    let a = run_on(&p, &mut image(1, 64)).unwrap();
    let b = run_on(&p, &mut image(1, 64)).unwrap();
    assert_eq!(a, b);
    // 64 blocks: 4 scratch, 60 read; ops = 60 + 100 + 2 * 4.
    assert_eq!(Layout::of(&p).unwrap().scratch_blocks, 4);
    assert_eq!(a.ops, 60 + 100 + 8);
    assert_eq!(a.stats.seq_bytes, 60 * BLOCK_SIZE as u64);
    assert_eq!((a.stats.rand_reads, a.stats.writes), (100, 4));
    // Each request reads the clock twice: 1 µs per request (percentiles within 1/32).
    assert_eq!(a.stats.rand_ns, 100_000);
    assert!(a.stats.rand_p50_ns.abs_diff(1000) <= 1000 / 32);
    assert_eq!(a.stats.rand_p99_ns, a.stats.rand_p50_ns);
    assert!(a.stats.write_p99_ns.abs_diff(1000) <= 1000 / 32);
    assert_eq!(a.stats.seq_ns, 2 * 1000);
    assert_eq!(a.stats.write_ns, 4 * 1000);
    assert_eq!(a.stats.direct, None);
}

#[test]
fn checksum_depends_on_seed_iterations_and_content() {
    let p = params(128 << 10, 50, 7);
    let base = run_on(&p, &mut image(1, 32)).unwrap().checksum;
    assert_ne!(
        run_on(&params(128 << 10, 50, 8), &mut image(1, 32))
            .unwrap()
            .checksum,
        base
    );
    assert_ne!(
        run_on(&params(128 << 10, 51, 7), &mut image(1, 32))
            .unwrap()
            .checksum,
        base
    );
    assert_ne!(run_on(&p, &mut image(2, 32)).unwrap().checksum, base);
    // One byte of the read region's last block (read by the sequential pass).
    let mut disk = image(1, 32);
    let last_read = (Layout::of(&p).unwrap().read_blocks as usize) * BLOCK_SIZE - 1;
    disk[last_read] ^= 1;
    assert_ne!(run_on(&p, &mut disk).unwrap().checksum, base);
}

#[test]
fn scratch_area_and_disk_tail_do_not_count() {
    let p = params(128 << 10, 50, 7);
    let base = run_on(&p, &mut image(1, 32)).unwrap();
    let mut disk = image(1, 40);
    let read_end = Layout::of(&p).unwrap().read_blocks as usize * BLOCK_SIZE;
    disk[read_end..].fill(0xee);
    let mut scratch = vec![0x11u8; p.scratch_len().unwrap() + 100];
    let mut slice = SliceDisk::new(&mut disk);
    let got = run_io(&p, &mut scratch[3..], &mut slice, &mut ticking()).unwrap();
    assert_eq!(got, base);
    // The writes landed: the scratch area now holds the generated data, not 0xee.
    assert_ne!(disk[read_end], 0xee);
}

#[test]
fn a_disk_too_small_and_a_kernel_without_disk_are_refused() {
    let p = params(128 << 10, 1, 0);
    assert_eq!(
        run_on(&p, &mut image(1, 31)),
        Err(IoError::DiskTooSmall {
            needed: 32 * SECTORS_PER_BLOCK,
            sectors: 31 * SECTORS_PER_BLOCK
        })
    );
    let mut scratch = vec![0u8; p.scratch_len().unwrap()];
    assert_eq!(run(&p, &mut scratch), Err(ParamsError::IoNeedsDisk));
    let cpu = Params::new(Kernel::Cpu);
    assert!(matches!(
        run_io(
            &cpu,
            &mut scratch,
            &mut SliceDisk::new(&mut image(1, 2)),
            &mut ticking()
        ),
        Err(IoError::Params(ParamsError::UnknownKernel))
    ));
    let mut short = vec![0u8; p.scratch_len().unwrap() - 4096];
    assert!(matches!(
        run_io(
            &p,
            &mut short,
            &mut SliceDisk::new(&mut image(1, 32)),
            &mut ticking()
        ),
        Err(IoError::Params(ParamsError::ScratchTooSmall { .. }))
    ));
}

/// A disk that fails its `fail_at`-th request, or drops every write.
struct Faulty<'a> {
    inner: SliceDisk<'a>,
    requests: u64,
    fail_at: u64,
    drop_writes: bool,
}

impl BlockSource for Faulty<'_> {
    type Error = &'static str;

    fn sectors(&self) -> u64 {
        self.inner.sectors()
    }

    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), &'static str> {
        self.requests += 1;
        if self.requests == self.fail_at {
            return Err("injected");
        }
        self.inner.read(sector, buf).map_err(|_| "range")
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), &'static str> {
        self.requests += 1;
        if self.requests == self.fail_at {
            return Err("injected");
        }
        if self.drop_writes {
            return Ok(());
        }
        self.inner.write(sector, buf).map_err(|_| "range")
    }
}

#[test]
fn disk_errors_and_lost_writes_propagate() {
    // 32 blocks: 2 scratch, 30 read = 1 sequential request; then 5 random reads, 2 writes.
    let p = params(128 << 10, 5, 3);
    let mut scratch = vec![0u8; p.scratch_len().unwrap()];
    let cases = [
        (1, io::Op::Read, Some(0)),
        (3, io::Op::Read, None),
        (7, io::Op::Write, Some(30 * SECTORS_PER_BLOCK)),
        (8, io::Op::Write, Some(31 * SECTORS_PER_BLOCK)),
        (9, io::Op::Read, Some(30 * SECTORS_PER_BLOCK)),
        (10, io::Op::Read, Some(31 * SECTORS_PER_BLOCK)),
    ];
    for (fail_at, want_op, want_sector) in cases {
        let mut bytes = image(1, 32);
        let mut disk = Faulty {
            inner: SliceDisk::new(&mut bytes),
            requests: 0,
            fail_at,
            drop_writes: false,
        };
        match run_io(&p, &mut scratch, &mut disk, &mut ticking()) {
            Err(IoError::Disk { op, sector, error }) => {
                assert_eq!((op, error), (want_op, "injected"), "request {fail_at}");
                if let Some(s) = want_sector {
                    assert_eq!(sector, s, "request {fail_at}");
                }
                assert!(sector % SECTORS_PER_BLOCK == 0 && sector < 32 * SECTORS_PER_BLOCK);
            }
            other => panic!("request {fail_at}: {other:?}"),
        }
    }
    let mut bytes = image(1, 32);
    bytes[30 * BLOCK_SIZE..].fill(0);
    let mut disk = Faulty {
        inner: SliceDisk::new(&mut bytes),
        requests: 0,
        fail_at: 0,
        drop_writes: true,
    };
    let err = run_io(&p, &mut scratch, &mut disk, &mut ticking()).unwrap_err();
    assert_eq!(
        err,
        IoError::Verify {
            sector: 30 * SECTORS_PER_BLOCK
        }
    );
    assert!(err.to_string().contains("sector 240"), "{err}");
}

#[test]
fn image_blocks_are_deterministic_and_distinct() {
    let (mut a, mut b, mut c) = ([0u8; BLOCK_SIZE], [0u8; BLOCK_SIZE], [0u8; BLOCK_SIZE]);
    image_block(5, 10, &mut a);
    image_block(5, 10, &mut b);
    assert_eq!(a, b);
    image_block(5, 11, &mut c);
    assert_ne!(a, c);
    image_block(6, 10, &mut c);
    assert_ne!(a, c);
    assert!(a.iter().any(|&x| x != 0));
}

#[test]
fn layouts() {
    let l = |size| Layout::of(&params(size, 1, 0)).unwrap();
    assert_eq!(
        l(8192),
        Layout {
            read_blocks: 1,
            scratch_blocks: 1
        }
    );
    assert_eq!(l(16 << 20).scratch_blocks, 64);
    assert_eq!(l(16 << 20).read_blocks, 4096 - 64);
    assert_eq!(l(64 << 20).scratch_blocks, 64);
    assert_eq!(l(64 << 20).sectors(), (64 << 20) / 512);
    assert_eq!(
        Layout::of(&params(4096, 1, 0)),
        Err(ParamsError::IoSize { size: 4096 })
    );
}
