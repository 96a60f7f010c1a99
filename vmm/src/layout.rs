//! Guest-physical memory layout. Only addresses and sizes live here, each with
//! the reason it is where it is. Sources: the Linux x86 boot protocol
//! (Documentation/arch/x86/boot.rst), the Intel MultiProcessor Specification
//! 1.4 and the Intel SDM vol. 3A (paging, descriptor tables). The I/O ports the
//! guests rely on are defined once in `vclab_contract::labctl`.

use vclab_contract::labctl;

/// The GDT the vCPU is entered with (4 entries × 8 bytes), in the first page,
/// above the real-mode interrupt vector table (0..0x400) and the BIOS data area.
pub const GDT_START: u64 = 0x500;
/// An empty IDT (limit 0): any exception before the guest loads its own IDT
/// becomes a triple fault, which ends the VM with `triple-fault`.
pub const IDT_START: u64 = 0x520;
/// The zero page (`struct boot_params`), passed to the kernel in RSI.
pub const ZERO_PAGE_START: u64 = 0x7000;
/// Initial stack pointer of the boot vCPU (grows down, below the page tables).
pub const BOOT_STACK_POINTER: u64 = 0x8ff0;
/// Level-4 page map (PML4) of the identity mapping.
pub const PML4_START: u64 = 0x9000;
/// Page-directory-pointer table of the identity mapping.
pub const PDPTE_START: u64 = 0xa000;
/// First of the page directories (2 MiB pages) of the identity mapping.
pub const PDE_START: u64 = 0xb000;
/// How many page directories follow `PDE_START`: 4 × 1 GiB identity-map the
/// first 4 GiB of guest-physical space, which covers all of low memory.
pub const PDE_COUNT: u64 = 4;
/// The kernel command line (NUL-terminated).
pub const CMDLINE_START: u64 = 0x20000;
/// Room for the command line; the Linux boot protocol default `cmdline_size`.
pub const CMDLINE_MAX_SIZE: usize = 2048;
/// Start of the extended BIOS data area: the MP floating pointer and MP
/// configuration table are written here, where Linux scans for them (the last
/// KiB of base memory). RAM in the e820 map ends here.
pub const EBDA_START: u64 = 0x9fc00;
/// End of the MP table area (the start of the legacy VGA hole).
pub const EBDA_END: u64 = 0xa0000;
/// Where high memory starts: ELF kernels and the bzImage protected-mode code
/// are loaded at or above this address (1 MiB).
pub const HIMEM_START: u64 = 0x10_0000;
/// Start of the 32-bit MMIO gap (3.25 GiB): no RAM between here and 4 GiB.
pub const MMIO_GAP_START: u64 = 0xd000_0000;
/// End of the 32-bit MMIO gap (4 GiB): RAM above the gap continues here.
pub const MMIO_GAP_END: u64 = 0x1_0000_0000;
/// The first virtio-mmio device's registers, at the bottom of the MMIO gap (as Firecracker
/// places its own); device `n` is at `VIRTIO_MMIO_BASE + n * VIRTIO_MMIO_SIZE`.
pub const VIRTIO_MMIO_BASE: u64 = MMIO_GAP_START;
/// One page of registers and config space per virtio-mmio device.
pub const VIRTIO_MMIO_SIZE: u64 = 0x1000;
/// The first virtio-mmio device's interrupt line (IOAPIC pin / GSI): the ISA lines from 5
/// up are free (COM1 has 4, the PIT 0); device `n` gets `VIRTIO_IRQ_BASE + n`.
pub const VIRTIO_IRQ_BASE: u32 = 5;
/// How many virtio-mmio devices fit: IOAPIC pins 5..=23.
pub const VIRTIO_MAX_DEVICES: usize = 19;
/// The KVM TSS (3 pages) sits inside the MMIO gap, where no RAM is.
pub const KVM_TSS_ADDRESS: u64 = 0xfffb_d000;
/// Default physical address of the IOAPIC (MP table entry).
pub const IOAPIC_ADDR: u32 = 0xfec0_0000;
/// Default physical address of the local APIC (MP table header).
pub const APIC_ADDR: u32 = 0xfee0_0000;
/// Highest address an initrd may end at when the kernel does not say
/// (`initrd_addr_max` of boot protocol ≥ 2.03 kernels on x86-64).
pub const INITRD_ADDR_MAX_DEFAULT: u64 = 0x7fff_ffff;
/// The 8250 UART (COM1) I/O base (the guests' contract: `vclab_contract::labctl`).
pub const SERIAL_PORT_BASE: u16 = labctl::COM1_BASE;
/// COM1's ISA interrupt line.
pub const SERIAL_IRQ: u32 = 4;
/// The i8042 data port (reads return "no key").
pub const I8042_DATA_PORT: u16 = 0x60;
/// Port 0x61 (PC speaker / NMI status); reads return a harmless 0.
pub const PORT_61: u16 = 0x61;
/// The i8042 command port: writing 0xFE (pulse reset line) resets the machine.
pub const I8042_COMMAND_PORT: u16 = labctl::I8042_COMMAND_PORT;
/// The CMOS/RTC index port. Writes select a register; they are accepted.
pub const CMOS_INDEX_PORT: u16 = 0x70;
/// The CMOS/RTC data port. Reads return 0: "update in progress" clear (an
/// all-ones read would keep Linux polling that bit), a clock at zero.
pub const CMOS_DATA_PORT: u16 = 0x71;
