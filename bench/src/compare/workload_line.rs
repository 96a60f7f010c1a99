//! The workload's JSON result line (DESIGN.md, "Workload JSON line") and the
//! checks every run's line must pass.

use serde::Deserialize;

use super::record::WorkloadSpec;

/// One parsed result line.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct WorkloadLine {
    /// Kernel name.
    pub kernel: String,
    /// Working-set size, bytes.
    pub size: u64,
    /// Iterations.
    pub iterations: u64,
    /// Seed.
    pub seed: u64,
    /// Checksum, hex.
    pub checksum: String,
    /// Operations done.
    pub ops: u64,
    /// The workload's own timing, ns (0 when the guest had no clock).
    pub elapsed_ns: u64,
    /// CLOCK_MONOTONIC at process entry (0 in the unikernel).
    pub start_monotonic_ns: u64,
    /// CPU time of the kernel, ns (0 in the unikernel; absent from older workloads).
    #[serde(default)]
    pub cpu_ns: u64,
    /// The io kernel's throughput and latency (absent from the other kernels' lines).
    #[serde(default)]
    pub io: Option<vclab_contract::io::IoStats>,
}

impl WorkloadLine {
    /// The first line among `lines` that parses as a workload result line.
    pub fn find<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        lines.into_iter().find_map(|l| {
            let l = l.trim();
            let start = l.find("{\"kernel\"")?;
            serde_json::from_str(&l[start..]).ok()
        })
    }

    /// Checks that the line answers `spec` (same kernel and parameters).
    pub fn check(&self, spec: &WorkloadSpec) -> Result<(), String> {
        if self.kernel != spec.kernel
            || self.size != spec.size
            || self.iterations != spec.iterations
            || self.seed != spec.seed
        {
            return Err(format!(
                "the workload ran {} size {} iterations {} seed {}, not the requested {} size {} iterations {} seed {}",
                self.kernel, self.size, self.iterations, self.seed,
                spec.kernel, spec.size, spec.iterations, spec.seed
            ));
        }
        Ok(())
    }

    /// ops per second of the workload's own timing, when it had a clock.
    pub fn score(&self) -> Option<f64> {
        (self.elapsed_ns > 0).then(|| self.ops as f64 * 1e9 / self.elapsed_ns as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_checks_the_line() {
        let lines = [
            "vclab-init: starting",
            "{\"ready\":true}",
            "{\"kernel\":\"cpu\",\"size\":4096,\"iterations\":2,\"seed\":1,\"checksum\":\"ab12\",\"ops\":8192,\"elapsed_ns\":1000000,\"start_monotonic_ns\":5}",
            "{\"report\":1}",
        ];
        let w = WorkloadLine::find(lines).unwrap();
        assert_eq!(w.checksum, "ab12");
        assert_eq!(w.score(), Some(8192.0 * 1000.0));
        let spec = WorkloadSpec {
            kernel: "cpu".into(),
            size: 4096,
            iterations: 2,
            seed: 1,
        };
        assert!(w.check(&spec).is_ok());
        let other = WorkloadSpec { seed: 2, ..spec };
        assert!(w.check(&other).is_err());
        assert!(WorkloadLine::find(["nothing", "{\"kernel\":1}"]).is_none());
        assert_eq!(w.io, None);
    }

    #[test]
    fn the_io_kernels_line_carries_its_stats() {
        let line = "{\"kernel\":\"io\",\"size\":16777216,\"iterations\":1024,\"seed\":1,\"checksum\":\"468edc98\",\"ops\":5000,\"elapsed_ns\":2000000,\"start_monotonic_ns\":5,\"cpu_ns\":10,\"io\":{\"seq_bytes\":15728640,\"seq_ns\":1000000,\"rand_reads\":1024,\"rand_ns\":512000,\"rand_p50_ns\":400,\"rand_p99_ns\":900,\"writes\":64,\"write_ns\":64000,\"write_p50_ns\":1000,\"write_p99_ns\":2000,\"direct\":true}}";
        let w = WorkloadLine::find([line]).unwrap();
        let io = w.io.unwrap();
        assert_eq!(io.rand_p99_ns, 900);
        assert_eq!(io.direct, Some(true));
        assert_eq!(io.rand_iops(), Some(2_000_000.0));
        // A guest's line has no "direct".
        let guest = line.replace(",\"direct\":true", "");
        assert_eq!(
            WorkloadLine::find([guest.as_str()])
                .unwrap()
                .io
                .unwrap()
                .direct,
            None
        );
    }
}
