//! The ring-0 shim (`shim.s`) and the symbols of it that the ring-3 code uses.

core::arch::global_asm!(include_str!("shim.s"), options(att_syntax));

extern "C" {
    /// The shim's interrupt descriptor table: 32 gates of 16 bytes (`shim.s`).
    pub static mut shim_idt: [u8; IDT_LEN];
}

/// Bytes in the shim's IDT (32 gates).
pub const IDT_LEN: usize = 32 * 16;
