//! Writes to the lab control device's I/O ports through /dev/port (DESIGN.md, "Lab control device").

use std::fmt;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::FileExt;

use vclab_contract::labctl;

/// Port whose write of [`READY_VALUE`] marks the guest ready (an offset into /dev/port).
pub const READY_PORT: u64 = labctl::READY_PORT as u64;
/// The value that means "guest ready".
pub const READY_VALUE: u8 = labctl::READY_VALUE;
/// Port whose write ends the VM with that status (an offset into /dev/port).
pub const EXIT_PORT: u64 = labctl::EXIT_PORT as u64;

/// Path of the I/O port device.
const DEV_PORT: &str = "/dev/port";

/// A failed port write.
#[derive(Debug)]
pub enum PortError {
    /// /dev/port could not be opened.
    Open(io::Error),
    /// The byte could not be written.
    Write {
        /// The port.
        port: u64,
        /// The cause.
        source: io::Error,
    },
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortError::Open(e) if e.kind() == io::ErrorKind::NotFound => write!(
                f,
                "cannot open {DEV_PORT}: it does not exist (run this inside the vclab Linux guest, whose kernel has CONFIG_DEVPORT)"
            ),
            PortError::Open(e) => write!(f, "cannot open {DEV_PORT} for writing: {e} (needs root)"),
            PortError::Write { port, source } => {
                write!(f, "cannot write I/O port {port:#x} through {DEV_PORT}: {source}")
            }
        }
    }
}

/// Writes one byte to `port`.
pub fn write_byte(port: u64, value: u8) -> Result<(), PortError> {
    let dev = OpenOptions::new()
        .write(true)
        .open(DEV_PORT)
        .map_err(PortError::Open)?;
    dev.write_all_at(&[value], port)
        .map_err(|source| PortError::Write { port, source })
}
