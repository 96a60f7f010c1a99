//! The i8042 keyboard controller: vm-superio's `I8042Device`, which does what a micro-VM needs
//! of it (the CPU reset line: command 0xFE on port 0x64; reads return 0, no key, buffers empty).
//! Its reset "event" is a flag here: the exit handler ends the VM when the flag is set, on the
//! vCPU that wrote the command, with no eventfd or thread in between.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};

use vm_superio::{I8042Device, Trigger};

use crate::layout::{I8042_COMMAND_PORT, I8042_DATA_PORT};

/// The reset line: set once the guest asked for a CPU reset.
#[derive(Debug, Default)]
pub struct ResetRequest(AtomicBool);

impl ResetRequest {
    /// Whether the guest asked for a reset.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl Trigger for ResetRequest {
    type E = Infallible;

    fn trigger(&self) -> Result<(), Infallible> {
        self.0.store(true, Ordering::Relaxed);
        Ok(())
    }
}

/// The controller at ports 0x60 (data) and 0x64 (status / command).
#[derive(Debug)]
pub struct I8042(I8042Device<ResetRequest>);

impl Default for I8042 {
    fn default() -> Self {
        I8042(I8042Device::new(ResetRequest::default()))
    }
}

/// The register offset of an i8042 port (vm-superio's `offset`: 0 data, 4 command).
fn offset(port: u16) -> u8 {
    debug_assert!(port == I8042_DATA_PORT || port == I8042_COMMAND_PORT);
    port.wrapping_sub(I8042_DATA_PORT) as u8
}

impl I8042 {
    /// A read of port 0x60 or 0x64.
    pub fn read(&mut self, port: u16) -> u8 {
        self.0.read(offset(port))
    }

    /// A write of port 0x60 or 0x64; returns true once the guest has asked for a reset.
    pub fn write(&mut self, port: u16, value: u8) -> bool {
        // The trigger cannot fail (Infallible).
        let _ = self.0.write(offset(port), value);
        self.0.reset_evt().is_set()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_only_on_fe_to_64() {
        let mut k = I8042::default();
        assert!(!k.write(0x60, 0xfe));
        assert!(!k.write(0x64, 0xd1));
        assert_eq!(k.read(0x64), 0);
        assert_eq!(k.read(0x60), 0);
        assert!(k.write(0x64, 0xfe));
    }
}
