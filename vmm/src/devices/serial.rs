//! COM1: a vm-superio 8250 UART whose interrupt is an eventfd registered as
//! an irqfd on IRQ 4, and whose output goes through a [`ConsoleSink`] that
//! also watches the stream for the Linux boot milestones.

use std::collections::VecDeque;
use std::io;

use vm_superio::serial::NoEvents;
use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

use super::{Clock, Sink};

/// Linux prints this on a panic.
pub const PANIC_MARK: &str = "Kernel panic - not syncing";
/// How many console lines are kept for error messages.
const KEPT_LINES: usize = 12;

/// The UART's interrupt: an irqfd, or nothing (tests).
#[derive(Debug)]
pub struct IrqTrigger(pub Option<EventFd>);

impl Trigger for IrqTrigger {
    type E = io::Error;

    fn trigger(&self) -> io::Result<()> {
        match &self.0 {
            Some(evt) => evt.write(1),
            None => Ok(()),
        }
    }
}

/// Milestones seen in the console stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Milestones {
    /// First byte, ns.
    pub first_byte_ns: Option<u64>,
    /// "Run /init as init process", ns.
    pub init_handoff_ns: Option<u64>,
    /// "Kernel panic - not syncing", ns.
    pub panic_ns: Option<u64>,
    /// The first line containing the watched text, ns.
    pub watch_ns: Option<u64>,
}

/// The UART's output side.
#[derive(Debug)]
pub struct ConsoleSink {
    sink: Sink,
    clock: Clock,
    line: Vec<u8>,
    /// Text whose first appearance in a console line is timestamped.
    pub watch: Option<String>,
    last_lines: VecDeque<String>,
    /// What was seen so far.
    pub milestones: Milestones,
}

impl ConsoleSink {
    /// A sink writing to `sink`, timing with `clock`.
    pub fn new(sink: Sink, clock: Clock) -> Self {
        ConsoleSink {
            sink,
            clock,
            line: Vec::new(),
            watch: None,
            last_lines: VecDeque::new(),
            milestones: Milestones::default(),
        }
    }

    fn end_line(&mut self, newline: bool) {
        let text = String::from_utf8_lossy(&self.line).trim_end().to_string();
        if vclab_contract::lines::is_init_handoff(&text) {
            self.milestones
                .init_handoff_ns
                .get_or_insert(self.clock.now_ns());
        }
        if self.watch.as_deref().is_some_and(|w| text.contains(w)) {
            self.milestones.watch_ns.get_or_insert(self.clock.now_ns());
        }
        if text.contains(PANIC_MARK) {
            self.milestones.panic_ns.get_or_insert(self.clock.now_ns());
        }
        if self.last_lines.len() == KEPT_LINES {
            self.last_lines.pop_front();
        }
        self.last_lines.push_back(text);
        if newline {
            self.line.push(b'\n');
        }
        self.sink.write_all(&self.line);
        self.line.clear();
    }

    /// Writes out a pending partial line (at the end of the run).
    pub fn finish(&mut self) {
        if !self.line.is_empty() {
            self.sink.write_all(&self.line);
            self.line.clear();
        }
    }

    /// The last console lines (for error messages).
    pub fn last_lines(&self) -> Vec<String> {
        self.last_lines.iter().cloned().collect()
    }
}

impl io::Write for ConsoleSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.milestones.first_byte_ns.is_none() && !buf.is_empty() {
            self.milestones.first_byte_ns = Some(self.clock.now_ns());
        }
        for &b in buf {
            match b {
                b'\n' => self.end_line(true),
                b'\r' => {}
                _ => {
                    self.line.push(b);
                    if self.line.len() >= 4096 {
                        // A very long line is passed on as it is, in pieces.
                        self.end_line(false);
                    }
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// COM1 with its interrupt and output.
pub type Console = Serial<IrqTrigger, NoEvents, ConsoleSink>;

/// Makes COM1.
pub fn console(irq: IrqTrigger, sink: Sink, clock: Clock) -> Console {
    Serial::new(irq, ConsoleSink::new(sink, clock))
}

/// Makes COM1 with the registers of a snapshot.
pub fn restore(
    state: &vm_superio::serial::SerialState,
    irq: IrqTrigger,
    out: ConsoleSink,
) -> Result<Console, vm_superio::serial::Error<io::Error>> {
    Serial::from_state(state, irq, NoEvents, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    #[test]
    fn milestones_and_lines() {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let mut c = console(
            IrqTrigger(None),
            Sink::Memory(buf.clone()),
            Clock::new(Instant::now()),
        );
        for b in b"Linux version x\r\nRun /init as init process\npart" {
            c.write(0, *b).unwrap();
        }
        let m = c.writer().milestones;
        assert!(m.first_byte_ns.is_some());
        assert!(m.init_handoff_ns.is_some());
        assert!(m.panic_ns.is_none());
        assert_eq!(
            String::from_utf8(buf.lock().unwrap().clone()).unwrap(),
            "Linux version x\nRun /init as init process\n"
        );
        c.writer_mut().finish();
        assert!(buf.lock().unwrap().ends_with(b"part"));
        for b in b"Kernel panic - not syncing: Attempted to kill init!\n" {
            c.write(0, *b).unwrap();
        }
        assert!(c.writer().milestones.panic_ns.is_some());
        assert_eq!(c.writer().last_lines().len(), 3);
    }
}
