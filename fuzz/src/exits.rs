//! The input format of the `vmm_exit` target: a script of VM exits, decoded from bytes
//! ([`decode`]; it never fails) and written back ([`encode`], for the seeds). `model` plays it.
//!
//! Layout: byte 0 is the header ([`FLAG_STOP_AT_INIT`], [`FLAG_HIDE_LABCTL`], [`FLAG_WATCH`]);
//! then ops, each an opcode byte (taken modulo the number of opcodes) and its fields, integers
//! little-endian. A field cut short by the end of the input ends the script.

/// Header bit: the policy stops at Linux's init handoff.
pub const FLAG_STOP_AT_INIT: u8 = 1;
/// Header bit: the lab device is hidden (`--lab-device off`).
pub const FLAG_HIDE_LABCTL: u8 = 2;
/// Header bit: the console watches for `model::WATCH_TEXT` (`--stop-at-console`).
pub const FLAG_WATCH: u8 = 4;
/// The widest port or MMIO access decoded (KVM uses 1, 2, 4 and 8; 0 and the others are fuzzed
/// too: the handler must cope with any slice).
pub const MAX_ACCESS: u8 = 9;

/// One step of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A port read.
    In {
        /// The port.
        port: u16,
        /// Bytes read (0 to 8).
        len: u8,
    },
    /// A port write.
    Out {
        /// The port.
        port: u16,
        /// The bytes written (0 to 8).
        data: Vec<u8>,
    },
    /// An MMIO read.
    MmioRead {
        /// Guest-physical address.
        addr: u64,
        /// Bytes read (0 to 8).
        len: u8,
    },
    /// An MMIO write.
    MmioWrite {
        /// Guest-physical address.
        addr: u64,
        /// The bytes written (0 to 8).
        data: Vec<u8>,
    },
    /// HLT.
    Hlt,
    /// Triple fault.
    Shutdown,
    /// KVM internal error with this suberror.
    InternalError(u32),
    /// Failed VM entry with this hardware reason.
    FailEntry(u64),
    /// KVM system event of this type.
    SystemEvent(u32),
    /// Signal kick.
    Interrupted,
    /// An exit kind the handler does not know.
    Other,
    /// The guest writes its memory (no exit): line records to point the lab device at.
    Poke {
        /// Guest-physical address.
        addr: u32,
        /// The bytes (a write outside guest memory is dropped).
        data: Vec<u8>,
    },
    /// One byte write to `port` per byte of `data` (`rep outsb`: one exit per byte).
    OutString {
        /// The port.
        port: u16,
        /// The bytes, one exit each.
        data: Vec<u8>,
    },
}

const OPCODES: u8 = 13;

/// A decoded script.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    /// The header byte.
    pub flags: u8,
    /// The steps.
    pub ops: Vec<Op>,
}

/// Reads fields off the front of the input.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.bytes(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.bytes(4)?.try_into().ok().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.bytes(8)?.try_into().ok().map(u64::from_le_bytes)
    }
    fn access(&mut self) -> Option<u8> {
        self.u8().map(|n| n % MAX_ACCESS)
    }
    fn data(&mut self, len: usize) -> Option<Vec<u8>> {
        self.bytes(len).map(<[u8]>::to_vec)
    }
    fn op(&mut self) -> Option<Op> {
        Some(match self.u8()? % OPCODES {
            0 => Op::In {
                port: self.u16()?,
                len: self.access()?,
            },
            1 => {
                let port = self.u16()?;
                let len = self.access()?;
                Op::Out {
                    port,
                    data: self.data(len.into())?,
                }
            }
            2 => Op::MmioRead {
                addr: self.u64()?,
                len: self.access()?,
            },
            3 => {
                let addr = self.u64()?;
                let len = self.access()?;
                Op::MmioWrite {
                    addr,
                    data: self.data(len.into())?,
                }
            }
            4 => Op::Hlt,
            5 => Op::Shutdown,
            6 => Op::InternalError(self.u32()?),
            7 => Op::FailEntry(self.u64()?),
            8 => Op::SystemEvent(self.u32()?),
            9 => Op::Interrupted,
            10 => Op::Other,
            11 => {
                let addr = self.u32()?;
                let len = self.u16()?;
                Op::Poke {
                    addr,
                    data: self.data(len.into())?,
                }
            }
            _ => {
                let port = self.u16()?;
                let len = self.u16()?;
                Op::OutString {
                    port,
                    data: self.data(len.into())?,
                }
            }
        })
    }
}

/// Decodes a script; never fails (what cannot be read ends it).
pub fn decode(data: &[u8]) -> Script {
    let mut r = Reader(data);
    let flags = r.u8().unwrap_or(0);
    let mut ops = Vec::new();
    while let Some(op) = r.op() {
        ops.push(op);
    }
    Script { flags, ops }
}

/// Encodes a script so that [`decode`] gives it back (lengths must fit their fields: at most 8
/// bytes for an access, 65535 for a poke or a string).
pub fn encode(script: &Script) -> Vec<u8> {
    fn len8(n: usize) -> u8 {
        u8::try_from(n).unwrap_or(u8::MAX)
    }
    fn len16(n: usize) -> [u8; 2] {
        u16::try_from(n).unwrap_or(u16::MAX).to_le_bytes()
    }
    let mut out = vec![script.flags];
    for op in &script.ops {
        match op {
            Op::In { port, len } => {
                out.push(0);
                out.extend(port.to_le_bytes());
                out.push(*len);
            }
            Op::Out { port, data } => {
                out.push(1);
                out.extend(port.to_le_bytes());
                out.push(len8(data.len()));
                out.extend(data);
            }
            Op::MmioRead { addr, len } => {
                out.push(2);
                out.extend(addr.to_le_bytes());
                out.push(*len);
            }
            Op::MmioWrite { addr, data } => {
                out.push(3);
                out.extend(addr.to_le_bytes());
                out.push(len8(data.len()));
                out.extend(data);
            }
            Op::Hlt => out.push(4),
            Op::Shutdown => out.push(5),
            Op::InternalError(s) => {
                out.push(6);
                out.extend(s.to_le_bytes());
            }
            Op::FailEntry(r) => {
                out.push(7);
                out.extend(r.to_le_bytes());
            }
            Op::SystemEvent(k) => {
                out.push(8);
                out.extend(k.to_le_bytes());
            }
            Op::Interrupted => out.push(9),
            Op::Other => out.push(10),
            Op::Poke { addr, data } => {
                out.push(11);
                out.extend(addr.to_le_bytes());
                out.extend(len16(data.len()));
                out.extend(data);
            }
            Op::OutString { port, data } => {
                out.push(12);
                out.extend(port.to_le_bytes());
                out.extend(len16(data.len()));
                out.extend(data);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_empty_inputs() {
        assert_eq!(decode(b""), Script::default());
        // An op cut short ends the script.
        assert_eq!(decode(&[0, 1, 0xf8]).ops, vec![]);
        assert_eq!(
            decode(&[7, 4, 4, 9]).ops,
            vec![Op::Hlt, Op::Hlt, Op::Interrupted]
        );
        assert_eq!(decode(&[0, 4 + 13]).ops, vec![Op::Hlt], "opcodes wrap");
    }
}
