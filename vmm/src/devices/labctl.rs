//! The lab control device (DESIGN.md, "Lab control device"): the guest
//! signals readiness, asks once for its after-restore parameters, prints result
//! lines through guest memory in one exit each, and ends the VM with an exit status. Its ports and values are the
//! guests' contract (`vclab_contract::labctl`).

use vclab_contract::labctl::{self, MAX_LINE_RECORD, MAX_PARAMS_TEXT, PRESENCE_VALUE, READY_VALUE};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use super::{Clock, Sink};

/// Errors of reading a line record (logged and counted, never fatal).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The register was written with a width other than 4.
    #[error("line register written with {0} bytes; write a u32 guest-physical address")]
    Width(usize),
    /// The record's length or bytes lie outside guest memory.
    #[error("line record at {0:#x} lies outside guest memory")]
    OutOfBounds(u64),
    /// The params record does not lie in guest memory.
    #[error("params record at {0:#x} lies outside guest memory; give the guest a buffer of {size} bytes in RAM", size = labctl::PARAMS_RECORD_BYTES)]
    ParamsOutOfBounds(u64),
    /// The length is over the limit.
    #[error("line record at {addr:#x} claims {len} bytes, more than {MAX_LINE_RECORD}")]
    TooLong {
        /// Record address.
        addr: u64,
        /// Claimed length.
        len: u32,
    },
}

/// What a write to the device asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Nothing beyond the device's own state.
    None,
    /// The guest's first ready signal with [`LabCtl::snapshot_at_ready`]: pause the VM for
    /// a snapshot, then resume it.
    Pause,
    /// End the VM with this status.
    Exit(u8),
}

/// The device.
#[derive(Debug)]
pub struct LabCtl {
    mem: Option<GuestMemoryMmap>,
    out: Sink,
    clock: Clock,
    /// When the guest wrote the ready marker, ns.
    pub ready_ns: Option<u64>,
    /// What the params register answers: `None` on a cold boot (length 0, the guest keeps
    /// its command line), the `--cmdline-after-restore` text after a restore.
    pub after_restore: Option<String>,
    /// When the guest asked for its params, ns: after a restore, its first useful work.
    pub params_ns: Option<u64>,
    /// Pause the VM at the first ready signal for a snapshot (`--snapshot-at ready`).
    pub snapshot_at_ready: bool,
    /// Lines received.
    pub lines: Vec<String>,
    /// Bad line records (out of bounds, too long, wrong width).
    pub bad_records: u64,
    /// Whether the guest sees the device (default). `false` (`--lab-device off`) hides it: its
    /// ports are unclaimed, 0x3f0 reads all-ones as on another VMM, and the unikernel uses the
    /// UART and ends through the i8042 reset.
    pub present: bool,
}

impl LabCtl {
    /// A device reading line records from `mem` and printing them to `out`.
    pub fn new(mem: Option<GuestMemoryMmap>, out: Sink, clock: Clock) -> Self {
        LabCtl {
            mem,
            out,
            clock,
            ready_ns: None,
            after_restore: None,
            params_ns: None,
            snapshot_at_ready: false,
            lines: Vec::new(),
            bad_records: 0,
            present: true,
        }
    }

    /// True for the ports this device answers on: its own, unless it is hidden.
    pub fn claims(&self, port: u16) -> bool {
        self.present && Self::owns(port)
    }

    /// True for the ports this device owns.
    pub fn owns(port: u16) -> bool {
        labctl::is_labctl_port(port)
    }

    /// A read: the signature on the ready port, zero elsewhere.
    pub fn read(&self, port: u16, data: &mut [u8]) {
        data.fill(0);
        if port == labctl::READY_PORT {
            if let Some(b) = data.first_mut() {
                *b = PRESENCE_VALUE;
            }
        }
    }

    /// A write.
    pub fn write(&mut self, port: u16, data: &[u8]) -> Effect {
        match port {
            labctl::READY_PORT => {
                if data.first() == Some(&READY_VALUE) && self.ready_ns.is_none() {
                    self.ready_ns = Some(self.clock.now_ns());
                    if self.snapshot_at_ready {
                        return Effect::Pause;
                    }
                }
                Effect::None
            }
            labctl::EXIT_PORT => Effect::Exit(data.first().copied().unwrap_or(0)),
            labctl::PARAMS_PORT => {
                if self.params_ns.is_none() {
                    self.params_ns = Some(self.clock.now_ns());
                }
                if let Err(e) = self.write_params(data) {
                    self.bad_records += 1;
                    log::warn!("lab control device: {e}");
                }
                Effect::None
            }
            _ => {
                match self.read_line(data) {
                    Ok(line) => {
                        let mut bytes = line.clone().into_bytes();
                        bytes.push(b'\n');
                        self.out.write_all(&bytes);
                        self.lines.push(line);
                    }
                    Err(e) => {
                        self.bad_records += 1;
                        log::warn!("lab control device: {e}");
                    }
                }
                Effect::None
            }
        }
    }

    /// Fills the guest's params record: the after-restore text (cut to
    /// [`MAX_PARAMS_TEXT`] bytes), or length 0.
    fn write_params(&self, data: &[u8]) -> Result<(), Error> {
        let addr: [u8; 4] = data.try_into().map_err(|_| Error::Width(data.len()))?;
        let addr = u64::from(u32::from_le_bytes(addr));
        let mem = self.mem.as_ref().ok_or(Error::ParamsOutOfBounds(addr))?;
        let text = self.after_restore.as_deref().unwrap_or("").as_bytes();
        let text = text.get(..MAX_PARAMS_TEXT as usize).unwrap_or(text);
        // The whole record must be guest RAM, so the guest's buffer is what was written.
        let end = addr + u64::from(labctl::PARAMS_RECORD_BYTES) - 1;
        if !mem.address_in_range(GuestAddress(end)) || !mem.address_in_range(GuestAddress(addr)) {
            return Err(Error::ParamsOutOfBounds(addr));
        }
        mem.write_slice(text, GuestAddress(addr + 4))
            .and_then(|_| mem.write_obj(text.len() as u32, GuestAddress(addr)))
            .map_err(|_| Error::ParamsOutOfBounds(addr))
    }

    fn read_line(&self, data: &[u8]) -> Result<String, Error> {
        let addr: [u8; 4] = data.try_into().map_err(|_| Error::Width(data.len()))?;
        let addr = u64::from(u32::from_le_bytes(addr));
        let mem = self.mem.as_ref().ok_or(Error::OutOfBounds(addr))?;
        let len: u32 = mem
            .read_obj(GuestAddress(addr))
            .map_err(|_| Error::OutOfBounds(addr))?;
        if len > MAX_LINE_RECORD {
            return Err(Error::TooLong { addr, len });
        }
        let mut buf = vec![0u8; len as usize];
        mem.read_slice(&mut buf, GuestAddress(addr + 4))
            .map_err(|_| Error::OutOfBounds(addr))?;
        let text = String::from_utf8_lossy(&buf);
        Ok(text.trim_end_matches(['\n', '\r']).to_string())
    }
}
