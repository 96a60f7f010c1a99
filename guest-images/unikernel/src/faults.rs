//! Deliberate misbehaviour for the VMM's tests (`vclab.fault=`, DESIGN.md).

use core::fmt::Write as _;

use vclab_workload::cmdline::Fault;

use crate::bootinfo::{BootInfo, IDENTITY_END};
use crate::lab::{self, Lab};
use crate::line::LineBuf;
use crate::port;
use crate::shim;

/// Unknown ports `ports` touches: nothing in the lab's VMM (or QEMU microvm) lives there.
const UNKNOWN_PORTS: [u16; 9] = [
    0x2f0, 0x2f1, 0x2f2, 0x2f3, 0x2f4, 0x2f5, 0x2f6, 0x2f7, 0x500,
];

/// The stride of `mmio`: one word read and written per 2 MiB (one 4 KiB page of each large
/// page): every such page from RAM's end to 4 GiB, about 2,000 on a 128 MiB guest, each access
/// a VM exit (0.25 ms on kvm_pvm).
const MMIO_STRIDE: u64 = 2 << 20;
/// The in-kernel LAPIC and IOAPIC of KVM (and the IOAPIC's neighbours), 0xfec0_0000 –
/// 0xff00_0000: read only, never written (writes there program interrupts; not the VMM's).
const IRQCHIP_WINDOW: (u64, u64) = (0xfec0_0000, 0xff00_0000);

/// Runs `fault`; only `ports` and `mmio` return (then the caller exits normally).
pub fn run(fault: Fault, lab: &Lab, boot: &BootInfo) {
    match fault {
        Fault::Triple => triple(),
        Fault::Hang => loop {
            core::hint::spin_loop();
        },
        Fault::Flood => loop {
            lab::uart(b"vclab-unikernel: flood flood flood flood flood flood flood flood\n");
        },
        Fault::Ports => ports(lab),
        Fault::Mmio => mmio(lab, boot),
    }
}

/// Triple-faults the vCPU: clears the shim's IDT (all RAM is writable at CPL 3), then raises
/// #UD. Its gate is not present (#NP), neither is #NP's (#DF), nor #DF's: shutdown.
fn triple() -> ! {
    let idt = core::ptr::addr_of_mut!(shim::shim_idt).cast::<u8>();
    for i in 0..shim::IDT_LEN {
        // SAFETY: writes inside the shim's IDT, which nothing else uses at CPL 3; the VM is
        // meant to die on the next exception.
        unsafe { idt.add(i).write_volatile(0) };
    }
    // SAFETY: ud2 raises #UD; with no IDT this ends the VM, nothing returns.
    unsafe { core::arch::asm!("ud2", options(noreturn, nomem, nostack)) }
}

/// Reads and writes unknown ports, then reports what it read:
/// `{"fault":"ports","read":[255,...]}`.
fn ports(lab: &Lab) {
    let mut line = LineBuf::new();
    let _ = line.write_str("{\"fault\":\"ports\",\"read\":[");
    for (i, &p) in UNKNOWN_PORTS.iter().enumerate() {
        let value = port::inb(p);
        port::outb(p, 0x5a);
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(line, "{sep}{value}");
    }
    let _ = line.write_str("]}");
    lab.line(line.as_bytes());
}

/// Reads, then writes, one 32-bit word at the start of every [`MMIO_STRIDE`] page above RAM up
/// to 4 GiB (guest-physical = virtual), where no RAM and no device of the lab's VMM lives; then
/// reports `{"fault":"mmio","from":A,"pages":N,"all_ones":M,"written":W}` (M: reads that came
/// back all-ones, as the VMM answers unclaimed MMIO).
fn mmio(lab: &Lab, boot: &BootInfo) {
    let top = boot.ram_top_below(IDENTITY_END);
    let from = top.div_ceil(MMIO_STRIDE) * MMIO_STRIDE;
    let (mut pages, mut all_ones, mut written) = (0u64, 0u64, 0u64);
    let mut addr = from;
    while addr < IDENTITY_END {
        let word = addr as *mut u32;
        // SAFETY: `addr` is identity-mapped (shim page tables) and holds no RAM of this guest:
        // the access is a VM exit the VMM answers, nothing of this program is read.
        let value = unsafe { word.read_volatile() };
        if value == u32::MAX {
            all_ones += 1;
        }
        if !(IRQCHIP_WINDOW.0..IRQCHIP_WINDOW.1).contains(&addr) {
            // SAFETY: as above; the write goes to the VMM (which drops it), no RAM changes.
            unsafe { word.write_volatile(0x5a5a_5a5a) };
            written += 1;
        }
        pages += 1;
        addr += MMIO_STRIDE;
    }
    let mut line = LineBuf::new();
    let _ = write!(
        line,
        "{{\"fault\":\"mmio\",\"from\":{from},\"pages\":{pages},\"all_ones\":{all_ones},\"written\":{written}}}"
    );
    lab.line(line.as_bytes());
}
