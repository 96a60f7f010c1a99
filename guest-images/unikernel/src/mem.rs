//! The C memory functions the compiler calls (`memcpy`, `memmove`, `memset`, `memcmp`, `bcmp`).
//!
//! No libc here, so the guest brings its own. The copies and fills use `rep movsb`/`rep stosb`
//! (fast on every CPU with ERMS, and they run natively at CPL 3); being inline assembly, they
//! cannot be turned back into calls to themselves. The comparisons use volatile byte reads for
//! the same reason.

use core::arch::asm;

/// Copies `n` bytes from `src` to `dst` (the regions must not overlap).
///
/// # Safety
/// `src` must be readable and `dst` writable for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both regions; DF is clear per the ABI, so this copies upwards.
    unsafe {
        asm!(
            "rep movsb",
            inout("rcx") n => _,
            inout("rdi") dst => _,
            inout("rsi") src => _,
            options(nostack, preserves_flags)
        );
    }
    dst
}

/// Copies `n` bytes from `src` to `dst`; the regions may overlap.
///
/// # Safety
/// `src` must be readable and `dst` writable for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize).wrapping_sub(src as usize) >= n {
        // `dst` is below `src` or past its end: an upward copy never reads a byte it wrote.
        // SAFETY: the caller guarantees both regions.
        return unsafe { memcpy(dst, src, n) };
    }
    // SAFETY: the caller guarantees both regions; copies downwards from the last byte with DF
    // set, and clears DF again as the ABI requires.
    unsafe {
        asm!(
            "std",
            "rep movsb",
            "cld",
            inout("rcx") n => _,
            inout("rdi") dst.wrapping_add(n).wrapping_sub(1) => _,
            inout("rsi") src.wrapping_add(n).wrapping_sub(1) => _,
            options(nostack)
        );
    }
    dst
}

/// Sets `n` bytes at `dst` to the low byte of `value`.
///
/// # Safety
/// `dst` must be writable for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memset(dst: *mut u8, value: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees the region; DF is clear per the ABI.
    unsafe {
        asm!(
            "rep stosb",
            inout("rcx") n => _,
            inout("rdi") dst => _,
            in("al") value as u8,
            options(nostack, preserves_flags)
        );
    }
    dst
}

/// Compares `n` bytes: negative, zero or positive like C's `memcmp`.
///
/// # Safety
/// `a` and `b` must be readable for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: `i < n` and the caller guarantees `n` readable bytes at both pointers.
        let x = unsafe { a.add(i).read_volatile() };
        // SAFETY: as above.
        let y = unsafe { b.add(i).read_volatile() };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

/// Compares `n` bytes for equality only: zero when equal.
///
/// # Safety
/// `a` and `b` must be readable for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}
