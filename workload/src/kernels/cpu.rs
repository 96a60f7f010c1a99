//! cpu: SHA-256 over a generated buffer, hashed `iterations` times, each pass chained to the last.

use crate::checksum::Checksum;
use crate::params::Params;
use crate::prng::SplitMix64;
use crate::sha256::{Sha256, DIGEST_LEN};
use crate::Outcome;

/// Fills `buf` from the seed, then `iterations` times: writes the previous digest over the first 32
/// bytes and hashes the whole buffer. The checksum is the last digest; ops = bytes hashed.
pub(crate) fn run(params: &Params, buf: &mut [u8]) -> Outcome {
    SplitMix64::new(params.seed).fill(buf);
    let mut digest = [0u8; DIGEST_LEN];
    for i in 0..params.iterations {
        if i > 0 {
            if let Some(head) = buf.get_mut(..DIGEST_LEN) {
                head.copy_from_slice(&digest);
            }
        }
        digest = Sha256::digest(buf);
    }
    Outcome {
        checksum: Checksum(digest),
        ops: (buf.len() as u64).saturating_mul(params.iterations),
    }
}
