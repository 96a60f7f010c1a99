//! The 32-byte checksum of a run and its 64-character lowercase hex form.

use core::fmt;

use crate::sha256::DIGEST_LEN;

/// Hex characters in a checksum.
pub const HEX_LEN: usize = 2 * DIGEST_LEN;

/// A run's checksum: the SHA-256 digest (cpu) or the SHA-256 of the kernel's final state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Checksum(pub [u8; DIGEST_LEN]);

impl Checksum {
    /// The lowercase hex digits as ASCII bytes.
    pub fn hex(&self) -> [u8; HEX_LEN] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; HEX_LEN];
        for (pair, byte) in out.chunks_exact_mut(2).zip(self.0) {
            pair.copy_from_slice(&[
                DIGITS[usize::from(byte >> 4)],
                DIGITS[usize::from(byte & 0xf)],
            ]);
        }
        out
    }

    /// The lowercase hex digits in a fixed-size string buffer (see [`HexStr::as_str`]).
    pub fn hex_str(&self) -> HexStr {
        HexStr(self.hex())
    }
}

/// A checksum rendered as 64 lowercase hex digits, comparable with `&str`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HexStr([u8; HEX_LEN]);

impl HexStr {
    /// The digits as a string slice.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored, so this never fails.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl PartialEq<&str> for HexStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for HexStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for HexStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hex_str().as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_and_ordered() {
        let mut d = [0u8; DIGEST_LEN];
        d[0] = 0x01;
        d[1] = 0xab;
        d[31] = 0xf0;
        let h = Checksum(d).hex_str();
        assert_eq!(h.as_str().len(), HEX_LEN);
        assert!(h.as_str().starts_with("01ab00"));
        assert!(h.as_str().ends_with("00f0"));
    }
}
