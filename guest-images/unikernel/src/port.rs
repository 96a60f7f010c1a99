//! Port I/O from CPL 3. Each helper emits exactly one of the instruction forms the shim's #GP
//! handler decodes (`shim.s`): on kvm_pvm port I/O at CPL 3 faults even with IOPL 3 and the shim
//! performs it; on hardware KVM it runs directly.

use core::arch::asm;

/// Writes a byte (`out dx, al`).
pub fn outb(port: u16, value: u8) {
    // SAFETY: port I/O touches no memory of this program; the devices are the VMM's.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    }
}

/// Writes a 32-bit value (`out dx, eax`). The VMM may read guest memory `value` points at, so
/// this is not `nomem`: stores before it are done first.
pub fn outl(port: u16, value: u32) {
    // SAFETY: port I/O; the VMM only reads guest memory the caller prepared.
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") value, options(nostack, preserves_flags))
    }
}

/// Reads a byte (`in al, dx`).
pub fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: port I/O touches no memory of this program.
    unsafe {
        asm!("in al, dx", out("al") value, in("dx") port, options(nomem, nostack, preserves_flags))
    }
    value
}

/// Writes `bytes` to one port, byte after byte (`rep outsb`).
pub fn outsb(port: u16, bytes: &[u8]) {
    // SAFETY: reads exactly `bytes.len()` bytes from `bytes`; DF is clear per the ABI.
    unsafe {
        asm!(
            "rep outsb",
            in("dx") port,
            inout("rsi") bytes.as_ptr() => _,
            inout("rcx") bytes.len() => _,
            options(readonly, nostack, preserves_flags)
        )
    }
}

/// Asks the shim to idle: `hlt` at CPL 3 faults, and the shim halts in ring 0 with interrupts
/// enabled for ever.
pub fn idle() -> ! {
    // SAFETY: the shim's #GP handler turns this `hlt` into its ring-0 idle loop; it never returns.
    unsafe { asm!("hlt", options(noreturn, nomem, nostack)) }
}
