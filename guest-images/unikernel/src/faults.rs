//! Deliberate misbehaviour for the VMM's tests (`vclab.fault=`, DESIGN.md).

use core::fmt::Write as _;

use vclab_workload::cmdline::Fault;

use crate::lab::{self, Lab};
use crate::line::LineBuf;
use crate::port;
use crate::shim;

/// Unknown ports `ports` touches: nothing in the lab's VMM (or QEMU microvm) lives there.
const UNKNOWN_PORTS: [u16; 9] = [
    0x2f0, 0x2f1, 0x2f2, 0x2f3, 0x2f4, 0x2f5, 0x2f6, 0x2f7, 0x500,
];

/// Runs `fault`; only `ports` returns (then the caller exits normally).
pub fn run(fault: Fault, lab: &Lab) {
    match fault {
        Fault::Triple => triple(),
        Fault::Hang => loop {
            core::hint::spin_loop();
        },
        Fault::Flood => loop {
            lab::uart(b"vclab-unikernel: flood flood flood flood flood flood flood flood\n");
        },
        Fault::Ports => ports(lab),
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
