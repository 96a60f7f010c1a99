//! A fixed-size text buffer for lines built with `core::fmt` (no allocator in the guest).

use core::fmt;

/// Bytes a line buffer holds; longer text is cut.
const LINE_CAP: usize = 512;

/// A line under construction.
pub struct LineBuf {
    bytes: [u8; LINE_CAP],
    len: usize,
}

impl LineBuf {
    /// An empty line.
    pub const fn new() -> LineBuf {
        LineBuf {
            bytes: [0; LINE_CAP],
            len: 0,
        }
    }

    /// The text written so far.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

impl fmt::Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = LINE_CAP - self.len;
        let n = s.len().min(room);
        if let (Some(dst), Some(src)) = (
            self.bytes.get_mut(self.len..self.len + n),
            s.as_bytes().get(..n),
        ) {
            dst.copy_from_slice(src);
            self.len += n;
        }
        Ok(())
    }
}
