//! The no-alloc JSON line writer: the result line and the ready line (DESIGN.md, "Workload JSON line").

use core::fmt;

use crate::checksum::Checksum;
use crate::io::IoStats;
use crate::params::Params;

/// The ready line, without a newline (defined in `vclab-contract`).
pub use vclab_contract::READY_LINE;

/// Bytes that always hold a result line (the longest possible one is 670 bytes: an io line).
pub const MAX_LINE_LEN: usize = 704;

/// Everything the result line reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// The inputs of the run.
    pub params: Params,
    /// The kernel's checksum.
    pub checksum: Checksum,
    /// The kernel's operation count.
    pub ops: u64,
    /// Wall time of the kernel in nanoseconds (CLOCK_MONOTONIC, or TSC-derived in the unikernel).
    pub elapsed_ns: u64,
    /// CLOCK_MONOTONIC at process entry; 0 in the unikernel, which has no host clock.
    pub start_monotonic_ns: u64,
    /// CPU time of the kernel in nanoseconds (CLOCK_THREAD_CPUTIME_ID); 0 in the unikernel,
    /// which has no CPU-time clock.
    pub cpu_ns: u64,
    /// The io kernel's statistics (`None` for the other kernels: no `"io"` key).
    pub io: Option<IoStats>,
}

impl Report {
    /// Writes the result line (no newline) into `out` and returns its length:
    /// `{"kernel":"cpu","size":N,"iterations":N,"seed":N,"checksum":"<hex>","ops":N,"elapsed_ns":N,"start_monotonic_ns":N,"cpu_ns":N}`,
    /// for io with `,"io":{...}` before the last brace (field order of [`IoStats`]).
    pub fn write_json(&self, out: &mut [u8]) -> Result<usize, JsonError> {
        let mut w = Cursor { out, len: 0 };
        w.text("{\"kernel\":\"")?;
        w.text(self.params.kernel.name())?;
        w.text("\",\"size\":")?;
        w.number(self.params.size)?;
        w.text(",\"iterations\":")?;
        w.number(self.params.iterations)?;
        w.text(",\"seed\":")?;
        w.number(self.params.seed)?;
        w.text(",\"checksum\":\"")?;
        w.bytes(&self.checksum.hex())?;
        w.text("\",\"ops\":")?;
        w.number(self.ops)?;
        w.text(",\"elapsed_ns\":")?;
        w.number(self.elapsed_ns)?;
        w.text(",\"start_monotonic_ns\":")?;
        w.number(self.start_monotonic_ns)?;
        w.text(",\"cpu_ns\":")?;
        w.number(self.cpu_ns)?;
        if let Some(io) = &self.io {
            write_io(&mut w, io)?;
        }
        w.text("}")?;
        Ok(w.len)
    }
}

/// Appends `,"io":{...}`.
fn write_io(w: &mut Cursor<'_>, io: &IoStats) -> Result<(), JsonError> {
    let fields = [
        ("{\"seq_bytes\":", io.seq_bytes),
        (",\"seq_ns\":", io.seq_ns),
        (",\"rand_reads\":", io.rand_reads),
        (",\"rand_ns\":", io.rand_ns),
        (",\"rand_p50_ns\":", io.rand_p50_ns),
        (",\"rand_p99_ns\":", io.rand_p99_ns),
        (",\"writes\":", io.writes),
        (",\"write_ns\":", io.write_ns),
        (",\"write_p50_ns\":", io.write_p50_ns),
        (",\"write_p99_ns\":", io.write_p99_ns),
    ];
    w.text(",\"io\":")?;
    for (key, value) in fields {
        w.text(key)?;
        w.number(value)?;
    }
    match io.direct {
        Some(true) => w.text(",\"direct\":true")?,
        Some(false) => w.text(",\"direct\":false")?,
        None => {}
    }
    w.text("}")
}

/// Writes the ready line `{"ready":true}` (no newline) into `out` and returns its length.
pub fn write_ready(out: &mut [u8]) -> Result<usize, JsonError> {
    let mut w = Cursor { out, len: 0 };
    w.text(READY_LINE)?;
    Ok(w.len)
}

/// Why a line could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonError {
    /// The output buffer ran out.
    BufferTooSmall {
        /// Bytes in the buffer given.
        got: usize,
    },
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            JsonError::BufferTooSmall { got } => write!(
                f,
                "JSON line does not fit in {got} bytes: pass a buffer of at least {MAX_LINE_LEN} bytes"
            ),
        }
    }
}

impl core::error::Error for JsonError {}

/// Appends to a byte buffer, refusing to overflow it.
struct Cursor<'a> {
    out: &'a mut [u8],
    len: usize,
}

impl Cursor<'_> {
    fn bytes(&mut self, bytes: &[u8]) -> Result<(), JsonError> {
        let got = self.out.len();
        let end = self.len.checked_add(bytes.len());
        let dst = end
            .and_then(|end| self.out.get_mut(self.len..end))
            .ok_or(JsonError::BufferTooSmall { got })?;
        dst.copy_from_slice(bytes);
        self.len += bytes.len();
        Ok(())
    }

    fn text(&mut self, s: &str) -> Result<(), JsonError> {
        self.bytes(s.as_bytes())
    }

    fn number(&mut self, mut n: u64) -> Result<(), JsonError> {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            if let Some(d) = digits.get_mut(start) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || start == 0 {
                break;
            }
        }
        self.bytes(digits.get(start..).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Kernel;

    fn report() -> Report {
        let mut d = [0u8; 32];
        d[0] = 0xde;
        d[31] = 0x01;
        Report {
            params: Params {
                kernel: Kernel::MemBw,
                size: 16777216,
                iterations: 16,
                seed: 0,
            },
            checksum: Checksum(d),
            ops: u64::MAX,
            elapsed_ns: 123456789,
            start_monotonic_ns: 10,
            cpu_ns: 120000000,
            io: None,
        }
    }

    #[test]
    fn result_line_is_exact() {
        let mut out = [0u8; MAX_LINE_LEN];
        let n = report().write_json(&mut out).unwrap();
        let expected = concat!(
            "{\"kernel\":\"mem-bw\",\"size\":16777216,\"iterations\":16,\"seed\":0,",
            "\"checksum\":\"de00000000000000000000000000000000000000000000000000000000000001\",",
            "\"ops\":18446744073709551615,\"elapsed_ns\":123456789,\"start_monotonic_ns\":10,",
            "\"cpu_ns\":120000000}"
        );
        assert_eq!(core::str::from_utf8(&out[..n]).unwrap(), expected);
    }

    #[test]
    fn longest_line_fits_max_len() {
        let mut r = report();
        r.params.kernel = Kernel::MemLat;
        r.params.size = u64::MAX;
        r.params.iterations = u64::MAX;
        r.params.seed = u64::MAX;
        r.elapsed_ns = u64::MAX;
        r.start_monotonic_ns = u64::MAX;
        r.cpu_ns = u64::MAX;
        let mut out = [0u8; MAX_LINE_LEN];
        let n = r.write_json(&mut out).unwrap();
        assert_eq!(n, 321);
        r.params.kernel = Kernel::Io;
        r.io = Some(IoStats {
            seq_bytes: u64::MAX,
            seq_ns: u64::MAX,
            rand_reads: u64::MAX,
            rand_ns: u64::MAX,
            rand_p50_ns: u64::MAX,
            rand_p99_ns: u64::MAX,
            writes: u64::MAX,
            write_ns: u64::MAX,
            write_p50_ns: u64::MAX,
            write_p99_ns: u64::MAX,
            direct: Some(false),
        });
        let n = r.write_json(&mut out).unwrap();
        assert_eq!(n, 670);
        assert!(n <= MAX_LINE_LEN);
    }

    #[test]
    fn io_line_is_exact() {
        let mut r = report();
        r.params.kernel = Kernel::Io;
        r.io = Some(IoStats {
            seq_bytes: 1,
            seq_ns: 2,
            rand_reads: 3,
            rand_ns: 4,
            rand_p50_ns: 5,
            rand_p99_ns: 6,
            writes: 7,
            write_ns: 8,
            write_p50_ns: 9,
            write_p99_ns: 10,
            direct: Some(true),
        });
        let mut out = [0u8; MAX_LINE_LEN];
        let n = r.write_json(&mut out).unwrap();
        let line = core::str::from_utf8(&out[..n]).unwrap();
        assert!(line.starts_with("{\"kernel\":\"io\","), "{line}");
        assert!(
            line.ends_with(concat!(
                "\"cpu_ns\":120000000,\"io\":{\"seq_bytes\":1,\"seq_ns\":2,\"rand_reads\":3,",
                "\"rand_ns\":4,\"rand_p50_ns\":5,\"rand_p99_ns\":6,\"writes\":7,\"write_ns\":8,",
                "\"write_p50_ns\":9,\"write_p99_ns\":10,\"direct\":true}}"
            )),
            "{line}"
        );
        r.io = r.io.map(|io| IoStats { direct: None, ..io });
        let n = r.write_json(&mut out).unwrap();
        assert!(core::str::from_utf8(&out[..n])
            .unwrap()
            .ends_with("\"write_p99_ns\":10}}"));
    }

    #[test]
    fn short_buffer_is_an_error_not_a_panic() {
        let mut out = [0u8; 40];
        assert_eq!(
            report().write_json(&mut out),
            Err(JsonError::BufferTooSmall { got: 40 })
        );
        let mut tiny = [0u8; 13];
        assert_eq!(
            write_ready(&mut tiny),
            Err(JsonError::BufferTooSmall { got: 13 })
        );
    }

    #[test]
    fn ready_line_is_exact() {
        let mut out = [0u8; 14];
        let n = write_ready(&mut out).unwrap();
        assert_eq!(&out[..n], b"{\"ready\":true}");
    }
}
