//! mem-lat: a dependent pointer chase through one random cycle over 64-byte nodes.

use super::{load, mix, store};
use crate::checksum::Checksum;
use crate::params::Params;
use crate::prng::SplitMix64;
use crate::sha256::Sha256;
use crate::Outcome;

/// Bytes per node: one cache line, so every hop touches a new line.
const NODE: usize = 64;

/// Builds a random cyclic permutation of the `size / 64` nodes with Sattolo's algorithm (seeded
/// SplitMix64), then follows it `iterations` full laps. Every load depends on the previous one.
/// The checksum is the SHA-256 of an order-dependent fold of the visited nodes; ops = loads.
pub(crate) fn run(params: &Params, buf: &mut [u8]) -> Outcome {
    let nodes = buf.len() / NODE;
    for i in 0..nodes {
        store(buf, i * NODE, (i * NODE) as u64);
    }
    // Sattolo: swapping each node only with an earlier one yields a single cycle through all nodes.
    let mut rng = SplitMix64::new(params.seed);
    for i in (1..nodes).rev() {
        let j = rng.below(i as u64) as usize;
        let (at_i, at_j) = (i * NODE, j * NODE);
        let (vi, vj) = (load(buf, at_i), load(buf, at_j));
        store(buf, at_i, vj);
        store(buf, at_j, vi);
    }
    let hops = (nodes as u64).saturating_mul(params.iterations);
    let mut at = 0u64;
    let mut state = 0u64;
    for _ in 0..hops {
        at = load(buf, at as usize);
        state = mix(state, at);
    }
    let mut result = [0u8; 16];
    result[..8].copy_from_slice(&state.to_le_bytes());
    result[8..].copy_from_slice(&at.to_le_bytes());
    Outcome {
        checksum: Checksum(Sha256::digest(&result)),
        ops: hops,
    }
}
