//! The i8042 keyboard controller, reduced to what a micro-VM needs: the
//! reset line (command 0xFE on port 0x64) and harmless reads.

/// Command "pulse output line 0" (the CPU reset line).
pub const CMD_RESET_CPU: u8 = 0xfe;

/// The controller.
#[derive(Debug, Default)]
pub struct I8042 {
    /// Set once the guest asked for a reset.
    pub reset_requested: bool,
}

impl I8042 {
    /// A read of port 0x60 (data) or 0x64 (status): no key, buffers empty.
    pub fn read(&self, _port: u16) -> u8 {
        0
    }

    /// A write; returns true when it is the reset command.
    pub fn write(&mut self, port: u16, value: u8) -> bool {
        if port == crate::layout::I8042_COMMAND_PORT && value == CMD_RESET_CPU {
            self.reset_requested = true;
        }
        self.reset_requested
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
        assert!(k.write(0x64, 0xfe));
    }
}
