//! The io kernel's table, as cells of text for the terminal, Markdown and HTML: per row that ran
//! it, sequential MB/s, random 4 KiB read IOPS, random-read p50/p99 and write p50 latency, each a
//! median (min–max, n) over the measured runs, with the throughput ratios to bare and to QEMU
//! microvm (paired per round), the disk path and its host cache mode.

use super::record::{Case, Results, Sample, Status};
use super::stats::{ratio_of, Summary};
use crate::runtime::RuntimeId;
use vclab_contract::io::IoStats;

/// The io kernel's name.
pub const KERNEL: &str = "io";

/// Column titles.
pub const HEADERS: &[&str] = &[
    "runtime",
    "disk path, host cache",
    "seq read MB/s",
    "seq vs bare",
    "seq vs QEMU",
    "rand 4 KiB read IOPS",
    "IOPS vs bare",
    "IOPS vs QEMU",
    "rand read p50 µs",
    "rand read p99 µs",
    "write p50 µs",
    "O_DIRECT",
];

/// What the table's figures are.
pub const NOTE: &str = "each figure the median (min–max, n) of the measured runs; ratios are \
    medians of per-round ratios (above 1 = faster than the other row); queue depth 1; every run \
    rewrites the same scratch blocks with the same data, so each run reads the same bytes";

/// How a row reaches the image, and through which host cache.
pub fn disk_path(id: RuntimeId) -> &'static str {
    match id {
        RuntimeId::Bare => "the image file (O_DIRECT where the file system allows)",
        RuntimeId::Container | RuntimeId::Crun | RuntimeId::Runc => {
            "the image bind-mounted at /dev/vclab-io.img (O_DIRECT where allowed)"
        }
        RuntimeId::MicrovmUnikernel | RuntimeId::MicrovmUnikernelUart => {
            "virtio-blk (mmio v2, polled) → vclab-vmm pread/pwrite on the image opened O_DIRECT (--disk …,direct)"
        }
        RuntimeId::QemuMicrovm => {
            "virtio-blk (mmio v2) → QEMU -drive cache=none (O_DIRECT)"
        }
        _ => "virtio-blk",
    }
}

/// A figure of one run's io stats.
type Figure = fn(&IoStats) -> Option<f64>;

fn seq_mb_s(s: &IoStats) -> Option<f64> {
    s.seq_mb_s()
}

fn iops(s: &IoStats) -> Option<f64> {
    s.rand_iops()
}

fn us(ns: u64) -> Option<f64> {
    (ns > 0).then(|| ns as f64 / 1e3)
}

/// `(round, figure)` of each run of `c` that has it.
fn figures(c: &Case, f: Figure) -> Vec<(Option<u32>, f64)> {
    c.samples
        .iter()
        .filter_map(|s: &Sample| Some((s.round, f(s.io.as_ref()?)?)))
        .collect()
}

/// `median (min–max, n)`.
fn spread(c: &Case, f: Figure, decimals: usize) -> String {
    let xs: Vec<f64> = figures(c, f).into_iter().map(|(_, x)| x).collect();
    match Summary::of(&xs) {
        Some(s) => format!(
            "{:.d$} ({:.d$}–{:.d$}, {})",
            s.median,
            s.min,
            s.max,
            xs.len(),
            d = decimals
        ),
        None => "–".into(),
    }
}

/// This row's figure over `other`'s, paired per round.
fn ratio(c: &Case, other: Option<&Case>, f: Figure) -> String {
    match other {
        Some(o) if o.runtime == c.runtime => "1".into(),
        Some(o) => ratio_of(&figures(c, f), &figures(o, f))
            .map_or_else(|| "–".into(), |r| format!("{:.2}", r.value)),
        None => "–".into(),
    }
}

/// `yes`, `no (buffered)`, `mixed`, or `–` (a guest's disk is a device).
fn direct(c: &Case) -> String {
    let seen: Vec<bool> = c
        .samples
        .iter()
        .filter_map(|s| s.io.as_ref()?.direct)
        .collect();
    match (seen.iter().all(|d| *d), seen.iter().any(|d| *d)) {
        _ if seen.is_empty() => "– (guest device)".into(),
        (true, _) => "yes".into(),
        (false, false) => "no (buffered)".into(),
        _ => "mixed".into(),
    }
}

/// The measured io cases, in row order.
fn io_cases(r: &Results) -> Vec<&Case> {
    r.cases
        .iter()
        .filter(|c| c.kernel == KERNEL && c.status == Status::Measured)
        .filter(|c| c.samples.iter().any(|s| s.io.is_some()))
        .collect()
}

/// One row of cells per runtime that measured the io kernel (none: no table).
pub fn rows(r: &Results) -> Vec<Vec<String>> {
    let cases = io_cases(r);
    let find = |id| cases.iter().copied().find(|c| c.runtime == id);
    let (bare, qemu) = (find(RuntimeId::Bare), find(RuntimeId::QemuMicrovm));
    cases
        .iter()
        .map(|c| {
            vec![
                c.runtime.to_string(),
                disk_path(c.runtime).to_string(),
                spread(c, seq_mb_s, 1),
                ratio(c, bare, seq_mb_s),
                ratio(c, qemu, seq_mb_s),
                spread(c, iops, 0),
                ratio(c, bare, iops),
                ratio(c, qemu, iops),
                spread(c, |s| us(s.rand_p50_ns), 1),
                spread(c, |s| us(s.rand_p99_ns), 1),
                spread(c, |s| us(s.write_p50_ns), 1),
                direct(c),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::record::RunConfig;
    use crate::host::HostRecord;

    fn stats(seq_ns: u64, rand_ns: u64, direct: Option<bool>) -> IoStats {
        IoStats {
            seq_bytes: 16_000_000,
            seq_ns,
            rand_reads: 1000,
            rand_ns,
            rand_p50_ns: rand_ns / 1000,
            rand_p99_ns: rand_ns / 500,
            writes: 64,
            write_ns: 640_000,
            write_p50_ns: 10_000,
            write_p99_ns: 20_000,
            direct,
        }
    }

    fn case(rt: RuntimeId, runs: &[(u64, u64)], direct: Option<bool>) -> Case {
        Case {
            runtime: rt,
            kernel: KERNEL.into(),
            status: Status::Measured,
            reason: None,
            start_marker: None,
            samples: runs
                .iter()
                .enumerate()
                .map(|(i, (seq, rand))| Sample {
                    round: Some(i as u32),
                    io: Some(stats(*seq, *rand, direct)),
                    ..Sample::default()
                })
                .collect(),
            summary: None,
            failure: None,
        }
    }

    fn results(cases: Vec<Case>) -> Results {
        Results {
            version: crate::compare::record::FORMAT_VERSION,
            started_utc: "2026-12-01T00:00:00Z".into(),
            host: HostRecord::default(),
            config: RunConfig::default(),
            artifacts: vec![],
            cases,
            isolation: None,
            vm_snapshot: None,
        }
    }

    #[test]
    fn rows_give_medians_spreads_and_ratios() {
        let r = results(vec![
            // 16 MB in 10 ms = 1600 MB/s; 1000 reads in 10 ms = 100k IOPS.
            case(
                RuntimeId::Bare,
                &[
                    (10_000_000, 10_000_000),
                    (20_000_000, 10_000_000),
                    (10_000_000, 10_000_000),
                ],
                Some(true),
            ),
            case(
                RuntimeId::MicrovmUnikernel,
                &[
                    (20_000_000, 5_000_000),
                    (40_000_000, 5_000_000),
                    (20_000_000, 5_000_000),
                ],
                None,
            ),
            case(
                RuntimeId::QemuMicrovm,
                &[
                    (40_000_000, 20_000_000),
                    (80_000_000, 20_000_000),
                    (40_000_000, 20_000_000),
                ],
                None,
            ),
        ]);
        let rows = rows(&r);
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|row| row.len() == HEADERS.len()));
        let bare = &rows[0];
        assert_eq!(bare[0], "bare");
        assert_eq!(bare[2], "1600.0 (800.0–1600.0, 3)");
        assert_eq!(bare[3], "1");
        assert_eq!(bare[4], "4.00");
        assert_eq!(bare[5], "100000 (100000–100000, 3)");
        assert_eq!(bare[8], "10.0 (10.0–10.0, 3)");
        assert_eq!(bare[10], "10.0 (10.0–10.0, 3)");
        assert_eq!(bare[11], "yes");
        let uk = &rows[1];
        assert_eq!(uk[3], "0.50");
        assert_eq!(uk[6], "2.00");
        assert_eq!(uk[7], "4.00");
        assert_eq!(uk[11], "– (guest device)");
        assert!(uk[1].contains("O_DIRECT"));
        let qemu = &rows[2];
        assert_eq!(qemu[4], "1");
        assert_eq!(qemu[6], "0.50");
        assert!(qemu[1].contains("cache=none"));
    }

    #[test]
    fn no_io_runs_no_rows_and_buffered_is_said() {
        let mut skipped = case(RuntimeId::Crun, &[], None);
        skipped.status = Status::Skipped;
        assert!(rows(&results(vec![skipped])).is_empty());
        let r = results(vec![case(RuntimeId::Container, &[(1, 1)], Some(false))]);
        let rows = rows(&r);
        assert_eq!(rows[0][11], "no (buffered)");
        assert_eq!(rows[0][3], "–", "no bare row: no ratio");
    }
}
