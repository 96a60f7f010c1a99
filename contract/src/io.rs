//! The `io` kernel's contract: its block geometry, the statistics its result line carries and the
//! `virtio_mmio.device=` command-line parameter a VMM writes and the unikernel reads to find its
//! virtio-blk device.
//!
//! Result line: the `io` kernel's line is the other kernels' line plus one object,
//! `"io":{"seq_bytes":N,"seq_ns":N,"rand_reads":N,"rand_ns":N,"rand_p50_ns":N,"rand_p99_ns":N,
//! "writes":N,"write_ns":N,"write_p50_ns":N,"write_p99_ns":N[,"direct":BOOL]}` ([`IoStats`]);
//! a reader takes it as optional, so lines of the other kernels (and older ones) still parse.

use core::fmt;

/// Bytes per request of the random reads and the writes, and the alignment of every transfer.
pub const BLOCK_SIZE: usize = 4096;

/// Bytes per sector: the unit of [`crate::io`]'s sector numbers (virtio-blk's, Linux's).
pub const SECTOR_SIZE: u64 = 512;

/// Sectors per block.
pub const SECTORS_PER_BLOCK: u64 = BLOCK_SIZE as u64 / SECTOR_SIZE;

/// The transfer buffer: the largest request, that of the sequential pass (128 KiB, Linux's
/// default read-ahead window).
pub const BUFFER_LEN: usize = 32 * BLOCK_SIZE;

/// Alignment of the transfer buffer (O_DIRECT needs the logical block size; a page covers all).
pub const BUFFER_ALIGN: usize = BLOCK_SIZE;

/// What the `io` kernel measured (all times in nanoseconds of the runtime's own clock; 0 when
/// it has none, like the unikernel without a TSC frequency).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct IoStats {
    /// Bytes read by the sequential pass (128 KiB requests over the read region).
    pub seq_bytes: u64,
    /// Time of the sequential pass.
    pub seq_ns: u64,
    /// Random 4 KiB reads done (`iterations`).
    pub rand_reads: u64,
    /// Time of all random reads.
    pub rand_ns: u64,
    /// Median latency of one random read.
    pub rand_p50_ns: u64,
    /// 99th-percentile latency of one random read.
    pub rand_p99_ns: u64,
    /// 4 KiB blocks written on the scratch area (each read back and checked afterwards).
    pub writes: u64,
    /// Time of all writes.
    pub write_ns: u64,
    /// Median latency of one write.
    pub write_p50_ns: u64,
    /// 99th-percentile latency of one write.
    pub write_p99_ns: u64,
    /// Host only: whether the file was opened with O_DIRECT (false: buffered, e.g. on tmpfs,
    /// which refuses it). Absent in a guest, whose disk is a device.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub direct: Option<bool>,
}

impl IoStats {
    /// Sequential read throughput in MB/s (10^6 bytes), when timed.
    pub fn seq_mb_s(&self) -> Option<f64> {
        (self.seq_ns > 0).then(|| self.seq_bytes as f64 * 1e3 / self.seq_ns as f64)
    }

    /// Random 4 KiB reads per second, when timed.
    pub fn rand_iops(&self) -> Option<f64> {
        (self.rand_ns > 0).then(|| self.rand_reads as f64 * 1e9 / self.rand_ns as f64)
    }
}

/// The command-line key a VMM uses to announce a virtio-mmio device (Linux's
/// `drivers/virtio/virtio_mmio.c`, "cmdline" devices).
pub const MMIO_DEVICE_KEY: &str = "virtio_mmio.device";

/// One `virtio_mmio.device=<size>@<base>:<irq>[:<id>]` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioDevice {
    /// Bytes of the register window (`4K`, `0x1000`, `512`...).
    pub size: u64,
    /// Guest-physical base address of the registers.
    pub base: u64,
    /// The interrupt line (GSI).
    pub irq: u32,
}

/// Why a `virtio_mmio.device=` value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioDeviceError<'a> {
    /// The value after `=`.
    pub value: &'a str,
}

impl fmt::Display for MmioDeviceError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad {MMIO_DEVICE_KEY}={}: expected <size>@<base>:<irq>, e.g. 4K@0xd0000000:5",
            self.value
        )
    }
}

impl core::error::Error for MmioDeviceError<'_> {}

impl MmioDevice {
    /// Parses the value of one entry (after `virtio_mmio.device=`). Like Linux: the size takes a
    /// K/M/G suffix, size and base are decimal or `0x` hex, an `:<id>` after the irq is ignored.
    pub fn parse(value: &str) -> Result<MmioDevice, MmioDeviceError<'_>> {
        let err = MmioDeviceError { value };
        let (size, rest) = value.split_once('@').ok_or(err)?;
        let (base, rest) = rest.split_once(':').ok_or(err)?;
        let irq = rest.split(':').next().unwrap_or(rest);
        let size = parse_size(size).filter(|&s| s > 0).ok_or(err)?;
        let base = parse_number(base).ok_or(err)?;
        let irq = irq.parse::<u32>().map_err(|_| err)?;
        Ok(MmioDevice { size, base, irq })
    }

    /// Every `virtio_mmio.device=` entry of a command line, in order.
    pub fn find(cmdline: &str) -> impl Iterator<Item = Result<MmioDevice, MmioDeviceError<'_>>> {
        cmdline
            .split_ascii_whitespace()
            .filter_map(|word| word.split_once('='))
            .filter(|(key, _)| *key == MMIO_DEVICE_KEY)
            .map(|(_, value)| MmioDevice::parse(value))
    }
}

/// Writes the whole word, e.g. `virtio_mmio.device=4K@0xd0000000:5`.
impl fmt::Display for MmioDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{MMIO_DEVICE_KEY}=")?;
        if self.size % 1024 == 0 {
            write!(f, "{}K", self.size / 1024)?;
        } else {
            write!(f, "{}", self.size)?;
        }
        write!(f, "@{:#x}:{}", self.base, self.irq)
    }
}

/// A decimal or `0x` hexadecimal number.
fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// A number with an optional K/M/G suffix (Linux's `memparse`).
fn parse_size(text: &str) -> Option<u64> {
    let (digits, shift) = match text.as_bytes().last()? {
        b'k' | b'K' => (text.get(..text.len() - 1)?, 10),
        b'm' | b'M' => (text.get(..text.len() - 1)?, 20),
        b'g' | b'G' => (text.get(..text.len() - 1)?, 30),
        _ => (text, 0),
    };
    parse_number(digits)?.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_linux_forms() {
        let d = MmioDevice {
            size: 4096,
            base: 0xd000_0000,
            irq: 5,
        };
        assert_eq!(MmioDevice::parse("4K@0xd0000000:5"), Ok(d));
        assert_eq!(MmioDevice::parse("0x1000@0xd0000000:5"), Ok(d));
        assert_eq!(MmioDevice::parse("4096@3489660928:5:2"), Ok(d));
        assert_eq!(
            MmioDevice::parse("512@0xfeb00000:12"),
            Ok(MmioDevice {
                size: 512,
                base: 0xfeb0_0000,
                irq: 12
            })
        );
        for bad in [
            "",
            "4K",
            "4K@0xd0000000",
            "4K@zz:5",
            "0@0x1000:5",
            "4Q@0x1:5",
            "4K@1:x",
        ] {
            assert_eq!(
                MmioDevice::parse(bad),
                Err(MmioDeviceError { value: bad }),
                "{bad}"
            );
        }
    }

    #[test]
    fn display_round_trips_and_find_picks_every_entry() {
        let d = MmioDevice {
            size: 4096,
            base: 0xd000_0000,
            irq: 5,
        };
        assert_eq!(d.to_string(), "virtio_mmio.device=4K@0xd0000000:5");
        let odd = MmioDevice { size: 512, ..d };
        let line = std::format!("console=ttyS0 {d} vclab.kernel=io {odd} virtio_mmio.device=x");
        let found: std::vec::Vec<_> = MmioDevice::find(&line).collect();
        assert_eq!(found.len(), 3);
        assert_eq!(found[0], Ok(d));
        assert_eq!(found[1], Ok(odd));
        assert!(found[2].is_err());
        assert!(found[2]
            .unwrap_err()
            .to_string()
            .contains("virtio_mmio.device=x"));
    }

    #[test]
    fn the_guest_command_line_names_the_io_kernel() {
        use crate::cmdline::{GuestCmdline, Mode};
        use crate::params::{Kernel, Params};
        let line = "virtio_mmio.device=4K@0xd0000000:5 vclab.kernel=io vclab.size=8192";
        let c = GuestCmdline::parse(line).unwrap();
        assert_eq!(c.mode, Some(Mode::Run(Kernel::Io)));
        let p = c.params().unwrap();
        assert_eq!(
            (p.size, p.iterations),
            (8192, Params::new(Kernel::Io).iterations)
        );
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(MmioDevice::find(line).count(), 1);
    }

    #[test]
    fn rates() {
        let s = IoStats {
            seq_bytes: 2_000_000,
            seq_ns: 1_000_000,
            rand_reads: 500,
            rand_ns: 250_000_000,
            ..IoStats::default()
        };
        assert_eq!(s.seq_mb_s(), Some(2000.0));
        assert_eq!(s.rand_iops(), Some(2000.0));
        assert_eq!(IoStats::default().seq_mb_s(), None);
        assert_eq!(IoStats::default().rand_iops(), None);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_names_and_optional_direct() {
        let s = IoStats {
            seq_bytes: 1,
            direct: Some(false),
            ..IoStats::default()
        };
        let json = serde_json::to_string(&s).unwrap();
        assert!(
            json.starts_with("{\"seq_bytes\":1,\"seq_ns\":0,\"rand_reads\":0,"),
            "{json}"
        );
        assert!(
            json.ends_with(",\"write_p99_ns\":0,\"direct\":false}"),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<IoStats>(&json).unwrap(), s);
        let guest = json.replace(",\"direct\":false", "");
        let back: IoStats = serde_json::from_str(&guest).unwrap();
        assert_eq!(back.direct, None);
    }
}
