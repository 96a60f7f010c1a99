//! Talking to the outside: the lab control device when the VMM has it (DESIGN.md, "Lab control
//! device"), else the UART plus QEMU's isa-debug-exit and the i8042 reset (QEMU, Firecracker).

use crate::port;

/// Lab device: write 123 = ready; read = `'V'` when present.
const PORT_LAB_ID: u16 = 0x3f0;
/// Lab device: write the exit status; the VM ends at once.
const PORT_LAB_STATUS: u16 = 0x3f1;
/// Lab device: write the guest-physical address of a line record (u32 LE length, then bytes).
const PORT_LAB_LINE: u16 = 0x3f4;
/// What port 0x3f0 reads when the lab device is present.
const LAB_DEVICE_ID: u8 = 0x56;
/// The ready value written to port 0x3f0.
pub const READY_VALUE: u8 = 123;
/// Longest line the lab device takes.
const MAX_RECORD: usize = 4096;
/// The first UART (COM1) data port.
const PORT_UART: u16 = 0x3f8;
/// QEMU's isa-debug-exit (`-device isa-debug-exit`): QEMU exits with `(status << 1) | 1`.
const PORT_DEBUG_EXIT: u16 = 0x501;
/// The i8042 command port; 0xfe pulses the reset line (Firecracker and QEMU end or reboot).
const PORT_I8042: u16 = 0x64;
const I8042_RESET: u8 = 0xfe;

/// Tells the VMM the guest runs (one port write; the VMM timestamps it).
pub fn signal_ready() {
    port::outb(PORT_LAB_ID, READY_VALUE);
}

/// A line record as the lab device reads it from guest memory.
#[repr(C, align(8))]
struct Record {
    len: u32,
    bytes: [u8; MAX_RECORD],
}

/// Where lines and the exit status go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lab {
    /// Whether the lab control device answered on port 0x3f0.
    device: bool,
}

impl Lab {
    /// Probes the lab control device (one port read).
    pub fn detect() -> Lab {
        Lab {
            device: port::inb(PORT_LAB_ID) == LAB_DEVICE_ID,
        }
    }

    /// Whether the lab control device is present.
    pub fn has_device(&self) -> bool {
        self.device
    }

    /// Sends one line (without its newline): one exit through the lab device, or the UART.
    /// Lines longer than 4095 bytes are cut.
    pub fn line(&self, text: &[u8]) {
        let text = text.get(..MAX_RECORD - 1).unwrap_or(text);
        let mut record = Record {
            len: text.len() as u32,
            bytes: [0; MAX_RECORD],
        };
        if let Some(dst) = record.bytes.get_mut(..text.len()) {
            dst.copy_from_slice(text);
        }
        if !self.device {
            // Text and newline in one `rep outsb`: one trip through the shim.
            if let Some(nl) = record.bytes.get_mut(text.len()) {
                *nl = b'\n';
            }
            uart(record.bytes.get(..=text.len()).unwrap_or_default());
            return;
        }
        // The stack is identity-mapped below 4 GiB: its address is the guest-physical one.
        let addr = core::ptr::addr_of!(record) as usize;
        port::outl(PORT_LAB_LINE, u32::try_from(addr).unwrap_or(0));
        // Keep the record alive (and written) until the VMM has read it.
        core::hint::black_box(&record);
    }

    /// Ends the VM with `status`.
    pub fn exit(&self, status: u8) -> ! {
        if self.device {
            port::outb(PORT_LAB_STATUS, status);
        }
        port::outb(PORT_DEBUG_EXIT, status);
        port::outb(PORT_I8042, I8042_RESET);
        loop {
            core::hint::spin_loop();
        }
    }
}

/// Writes raw bytes to the UART (no newline added).
pub fn uart(bytes: &[u8]) {
    port::outsb(PORT_UART, bytes);
}
