//! mem-bw: STREAM-like copy and triad passes over three arrays of `u64` (integer, so exact on every
//! runtime).

use super::{load, mix, store};
use crate::checksum::Checksum;
use crate::params::Params;
use crate::prng::SplitMix64;
use crate::sha256::Sha256;
use crate::Outcome;

/// Triad scalar: `a = b + SCALAR * c`.
const SCALAR: u64 = 3;

/// Splits the buffer into arrays a, b, c of `size / 24` words; fills a and b from the seed; then
/// `iterations` times runs copy (`c = a`) and triad (`a = b + 3 * c`). The checksum is the SHA-256
/// of a fold of a and c; ops = bytes read and written by the passes (40 per word per iteration).
pub(crate) fn run(params: &Params, buf: &mut [u8]) -> Outcome {
    let bytes = buf.len() / 24 * 8;
    let (a, rest) = buf.split_at_mut(bytes);
    let (b, rest) = rest.split_at_mut(bytes);
    let c = rest.get_mut(..bytes).unwrap_or_default();
    let mut rng = SplitMix64::new(params.seed);
    rng.fill(a);
    rng.fill(b);
    for _ in 0..params.iterations {
        copy(a, c);
        triad(a, b, c);
    }
    let mut state = 0u64;
    for at in (0..bytes).step_by(8) {
        state = mix(state, load(a, at));
        state = mix(state, load(c, at));
    }
    let words = (bytes / 8) as u64;
    Outcome {
        checksum: Checksum(Sha256::digest(&state.to_le_bytes())),
        ops: words.saturating_mul(40).saturating_mul(params.iterations),
    }
}

/// `dst = src`, word by word.
#[inline(never)]
fn copy(src: &[u8], dst: &mut [u8]) {
    for (d, s) in dst.chunks_exact_mut(8).zip(src.chunks_exact(8)) {
        d.copy_from_slice(s);
    }
}

/// `a = b + SCALAR * c`, word by word, wrapping.
#[inline(never)]
fn triad(a: &mut [u8], b: &[u8], c: &[u8]) {
    for ((x, y), z) in a
        .chunks_exact_mut(8)
        .zip(b.chunks_exact(8))
        .zip(c.chunks_exact(8))
    {
        let v = load(y, 0).wrapping_add(load(z, 0).wrapping_mul(SCALAR));
        store(x, 0, v);
    }
}
