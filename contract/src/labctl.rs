//! The I/O ports a vclab guest talks to (DESIGN.md, "Lab control device"): the lab control device
//! of vclab's own VMM, and, for the unikernel's exit path on other VMMs, COM1, QEMU's
//! isa-debug-exit, Cloud Hypervisor's ACPI shutdown device and the i8042 reset (written in that
//! order: each VMM ends at its own port and ignores the ones before it).

/// The lab control device's ready / presence register (1 byte). A write of [`READY_VALUE`] says
/// the guest is ready (the VMM timestamps it); a read returns [`PRESENCE_VALUE`] when the device
/// is there (another VMM reads all-ones or nothing).
pub const READY_PORT: u16 = 0x3f0;
/// The lab control device's exit-status register (1 byte write): the VM ends at once and the VMM
/// exits with the byte written.
pub const EXIT_PORT: u16 = 0x3f1;
/// The lab control device's line-record register (4-byte write): the guest-physical address of a
/// record, a u32 little-endian length (at most [`MAX_LINE_RECORD`]) followed by that many bytes.
/// The VMM reads it bounds-checked and prints it as one line on its stdout.
pub const LINE_PORT: u16 = 0x3f4;
/// The lab control device's params register (4-byte write), read by a guest once, after its
/// ready signal: the guest writes the guest-physical address of a params record, a u32
/// little-endian length followed by room for [`MAX_PARAMS_TEXT`] bytes
/// ([`PARAMS_RECORD_BYTES`] in all). The VMM writes the record back before the guest goes on:
/// length 0 on a cold boot (the guest keeps its own command line), or, after a restore from a
/// snapshot taken at the ready signal, the length and bytes of `--cmdline-after-restore`:
/// `vclab.*` words that override the ones of the command line the guest read before the
/// snapshot (the last occurrence of a key wins, as on one command line). A record that does
/// not lie in guest memory is left alone (the guest then sees the length it put there, 0).
pub const PARAMS_PORT: u16 = 0x3f2;
/// The longest after-restore text the params record holds, bytes.
pub const MAX_PARAMS_TEXT: u32 = 2048;
/// The params record's size: the u32 length and [`MAX_PARAMS_TEXT`] bytes.
pub const PARAMS_RECORD_BYTES: u32 = 4 + MAX_PARAMS_TEXT;
/// The value written to [`READY_PORT`] to say "guest ready".
pub const READY_VALUE: u8 = 123;
/// What a read of [`READY_PORT`] returns when the lab control device is present (`'V'`).
pub const PRESENCE_VALUE: u8 = 0x56;
/// The longest line record, in bytes (the u32 length is at most this).
pub const MAX_LINE_RECORD: u32 = 4096;

/// The ports the lab control device owns.
pub const fn is_labctl_port(port: u16) -> bool {
    matches!(port, READY_PORT | EXIT_PORT | PARAMS_PORT | LINE_PORT)
}

/// The first 8250 UART (COM1) I/O base: data register, the 7 others follow.
pub const COM1_BASE: u16 = 0x3f8;
/// QEMU's isa-debug-exit port (`-device isa-debug-exit,iobase=0x501`): a byte write ends QEMU
/// with status `(value << 1) | 1`.
pub const QEMU_DEBUG_EXIT_PORT: u16 = 0x501;
/// Cloud Hypervisor's ACPI shutdown device (`AcpiShutdownDevice` in cloud-hypervisor
/// `devices/src/acpi.rs`; `add_acpi_devices` in `vmm/src/device_manager.rs` puts it on the I/O
/// bus at 0x600 on x86_64, as in v53.0; early releases used 0x3c0). A one-byte write of
/// [`CH_ACPI_S5`] powers the VM off and Cloud Hypervisor exits (status 0); a write of 1 reboots.
/// No device there on QEMU microvm, Firecracker or vclab's VMM (the write is dropped).
pub const CH_ACPI_SHUTDOWN_PORT: u16 = 0x600;
/// The value CH's ACPI shutdown device takes for S5 (soft off): `(S5_SLEEP_VALUE << 2) | (1 <<
/// SLEEP_STATUS_EN_BIT)` = `(5 << 2) | (1 << 5)` = 0x34.
pub const CH_ACPI_S5: u8 = (5 << 2) | (1 << 5);
/// The i8042 keyboard controller's command port.
pub const I8042_COMMAND_PORT: u16 = 0x64;
/// The i8042 command "pulse the reset line": written to [`I8042_COMMAND_PORT`] it resets the
/// machine (vclab's VMM and Firecracker end the VM; QEMU reboots).
pub const I8042_RESET: u8 = 0xfe;
