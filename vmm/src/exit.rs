//! The VM-exit handler: a pure function of the exit and the devices, so it
//! can be fed made-up exits in tests. The vCPU loop translates each
//! `VcpuExit` into an [`ExitEvent`] and obeys the returned [`Action`].

use kvm_bindings::{KVM_SYSTEM_EVENT_RESET, KVM_SYSTEM_EVENT_SHUTDOWN};
use vclab_contract::ExitReason;

use crate::devices::labctl::Effect;
use crate::devices::Devices;
use crate::layout;

/// One VM exit, as the handler sees it.
#[derive(Debug)]
pub enum ExitEvent<'a> {
    /// Port read; fill `data`.
    IoIn {
        /// The port.
        port: u16,
        /// The bytes to fill (1, 2 or 4).
        data: &'a mut [u8],
    },
    /// Port write.
    IoOut {
        /// The port.
        port: u16,
        /// The bytes written.
        data: &'a [u8],
    },
    /// MMIO read; fill `data`.
    MmioRead {
        /// Guest-physical address.
        addr: u64,
        /// The bytes to fill.
        data: &'a mut [u8],
    },
    /// MMIO write.
    MmioWrite {
        /// Guest-physical address.
        addr: u64,
        /// The bytes written.
        data: &'a [u8],
    },
    /// HLT reached userspace (not expected with the in-kernel LAPIC).
    Hlt,
    /// Triple fault or shutdown.
    Shutdown,
    /// KVM could not handle something (on kvm_pvm: emulation failure).
    InternalError {
        /// KVM's suberror code.
        suberror: u32,
    },
    /// VM entry failed.
    FailEntry {
        /// Hardware reason.
        reason: u64,
    },
    /// A system event (reset, shutdown, crash).
    SystemEvent {
        /// KVM_SYSTEM_EVENT_* type.
        kind: u32,
    },
    /// Interrupted by a signal (the kick).
    Interrupted,
    /// Anything else.
    Other(&'static str),
}

impl ExitEvent<'_> {
    /// The kind name used in the `vm_exits` counts.
    pub fn kind(&self) -> &'static str {
        match self {
            ExitEvent::IoIn { .. } => "io-in",
            ExitEvent::IoOut { .. } => "io-out",
            ExitEvent::MmioRead { .. } => "mmio-read",
            ExitEvent::MmioWrite { .. } => "mmio-write",
            ExitEvent::Hlt => "hlt",
            ExitEvent::Shutdown => "shutdown",
            ExitEvent::InternalError { .. } => "internal-error",
            ExitEvent::FailEntry { .. } => "fail-entry",
            ExitEvent::SystemEvent { .. } => "system-event",
            ExitEvent::Interrupted => "interrupted",
            ExitEvent::Other(name) => name,
        }
    }
}

/// Why a VM ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The guest wrote its status to the exit port.
    GuestExit(u8),
    /// The guest reset the machine through the i8042.
    Reset,
    /// A triple fault (KVM_EXIT_SHUTDOWN).
    TripleFault,
    /// KVM reported an internal error or emulation failure.
    InternalError(String),
    /// Linux panicked (seen on the console) and then reset.
    GuestPanic(Vec<String>),
    /// Stopped at Linux's init handoff (`--stop-at init-handoff`).
    InitHandoff,
    /// A console line contained the watched text (`--stop-at-console`).
    ConsoleMatch,
    /// `--timeout` ran out.
    Timeout,
    /// The VMM received this stop signal (SIGINT or SIGTERM).
    Signal(i32),
}

impl EndReason {
    /// The end a signal taken by a vCPU's thread stands for: its timeout
    /// timer, or a stop signal.
    pub fn from_signal(signo: i32) -> EndReason {
        if signo == crate::signals::timer() {
            EndReason::Timeout
        } else {
            EndReason::Signal(signo)
        }
    }

    /// The `exit_reason` in the report.
    pub fn reason(&self) -> ExitReason {
        match self {
            EndReason::GuestExit(_) => ExitReason::GuestExit,
            EndReason::Reset => ExitReason::Reset,
            EndReason::TripleFault => ExitReason::TripleFault,
            EndReason::InternalError(_) => ExitReason::InternalError,
            EndReason::GuestPanic(_) => ExitReason::GuestPanic,
            EndReason::InitHandoff => ExitReason::InitHandoff,
            EndReason::ConsoleMatch => ExitReason::ConsoleMatch,
            EndReason::Timeout => ExitReason::Timeout,
            // `vclab-contract` has no reason of its own for this yet: reported as
            // `timeout` (stopped from outside before the guest ended) with
            // `stop_signal` set in the report.
            EndReason::Signal(_) => ExitReason::Signal,
        }
    }
}

/// What the vCPU loop does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Re-enter the guest.
    Continue,
    /// The guest's ready signal with `--snapshot-at ready`: this vCPU (the VM's only one)
    /// takes the snapshot, then re-enters the guest.
    Snapshot,
    /// End the VM.
    Stop(EndReason),
}

/// Rules the handler follows that come from the configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// End the VM at Linux's init handoff.
    pub stop_at_init_handoff: bool,
}

/// The last of COM1's 8 UART registers.
const SERIAL_PORT_LAST: u16 = layout::SERIAL_PORT_BASE + 7;
/// Port 0x80: the POST/io_delay port Linux writes to for short delays.
const POST_PORT: u16 = 0x80;

/// Handles one exit.
pub fn handle_exit(exit: ExitEvent<'_>, devices: &mut Devices, policy: Policy) -> Action {
    *devices.exits.entry(exit.kind()).or_insert(0) += 1;
    match exit {
        ExitEvent::IoIn { port, data } => {
            io_in(port, data, devices);
            Action::Continue
        }
        ExitEvent::IoOut { port, data } => io_out(port, data, devices, policy),
        ExitEvent::MmioRead { addr, data } => {
            if devices.mmio.read(addr, data) {
                return Action::Continue;
            }
            devices.unclaimed.mmio_reads += 1;
            log::debug!("unclaimed MMIO read of {} bytes at {addr:#x}", data.len());
            data.fill(0xff);
            Action::Continue
        }
        ExitEvent::MmioWrite { addr, data } => {
            if devices.mmio.write(addr, data) {
                return Action::Continue;
            }
            devices.unclaimed.mmio_writes += 1;
            log::debug!("unclaimed MMIO write of {data:02x?} at {addr:#x}");
            Action::Continue
        }
        ExitEvent::Hlt | ExitEvent::Interrupted | ExitEvent::Other(_) => Action::Continue,
        ExitEvent::Shutdown => Action::Stop(after_reset(devices, EndReason::TripleFault)),
        ExitEvent::SystemEvent {
            kind: KVM_SYSTEM_EVENT_RESET | KVM_SYSTEM_EVENT_SHUTDOWN,
        } => Action::Stop(after_reset(devices, EndReason::Reset)),
        ExitEvent::SystemEvent { kind } => Action::Stop(EndReason::InternalError(format!(
            "KVM system event {kind} (guest crash)"
        ))),
        ExitEvent::InternalError { suberror } => Action::Stop(EndReason::InternalError(format!(
            "KVM internal error, suberror {suberror}{}",
            if suberror == 1 {
                " (emulation failure: the guest ran an instruction KVM cannot emulate)"
            } else {
                ""
            }
        ))),
        ExitEvent::FailEntry { reason } => Action::Stop(EndReason::InternalError(format!(
            "VM entry failed, hardware reason {reason:#x}"
        ))),
    }
}

/// A reset or triple fault after a Linux panic is the panic's doing.
fn after_reset(devices: &Devices, reason: EndReason) -> EndReason {
    let sink = devices.serial.writer();
    if sink.milestones.panic_ns.is_some() {
        EndReason::GuestPanic(sink.last_lines())
    } else {
        reason
    }
}

fn io_in(port: u16, data: &mut [u8], devices: &mut Devices) {
    match port {
        p @ layout::SERIAL_PORT_BASE..=SERIAL_PORT_LAST => {
            let value = devices.serial.read((p - layout::SERIAL_PORT_BASE) as u8);
            data.fill(0);
            // KVM gives 1, 2 or 4 bytes; an empty access reads nothing (found by fuzzing).
            if let Some(first) = data.first_mut() {
                *first = value;
            }
        }
        p if devices.labctl.claims(p) => devices.labctl.read(p, data),
        layout::I8042_DATA_PORT | layout::I8042_COMMAND_PORT => {
            data.fill(devices.i8042.read(port));
        }
        layout::PORT_61 | layout::CMOS_INDEX_PORT | layout::CMOS_DATA_PORT => data.fill(0),
        _ => {
            devices.unclaimed.pio_reads += 1;
            log::debug!("unclaimed port read of {} bytes at {port:#x}", data.len());
            data.fill(0xff);
        }
    }
}

fn io_out(port: u16, data: &[u8], devices: &mut Devices, policy: Policy) -> Action {
    let first = data.first().copied().unwrap_or(0);
    match port {
        p @ layout::SERIAL_PORT_BASE..=SERIAL_PORT_LAST => {
            let before = devices.serial.writer().milestones;
            if let Err(e) = devices
                .serial
                .write((p - layout::SERIAL_PORT_BASE) as u8, first)
            {
                log::debug!("serial write failed: {e:?}");
            }
            let now = devices.serial.writer().milestones;
            if now.watch_ns.is_some() && before.watch_ns.is_none() {
                return Action::Stop(EndReason::ConsoleMatch);
            }
            if policy.stop_at_init_handoff
                && now.init_handoff_ns.is_some()
                && before.init_handoff_ns.is_none()
            {
                return Action::Stop(EndReason::InitHandoff);
            }
            Action::Continue
        }
        p if devices.labctl.claims(p) => match devices.labctl.write(p, data) {
            Effect::Exit(status) => Action::Stop(EndReason::GuestExit(status)),
            Effect::Pause => Action::Snapshot,
            Effect::None => Action::Continue,
        },
        layout::I8042_DATA_PORT | layout::I8042_COMMAND_PORT => {
            if devices.i8042.write(port, first) {
                Action::Stop(after_reset(devices, EndReason::Reset))
            } else {
                Action::Continue
            }
        }
        layout::PORT_61 | layout::CMOS_INDEX_PORT | layout::CMOS_DATA_PORT | POST_PORT => {
            Action::Continue
        }
        _ => {
            devices.unclaimed.pio_writes += 1;
            log::debug!("unclaimed port write of {data:02x?} at {port:#x}");
            Action::Continue
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::serial::{console, IrqTrigger};
    use crate::devices::{i8042::I8042, labctl::LabCtl, Clock, Sink, Unclaimed};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;
    use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

    struct Fixture {
        devices: Devices,
        console: Arc<Mutex<Vec<u8>>>,
        lines: Arc<Mutex<Vec<u8>>>,
        mem: GuestMemoryMmap,
    }

    fn fixture() -> Fixture {
        let clock = Clock::new(Instant::now());
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        let console_buf = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let devices = Devices {
            serial: console(IrqTrigger(None), Sink::Memory(console_buf.clone()), clock),
            i8042: I8042::default(),
            labctl: LabCtl::new(Some(mem.clone()), Sink::Memory(lines.clone()), clock),
            mmio: Default::default(),
            unclaimed: Unclaimed::default(),
            exits: Default::default(),
            clock,
        };
        Fixture {
            devices,
            console: console_buf,
            lines,
            mem,
        }
    }

    fn out(d: &mut Devices, port: u16, data: &[u8]) -> Action {
        handle_exit(ExitEvent::IoOut { port, data }, d, Policy::default())
    }

    fn inb(d: &mut Devices, port: u16, len: usize) -> Vec<u8> {
        let mut data = vec![0u8; len];
        assert_eq!(
            handle_exit(
                ExitEvent::IoIn {
                    port,
                    data: &mut data
                },
                d,
                Policy::default()
            ),
            Action::Continue
        );
        data
    }

    #[test]
    fn ready_marker_and_signature() {
        let mut f = fixture();
        assert_eq!(inb(&mut f.devices, 0x3f0, 1), vec![0x56]);
        assert_eq!(out(&mut f.devices, 0x3f0, &[7]), Action::Continue);
        assert!(f.devices.labctl.ready_ns.is_none());
        assert_eq!(out(&mut f.devices, 0x3f0, &[123]), Action::Continue);
        let t = f.devices.labctl.ready_ns.unwrap();
        out(&mut f.devices, 0x3f0, &[123]);
        assert_eq!(f.devices.labctl.ready_ns, Some(t), "first marker wins");
    }

    #[test]
    fn first_ready_pauses_for_a_snapshot_only_when_asked() {
        let mut f = fixture();
        f.devices.labctl.snapshot_at_ready = true;
        assert_eq!(out(&mut f.devices, 0x3f0, &[7]), Action::Continue);
        assert_eq!(out(&mut f.devices, 0x3f0, &[123]), Action::Snapshot);
        assert_eq!(
            out(&mut f.devices, 0x3f0, &[123]),
            Action::Continue,
            "only the first ready"
        );
        let mut g = fixture();
        assert_eq!(out(&mut g.devices, 0x3f0, &[123]), Action::Continue);
    }

    #[test]
    fn params_register_fills_the_guest_record() {
        let mut f = fixture();
        let rec = GuestAddress(0x8000);
        f.mem.write_obj(0xffff_u32, rec).unwrap();
        // Cold boot: length 0, the guest keeps its command line.
        out(&mut f.devices, 0x3f2, &0x8000u32.to_le_bytes());
        assert_eq!(f.mem.read_obj::<u32>(rec).unwrap(), 0);
        assert!(f.devices.labctl.params_ns.is_some());
        // After a restore: the text, cut to the record's room.
        f.devices.labctl.after_restore = Some("vclab.kernel=mem-bw vclab.size=4096".into());
        out(&mut f.devices, 0x3f2, &0x8000u32.to_le_bytes());
        let n = f.mem.read_obj::<u32>(rec).unwrap() as usize;
        let mut text = vec![0u8; n];
        f.mem.read_slice(&mut text, GuestAddress(0x8004)).unwrap();
        assert_eq!(text, b"vclab.kernel=mem-bw vclab.size=4096");
        f.devices.labctl.after_restore = Some("x".repeat(5000));
        out(&mut f.devices, 0x3f2, &0x8000u32.to_le_bytes());
        assert_eq!(f.mem.read_obj::<u32>(rec).unwrap(), 2048);
        // A record past the end of RAM, or a 1-byte write: refused and counted, no panic.
        let bad = f.devices.labctl.bad_records;
        out(&mut f.devices, 0x3f2, &((1u32 << 20) - 16).to_le_bytes());
        out(&mut f.devices, 0x3f2, &[1]);
        assert_eq!(f.devices.labctl.bad_records, bad + 2);
    }

    #[test]
    fn exit_port_stops_with_status() {
        let mut f = fixture();
        assert_eq!(
            out(&mut f.devices, 0x3f1, &[42]),
            Action::Stop(EndReason::GuestExit(42))
        );
        assert_eq!(f.devices.exits["io-out"], 1);
    }

    #[test]
    fn line_register_good_and_bad() {
        let mut f = fixture();
        let text = b"{\"checksum\":\"ab\"}\n";
        f.mem
            .write_obj(text.len() as u32, GuestAddress(0x5000))
            .unwrap();
        f.mem.write_slice(text, GuestAddress(0x5004)).unwrap();
        assert_eq!(
            out(&mut f.devices, 0x3f4, &0x5000u32.to_le_bytes()),
            Action::Continue
        );
        assert_eq!(
            f.devices.labctl.lines,
            vec!["{\"checksum\":\"ab\"}".to_string()]
        );
        assert_eq!(&*f.lines.lock().unwrap(), b"{\"checksum\":\"ab\"}\n");
        // Length field outside memory, bytes running past the end, too long, bad width.
        out(&mut f.devices, 0x3f4, &0xffff_fff0u32.to_le_bytes());
        f.mem.write_obj(100u32, GuestAddress(0xffff8)).unwrap();
        out(&mut f.devices, 0x3f4, &0xffff8u32.to_le_bytes());
        f.mem.write_obj(5000u32, GuestAddress(0x6000)).unwrap();
        out(&mut f.devices, 0x3f4, &0x6000u32.to_le_bytes());
        out(&mut f.devices, 0x3f4, &[1]);
        assert_eq!(f.devices.labctl.bad_records, 4);
        assert_eq!(f.devices.labctl.lines.len(), 1);
    }

    #[test]
    fn unknown_ports_and_mmio() {
        let mut f = fixture();
        assert_eq!(inb(&mut f.devices, 0x1234, 4), vec![0xff; 4]);
        assert_eq!(out(&mut f.devices, 0x1234, &[1, 2]), Action::Continue);
        let mut data = [0u8; 8];
        handle_exit(
            ExitEvent::MmioRead {
                addr: 0xd000_0000,
                data: &mut data,
            },
            &mut f.devices,
            Policy::default(),
        );
        assert_eq!(data, [0xff; 8]);
        handle_exit(
            ExitEvent::MmioWrite {
                addr: 0xd000_0000,
                data: &[1],
            },
            &mut f.devices,
            Policy::default(),
        );
        let u = &f.devices.unclaimed;
        assert_eq!(
            (u.pio_reads, u.pio_writes, u.mmio_reads, u.mmio_writes),
            (1, 1, 1, 1)
        );
        // Known ports are not counted as unclaimed.
        inb(&mut f.devices, 0x61, 1);
        out(&mut f.devices, 0x80, &[0]);
        out(&mut f.devices, 0x70, &[0x0a]);
        assert_eq!(
            inb(&mut f.devices, 0x71, 1),
            vec![0],
            "CMOS: update not in progress"
        );
        assert_eq!(f.devices.unclaimed.pio_reads, 1);
        assert_eq!(f.devices.unclaimed.pio_writes, 1);
    }

    #[test]
    fn hidden_lab_device_is_unclaimed_and_the_unikernel_exit_path_resets() {
        let mut f = fixture();
        f.devices.labctl.present = false;
        // The probe reads all-ones, as on another VMM; ready and status writes are dropped.
        assert_eq!(inb(&mut f.devices, 0x3f0, 1), vec![0xff]);
        assert_eq!(out(&mut f.devices, 0x3f0, &[123]), Action::Continue);
        assert_eq!(f.devices.labctl.ready_ns, None);
        assert_eq!(
            out(&mut f.devices, 0x3f4, &0x5000u32.to_le_bytes()),
            Action::Continue
        );
        assert!(f.devices.labctl.lines.is_empty());
        // The shim's exit sequence (an exception): lab status, isa-debug-exit, Cloud
        // Hypervisor's ACPI S5, i8042 reset. Only the reset ends the VM.
        assert_eq!(out(&mut f.devices, 0x3f1, &[7]), Action::Continue);
        assert_eq!(out(&mut f.devices, 0x501, &[7]), Action::Continue);
        assert_eq!(out(&mut f.devices, 0x600, &[0x34]), Action::Continue);
        assert_eq!(
            out(&mut f.devices, 0x64, &[0xfe]),
            Action::Stop(EndReason::Reset)
        );
        let u = &f.devices.unclaimed;
        assert_eq!((u.pio_reads, u.pio_writes), (1, 5));
    }

    #[test]
    fn i8042_reset_and_panic() {
        let mut f = fixture();
        assert_eq!(out(&mut f.devices, 0x64, &[0xd1]), Action::Continue);
        assert_eq!(
            out(&mut f.devices, 0x64, &[0xfe]),
            Action::Stop(EndReason::Reset)
        );

        let mut f = fixture();
        for b in b"Kernel panic - not syncing: VFS\n" {
            out(&mut f.devices, 0x3f8, &[*b]);
        }
        match out(&mut f.devices, 0x64, &[0xfe]) {
            Action::Stop(EndReason::GuestPanic(lines)) => {
                assert!(lines[0].contains("Kernel panic"))
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(f.console.lock().unwrap().starts_with(b"Kernel panic"));
    }

    #[test]
    fn stop_at_init_handoff() {
        let mut f = fixture();
        let policy = Policy {
            stop_at_init_handoff: true,
        };
        let mut last = Action::Continue;
        for b in b"Run /init as init process\n" {
            last = handle_exit(
                ExitEvent::IoOut {
                    port: 0x3f8,
                    data: &[*b],
                },
                &mut f.devices,
                policy,
            );
        }
        assert_eq!(last, Action::Stop(EndReason::InitHandoff));

        let mut f = fixture();
        f.devices.serial.writer_mut().watch = Some("2 CPUs".to_string());
        let mut actions = Vec::new();
        for b in b"smp: Brought up 1 node, 2 CPUs\nmore\n" {
            actions.push(out(&mut f.devices, 0x3f8, &[*b]));
        }
        let stops: Vec<_> = actions.iter().filter(|a| **a != Action::Continue).collect();
        assert_eq!(stops, vec![&Action::Stop(EndReason::ConsoleMatch)]);
    }

    /// Regression (fuzz target `vmm_exit`): a UART read of zero bytes panicked on `data[0]`.
    #[test]
    fn empty_port_reads_do_not_panic() {
        let mut f = fixture();
        for port in [0x3f8, 0x3fd, 0x3f0, 0x64, 0x61, 0x1234] {
            assert!(inb(&mut f.devices, port, 0).is_empty());
            assert_eq!(out(&mut f.devices, port, &[]), Action::Continue);
        }
    }

    #[test]
    fn fatal_exits() {
        let mut f = fixture();
        let p = Policy::default();
        assert_eq!(
            handle_exit(ExitEvent::Shutdown, &mut f.devices, p),
            Action::Stop(EndReason::TripleFault)
        );
        assert!(matches!(
            handle_exit(ExitEvent::InternalError { suberror: 1 }, &mut f.devices, p),
            Action::Stop(EndReason::InternalError(m)) if m.contains("emulation failure")
        ));
        assert!(matches!(
            handle_exit(ExitEvent::FailEntry { reason: 7 }, &mut f.devices, p),
            Action::Stop(EndReason::InternalError(_))
        ));
        assert_eq!(
            handle_exit(ExitEvent::Hlt, &mut f.devices, p),
            Action::Continue
        );
        assert_eq!(f.devices.exits.values().sum::<u64>(), 4);
    }
}
