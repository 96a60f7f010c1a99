//! The kernels. The memory ones take validated params and a 64-byte aligned slice of exactly
//! `size` bytes, and return the checksum and the operation count; `io` also takes a disk.

mod cpu;
mod io;
mod mem_bw;
mod mem_lat;

pub(crate) use cpu::run as cpu;
pub(crate) use io::{block_data as io_block_data, run as io};
pub(crate) use mem_bw::run as mem_bw;
pub(crate) use mem_lat::run as mem_lat;

/// Reads the little-endian `u64` at byte offset `at` of `buf`; 0 when out of bounds (never for
/// valid offsets).
#[inline(always)]
fn load(buf: &[u8], at: usize) -> u64 {
    match buf.get(at..at.wrapping_add(8)) {
        Some(&[a, b, c, d, e, f, g, h]) => u64::from_le_bytes([a, b, c, d, e, f, g, h]),
        _ => 0,
    }
}

/// Writes `value` little-endian at byte offset `at` of `buf`; does nothing when out of bounds.
#[inline(always)]
fn store(buf: &mut [u8], at: usize, value: u64) {
    if let Some(dst) = buf.get_mut(at..at.wrapping_add(8)) {
        dst.copy_from_slice(&value.to_le_bytes());
    }
}

/// Folds one word into a running state (an order-dependent mix, so reorders change the result).
#[inline(always)]
fn mix(state: u64, word: u64) -> u64 {
    (state ^ word)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(29)
}
