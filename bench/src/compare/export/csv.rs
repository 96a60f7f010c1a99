//! `results.csv`: one line per runtime × kernel with the summaries (units in
//! the column names).

use super::{fmt_opt, ExportError, Exporter};
use crate::compare::record::{Results, Status};
use crate::compare::stats::Summary;

/// Writes one CSV line per case.
pub struct CsvExporter;

const HEADER: &[&str] = &[
    "runtime",
    "kernel",
    "status",
    "runs",
    "start_latency_median_ms",
    "start_latency_stddev_ms",
    "start_latency_min_ms",
    "start_latency_max_ms",
    "total_median_ms",
    "score_median_ops_per_s",
    "score_vs_bare",
    "score_vs_bare_error",
    "peak_rss_median_mib",
    "peak_pss_median_mib",
    "memory_overhead_median_mib",
    "cpu_time_median_ms",
    "cpu_overhead_median_ms",
    "cgroup_attach_median_ms",
    "start_vs_peer",
    "start_vs_peer_error",
    "peer",
    "outlier_runs",
    "start_marker",
    "reason",
];

fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

fn med(s: Option<Summary>) -> Option<f64> {
    s.map(|s| s.median)
}

impl Exporter for CsvExporter {
    fn file_name(&self) -> &'static str {
        "results.csv"
    }

    fn serialize(&self, results: &Results) -> Result<Vec<u8>, ExportError> {
        let mut out = HEADER.join(",");
        out.push('\n');
        for c in &results.cases {
            let s = c.summary.as_ref();
            let start = s.and_then(|s| s.start_latency_ms);
            let status = match c.status {
                Status::Measured => "measured",
                Status::Skipped => "skipped",
                Status::Failed => "failed",
            };
            let fields = [
                c.runtime.clone(),
                c.kernel.clone(),
                status.to_string(),
                c.samples.len().to_string(),
                fmt_opt(start.map(|x| x.median), 3),
                fmt_opt(start.map(|x| x.stddev), 3),
                fmt_opt(start.map(|x| x.min), 3),
                fmt_opt(start.map(|x| x.max), 3),
                fmt_opt(med(s.and_then(|s| s.total_ms)), 3),
                fmt_opt(med(s.and_then(|s| s.score_ops_per_s)), 0),
                fmt_opt(s.and_then(|s| s.score_vs_bare).map(|r| r.value), 4),
                fmt_opt(s.and_then(|s| s.score_vs_bare).map(|r| r.error), 4),
                fmt_opt(med(s.and_then(|s| s.peak_rss_mib)), 2),
                fmt_opt(med(s.and_then(|s| s.peak_pss_mib)), 2),
                fmt_opt(med(s.and_then(|s| s.memory_overhead_mib)), 2),
                fmt_opt(med(s.and_then(|s| s.cpu_time_ms)), 2),
                fmt_opt(med(s.and_then(|s| s.cpu_overhead_ms)), 2),
                fmt_opt(med(s.and_then(|s| s.cgroup_attach_ms)), 3),
                fmt_opt(s.and_then(|s| s.start_vs_peer).map(|r| r.value), 4),
                fmt_opt(s.and_then(|s| s.start_vs_peer).map(|r| r.error), 4),
                s.and_then(|s| s.peer.clone()).unwrap_or_default(),
                s.map(|s| {
                    s.outlier_runs
                        .iter()
                        .map(|i| i.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default(),
                c.start_marker.clone().unwrap_or_default(),
                c.reason.clone().unwrap_or_default(),
            ];
            let line: Vec<String> = fields.iter().map(|f| quote(f)).collect();
            out += &line.join(",");
            out.push('\n');
        }
        Ok(out.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"x\""), "\"say \"\"x\"\"\"");
    }
}
