//! Talking to the outside: the lab control device when the VMM has it (DESIGN.md, "Lab control
//! device"), else the UART plus QEMU's isa-debug-exit, Cloud Hypervisor's ACPI shutdown and the
//! i8042 reset (QEMU, Cloud Hypervisor, Firecracker).

use vclab_contract::labctl;

use crate::port;

/// Longest line the lab device takes.
const MAX_RECORD: usize = labctl::MAX_LINE_RECORD as usize;

/// Tells the VMM the guest runs (one port write; the VMM timestamps it).
pub fn signal_ready() {
    port::outb(labctl::READY_PORT, labctl::READY_VALUE);
}

/// A line record as the lab device reads it from guest memory.
#[repr(C, align(8))]
struct Record {
    len: u32,
    bytes: [u8; MAX_RECORD],
}

/// The params record the lab device fills (`vclab_contract::labctl::PARAMS_PORT`).
#[repr(C, align(8))]
struct ParamsRecord {
    len: u32,
    bytes: [u8; labctl::MAX_PARAMS_TEXT as usize],
}

/// The one params record, in the image's .bss: the text it holds is borrowed for the rest of
/// the run (the parsed command line refers to it).
struct ParamsCell(core::cell::UnsafeCell<ParamsRecord>);

// SAFETY: the guest runs one thread at CPL 3; the record is written only by the VMM (during
// the port exit) and by `Lab::params`, which runs once.
unsafe impl Sync for ParamsCell {}

static PARAMS: ParamsCell = ParamsCell(core::cell::UnsafeCell::new(ParamsRecord {
    len: 0,
    bytes: [0; labctl::MAX_PARAMS_TEXT as usize],
}));
static PARAMS_ASKED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

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
            device: port::inb(labctl::READY_PORT) == labctl::PRESENCE_VALUE,
        }
    }

    /// Whether the lab control device is present.
    pub fn has_device(&self) -> bool {
        self.device
    }

    /// Asks the lab device for the after-restore parameters (one port exit, after the ready
    /// signal): `None` on a cold boot, without the device, or on a second call; else the text
    /// that overrides the command line (`vclab.*` words; the guest was snapshotted at ready).
    pub fn params(&self) -> Option<&'static [u8]> {
        if !self.device || PARAMS_ASKED.swap(true, core::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        let record = PARAMS.0.get();
        // The image is identity-mapped below 4 GiB: the record's address is guest-physical.
        port::outl(
            labctl::PARAMS_PORT,
            u32::try_from(record as usize).unwrap_or(0),
        );
        // SAFETY: `record` points at the static record, which only the VMM wrote (in the port
        // exit just made); this is the only reference to it, taken once (PARAMS_ASKED), and it
        // is never written again, so a shared borrow for the rest of the run is sound.
        let record: &'static ParamsRecord = unsafe { &*record };
        let len = core::hint::black_box(record.len) as usize;
        let text = record.bytes.get(..len).unwrap_or(&record.bytes);
        (!text.is_empty()).then_some(text)
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
        port::outl(labctl::LINE_PORT, u32::try_from(addr).unwrap_or(0));
        // Keep the record alive (and written) until the VMM has read it.
        core::hint::black_box(&record);
    }

    /// Ends the VM with `status`: lab device (the lab VMM ends here), QEMU's isa-debug-exit
    /// (QEMU ends with the status), Cloud Hypervisor's ACPI S5 (CH ends, status 0), then the
    /// i8042 reset (Firecracker ends; the others would reboot). Each VMM stops at its own port,
    /// so the ports before it are ignored by it.
    pub fn exit(&self, status: u8) -> ! {
        if self.device {
            port::outb(labctl::EXIT_PORT, status);
        }
        port::outb(labctl::QEMU_DEBUG_EXIT_PORT, status);
        port::outb(labctl::CH_ACPI_SHUTDOWN_PORT, labctl::CH_ACPI_S5);
        port::outb(labctl::I8042_COMMAND_PORT, labctl::I8042_RESET);
        loop {
            core::hint::spin_loop();
        }
    }
}

/// Writes raw bytes to the UART (no newline added).
pub fn uart(bytes: &[u8]) {
    port::outsb(labctl::COM1_BASE, bytes);
}
