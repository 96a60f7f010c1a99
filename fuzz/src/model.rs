//! The device model a `vmm_exit` script is played against: COM1, the i8042 and the lab device
//! reading line records from a small guest memory with a hole in it, driven through
//! `vclab_vmm::exit::handle_exit`, checking what must hold after every exit.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use vclab_vmm::devices::i8042::I8042;
use vclab_vmm::devices::labctl::LabCtl;
use vclab_vmm::devices::serial::{console, IrqTrigger};
use vclab_vmm::devices::{Clock, Devices, Sink, Unclaimed};
use vclab_vmm::exit::{handle_exit, Action, ExitEvent, Policy};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::exits::{decode, Op, FLAG_HIDE_LABCTL, FLAG_STOP_AT_INIT, FLAG_WATCH, MAX_ACCESS};

/// The text watched for with [`FLAG_WATCH`].
pub const WATCH_TEXT: &str = "ready";
/// The guest memory: two 64 KiB regions with a 64 KiB hole between them.
pub const REGIONS: [(u64, usize); 2] = [(0, 0x1_0000), (0x2_0000, 0x1_0000)];
/// The most exits played from one input.
pub const MAX_EXITS: usize = 8192;

/// What a played script produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Exits handled.
    pub exits: u64,
    /// Stop actions returned (the VM would have ended at the first).
    pub stops: u64,
    /// Lines the lab device accepted.
    pub lines: usize,
    /// Bytes that reached the console sink.
    pub console_bytes: usize,
}

/// A fresh device model over a fresh guest memory.
fn devices(flags: u8) -> (Devices, GuestMemoryMmap, Arc<Mutex<Vec<u8>>>) {
    let clock = Clock::new(Instant::now());
    let ranges = REGIONS.map(|(a, n)| (GuestAddress(a), n));
    let mem = GuestMemoryMmap::from_ranges(&ranges).expect("mmap of 128 KiB of guest memory");
    let console_buf = Arc::new(Mutex::new(Vec::new()));
    let mut serial = console(IrqTrigger(None), Sink::Memory(console_buf.clone()), clock);
    if flags & FLAG_WATCH != 0 {
        serial.writer_mut().watch = Some(WATCH_TEXT.to_string());
    }
    let mut labctl = LabCtl::new(Some(mem.clone()), Sink::Off, clock);
    labctl.present = flags & FLAG_HIDE_LABCTL == 0;
    let devices = Devices {
        serial,
        i8042: I8042::default(),
        labctl,
        mmio: Default::default(),
        unclaimed: Unclaimed::default(),
        exits: Default::default(),
        clock,
    };
    (devices, mem, console_buf)
}

/// Handles one exit and checks what must hold for it.
fn exit(event: ExitEvent<'_>, d: &mut Devices, policy: Policy, out: &mut Outcome) {
    let is_read = matches!(event, ExitEvent::IoIn { .. } | ExitEvent::MmioRead { .. });
    let lines_before = d.labctl.lines.len();
    let action = handle_exit(event, d, policy);
    out.exits += 1;
    if action != Action::Continue {
        assert!(!is_read, "a read ended the VM: {action:?}");
        out.stops += 1;
    }
    assert!(
        d.labctl.lines.len() <= lines_before + 1,
        "one exit, one line at most"
    );
    if let Some(line) = d.labctl.lines.last() {
        assert!(line.len() <= 3 * 4096, "line longer than a record can hold");
    }
}

/// Plays `data` as a script; panics when a property is broken.
pub fn play(data: &[u8]) -> Outcome {
    let script = decode(data);
    let (mut d, mem, console_buf) = devices(script.flags);
    let policy = Policy {
        stop_at_init_handoff: script.flags & FLAG_STOP_AT_INIT != 0,
    };
    let mut out = Outcome::default();
    let mut budget = MAX_EXITS;
    for op in &script.ops {
        let mut buf = [0u8; MAX_ACCESS as usize];
        let event = match op {
            Op::In { port, len } => ExitEvent::IoIn {
                port: *port,
                data: &mut buf[..usize::from(*len)],
            },
            Op::Out { port, data } => ExitEvent::IoOut { port: *port, data },
            Op::MmioRead { addr, len } => ExitEvent::MmioRead {
                addr: *addr,
                data: &mut buf[..usize::from(*len)],
            },
            Op::MmioWrite { addr, data } => ExitEvent::MmioWrite { addr: *addr, data },
            Op::Hlt => ExitEvent::Hlt,
            Op::Shutdown => ExitEvent::Shutdown,
            Op::InternalError(s) => ExitEvent::InternalError { suberror: *s },
            Op::FailEntry(r) => ExitEvent::FailEntry { reason: *r },
            Op::SystemEvent(k) => ExitEvent::SystemEvent { kind: *k },
            Op::Interrupted => ExitEvent::Interrupted,
            Op::Other => ExitEvent::Other("fuzz"),
            Op::Poke { addr, data } => {
                // A write outside guest memory is the guest's own fault: ignored.
                let _ = mem.write_slice(data, GuestAddress(u64::from(*addr)));
                continue;
            }
            Op::OutString { port, data } => {
                for b in data.iter().take(budget) {
                    let one = [*b];
                    exit(
                        ExitEvent::IoOut {
                            port: *port,
                            data: &one,
                        },
                        &mut d,
                        policy,
                        &mut out,
                    );
                }
                budget = budget.saturating_sub(data.len());
                if budget == 0 {
                    break;
                }
                continue;
            }
        };
        exit(event, &mut d, policy, &mut out);
        budget -= 1;
        if budget == 0 {
            break;
        }
    }
    assert_eq!(
        d.exits.values().sum::<u64>(),
        out.exits,
        "every exit is counted once"
    );
    d.serial.writer_mut().finish();
    out.lines = d.labctl.lines.len();
    out.console_bytes = console_buf.lock().map(|b| b.len()).unwrap_or(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exits::{encode, Script};

    #[test]
    fn empty_input_and_every_access_width() {
        assert_eq!(play(b"").exits, 0);
        // An access of every width, 0 included (a UART read of 0 bytes used to panic).
        for len in 0..MAX_ACCESS {
            for port in [0x3f8, 0x3f0, 0x64, 0x1234] {
                let s = Script {
                    flags: 0,
                    ops: vec![Op::In { port, len }, Op::MmioRead { addr: 0, len }],
                };
                assert_eq!(play(&encode(&s)).exits, 2);
            }
        }
    }
}
