//! io: a sequential pass, random 4 KiB reads and scratch writes read back, on a [`BlockSource`]
//! (the contract is in [`crate::io`]).

use super::{load, mix};
use crate::checksum::Checksum;
use crate::io::{
    write_data, BlockSource, Clock, IoError, IoOutcome, IoStats, Layout, Op, BLOCK_SIZE,
    BUFFER_LEN, SECTORS_PER_BLOCK,
};
use crate::latency::Histogram;
use crate::params::Params;
use crate::prng::SplitMix64;
use crate::sha256::Sha256;

/// Blocks per request of the sequential pass.
const SEQ_BLOCKS: u64 = (BUFFER_LEN / BLOCK_SIZE) as u64;

/// Fills `out` from SplitMix64 seeded with `mix(seed, index)`.
pub(crate) fn block_data(seed: u64, index: u64, out: &mut [u8]) {
    SplitMix64::new(mix(seed, index)).fill(out);
}

/// Folds the sector and every word of `data` into `state`.
fn fold(mut state: u64, sector: u64, data: &[u8]) -> u64 {
    state = mix(state, sector);
    for at in (0..data.len()).step_by(8) {
        state = mix(state, load(data, at));
    }
    state
}

/// Runs the three phases on a checked layout and an aligned buffer of [`BUFFER_LEN`] bytes.
pub(crate) fn run<S: BlockSource, C: Clock>(
    params: &Params,
    layout: &Layout,
    buf: &mut [u8],
    disk: &mut S,
    clock: &mut C,
) -> Result<IoOutcome, IoError<S::Error>> {
    let read = |disk: &mut S, clock: &mut C, sector: u64, buf: &mut [u8]| {
        let t0 = clock.now_ns();
        disk.read(sector, buf).map_err(|error| IoError::Disk {
            op: Op::Read,
            sector,
            error,
        })?;
        Ok::<u64, IoError<S::Error>>(clock.now_ns().saturating_sub(t0))
    };
    let mut stats = IoStats::default();
    let mut state = 0u64;

    // 1. Sequential pass over the read region.
    let mut block = 0;
    while block < layout.read_blocks {
        let n = SEQ_BLOCKS.min(layout.read_blocks - block);
        let chunk = buf.get_mut(..n as usize * BLOCK_SIZE).unwrap_or_default();
        let sector = block * SECTORS_PER_BLOCK;
        stats.seq_ns += read(disk, clock, sector, chunk)?;
        stats.seq_bytes += chunk.len() as u64;
        state = fold(state, sector, chunk);
        block += n;
    }

    // 2. Random 4 KiB reads in the read region.
    let mut rng = SplitMix64::new(params.seed);
    let mut latency = Histogram::new();
    for _ in 0..params.iterations {
        let sector = rng.below(layout.read_blocks) * SECTORS_PER_BLOCK;
        let one = buf.get_mut(..BLOCK_SIZE).unwrap_or_default();
        let ns = read(disk, clock, sector, one)?;
        latency.record(ns);
        stats.rand_ns += ns;
        state = fold(state, sector, one);
    }
    stats.rand_reads = params.iterations;
    stats.rand_p50_ns = latency.percentile(50);
    stats.rand_p99_ns = latency.percentile(99);

    // 3. Scratch writes, then every scratch block read back and checked.
    let (one, expected) = buf.split_at_mut(BLOCK_SIZE);
    let expected = expected.get_mut(..BLOCK_SIZE).unwrap_or_default();
    let mut latency = Histogram::new();
    for index in 0..layout.scratch_blocks {
        let sector = (layout.read_blocks + index) * SECTORS_PER_BLOCK;
        write_data(params.seed, index, one);
        let t0 = clock.now_ns();
        disk.write(sector, one).map_err(|error| IoError::Disk {
            op: Op::Write,
            sector,
            error,
        })?;
        let ns = clock.now_ns().saturating_sub(t0);
        latency.record(ns);
        stats.write_ns += ns;
    }
    stats.writes = layout.scratch_blocks;
    stats.write_p50_ns = latency.percentile(50);
    stats.write_p99_ns = latency.percentile(99);
    for index in 0..layout.scratch_blocks {
        let sector = (layout.read_blocks + index) * SECTORS_PER_BLOCK;
        one.fill(0x5a);
        read(disk, clock, sector, one)?;
        write_data(params.seed, index, expected);
        if one != expected {
            return Err(IoError::Verify { sector });
        }
        state = fold(state, sector, one);
    }

    let mut result = [0u8; 32];
    for (dst, word) in result.chunks_exact_mut(8).zip([
        state,
        layout.read_blocks,
        layout.scratch_blocks,
        params.iterations,
    ]) {
        dst.copy_from_slice(&word.to_le_bytes());
    }
    Ok(IoOutcome {
        checksum: Checksum(Sha256::digest(&result)),
        ops: layout.read_blocks + params.iterations + 2 * layout.scratch_blocks,
        stats,
    })
}
