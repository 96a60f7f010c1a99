//! The VMM's attack surface in numbers, for the isolation probe of `vclab compare`: how many
//! syscalls each thread's filter allows, how many exit kinds the exit handler distinguishes, and
//! how many device registers a guest reaches. The registers are counted by asking the real
//! exit handler (`exit::handle_exit`) about every I/O port and a sample of MMIO addresses and
//! seeing which ones a device claims, so the count follows the devices as they change.

use std::time::Instant;

use crate::devices::i8042::I8042;
use crate::devices::labctl::LabCtl;
use crate::devices::serial::{self, IrqTrigger};
use crate::devices::{Clock, Devices, Sink, Unclaimed};
use crate::exit::{handle_exit, ExitEvent, Policy};

/// The counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Surface {
    /// Syscalls a vCPU thread's filter allows.
    pub vcpu_syscalls: usize,
    /// Syscalls the main thread's filter allows when vCPU threads run.
    pub main_syscalls: usize,
    /// Syscalls the main thread of a 1-vCPU VM (which runs its vCPU) may make.
    pub single_vcpu_syscalls: usize,
    /// Exit kinds the handler distinguishes (every other KVM exit is one `other` kind that
    /// re-enters the guest).
    pub exit_kinds: usize,
    /// I/O ports a device claims (read or write).
    pub port_registers: usize,
    /// MMIO addresses a device claims, of every 4 KiB page below 4 GiB.
    pub mmio_registers: usize,
}

/// The kind names of one made-up exit of each variant. The match is exhaustive: a new variant
/// of `ExitEvent` does not compile until it is counted here.
fn exit_kind_names() -> Vec<&'static str> {
    let mut byte = [0u8; 1];
    let mut names = Vec::new();
    for i in 0..11 {
        let event = match i {
            0 => ExitEvent::IoIn {
                port: 0,
                data: &mut byte,
            },
            1 => ExitEvent::IoOut {
                port: 0,
                data: &[0],
            },
            2 => ExitEvent::MmioRead {
                addr: 0,
                data: &mut byte,
            },
            3 => ExitEvent::MmioWrite {
                addr: 0,
                data: &[0],
            },
            4 => ExitEvent::Hlt,
            5 => ExitEvent::Shutdown,
            6 => ExitEvent::InternalError { suberror: 0 },
            7 => ExitEvent::FailEntry { reason: 0 },
            8 => ExitEvent::SystemEvent { kind: 0 },
            9 => ExitEvent::Interrupted,
            _ => ExitEvent::Other("other"),
        };
        match event {
            ExitEvent::IoIn { .. }
            | ExitEvent::IoOut { .. }
            | ExitEvent::MmioRead { .. }
            | ExitEvent::MmioWrite { .. }
            | ExitEvent::Hlt
            | ExitEvent::Shutdown
            | ExitEvent::InternalError { .. }
            | ExitEvent::FailEntry { .. }
            | ExitEvent::SystemEvent { .. }
            | ExitEvent::Interrupted
            | ExitEvent::Other(_) => names.push(event.kind()),
        }
    }
    names.sort_unstable();
    names.dedup();
    names
}

/// A VM's devices as `boot.rs` builds them, with no guest memory and output dropped.
fn devices() -> Devices {
    let clock = Clock::new(Instant::now());
    Devices {
        serial: serial::console(IrqTrigger(None), Sink::Off, clock),
        i8042: I8042::default(),
        labctl: LabCtl::new(None, Sink::Off, clock),
        mmio: Default::default(),
        unclaimed: Unclaimed::default(),
        exits: Default::default(),
        clock,
    }
}

/// I/O ports the exit handler gives to a device, for a read or a write.
fn claimed_ports() -> usize {
    let mut d = devices();
    let policy = Policy::default();
    (0..=u16::MAX)
        .filter(|&port| {
            let before = d.unclaimed.clone();
            let mut byte = [0u8; 1];
            handle_exit(
                ExitEvent::IoIn {
                    port,
                    data: &mut byte,
                },
                &mut d,
                policy,
            );
            handle_exit(ExitEvent::IoOut { port, data: &[0] }, &mut d, policy);
            // Claimed when a device took the read or the write.
            d.unclaimed.pio_reads == before.pio_reads || d.unclaimed.pio_writes == before.pio_writes
        })
        .count()
}

/// MMIO addresses (one per 4 KiB page below 4 GiB) the exit handler gives to a device.
fn claimed_mmio() -> usize {
    let mut d = devices();
    let policy = Policy::default();
    (0..(1u64 << 20))
        .filter(|page| {
            let addr = page << 12;
            let before = d.unclaimed.clone();
            let mut word = [0u8; 4];
            handle_exit(
                ExitEvent::MmioRead {
                    addr,
                    data: &mut word,
                },
                &mut d,
                policy,
            );
            handle_exit(
                ExitEvent::MmioWrite {
                    addr,
                    data: &[0; 4],
                },
                &mut d,
                policy,
            );
            d.unclaimed.mmio_reads == before.mmio_reads
                || d.unclaimed.mmio_writes == before.mmio_writes
        })
        .count()
}

/// Counts the surface (about 0.1 s: it asks the exit handler about every port and page).
pub fn surface() -> Result<Surface, super::Error> {
    let (vcpu, main, single) = super::allowed_counts()?;
    Ok(Surface {
        vcpu_syscalls: vcpu,
        main_syscalls: main,
        single_vcpu_syscalls: single,
        exit_kinds: exit_kind_names().len(),
        port_registers: claimed_ports(),
        mmio_registers: claimed_mmio(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout;

    #[test]
    fn the_devices_ports_are_claimed_and_unknown_ones_are_not() {
        let mut d = devices();
        let claimed = |d: &mut Devices, port: u16| {
            let before = d.unclaimed.pio_reads;
            let mut byte = [0u8; 1];
            handle_exit(
                ExitEvent::IoIn {
                    port,
                    data: &mut byte,
                },
                d,
                Policy::default(),
            );
            d.unclaimed.pio_reads == before
        };
        assert!(claimed(&mut d, layout::SERIAL_PORT_BASE));
        assert!(claimed(&mut d, layout::I8042_COMMAND_PORT));
        assert!(claimed(&mut d, 0x3f0), "the lab device");
        assert!(!claimed(&mut d, 0x1234));
        let s = surface().unwrap();
        let (com1, i8042, lab) = (8, 2, 3);
        assert!(s.port_registers >= com1 + i8042 + lab, "{s:?}");
        assert!(s.port_registers < 64, "{s:?}");
        assert_eq!(s.mmio_registers, 0, "no MMIO device: {s:?}");
        assert!(s.exit_kinds >= 10, "{s:?}");
    }
}
