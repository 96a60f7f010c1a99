//! The ring-0 shim (`shim.s`) and the symbols of it that the ring-3 code uses.

use vclab_contract::labctl;

// The ports and values of the shim's exit path come from the contract crate,
// like the ring-3 code's (`lab.rs`): `{name}` in shim.s is replaced by the
// constant given here.
core::arch::global_asm!(
    include_str!("shim.s"),
    exit_port = const labctl::EXIT_PORT,
    debug_exit_port = const labctl::QEMU_DEBUG_EXIT_PORT,
    ch_acpi_port = const labctl::CH_ACPI_SHUTDOWN_PORT,
    ch_acpi_s5 = const labctl::CH_ACPI_S5,
    i8042_port = const labctl::I8042_COMMAND_PORT,
    i8042_reset = const labctl::I8042_RESET,
    com1 = const labctl::COM1_BASE,
    options(att_syntax)
);

extern "C" {
    /// The shim's interrupt descriptor table: 32 gates of 16 bytes (`shim.s`).
    pub static mut shim_idt: [u8; IDT_LEN];
}

/// Bytes in the shim's IDT (32 gates).
pub const IDT_LEN: usize = 32 * 16;
