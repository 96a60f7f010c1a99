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
    }
}
