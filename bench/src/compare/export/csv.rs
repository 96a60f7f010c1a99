//! `results.csv`: one line per runtime × kernel with the summaries (units in
//! the column names; `_ci95_low`/`_ci95_high` are the ends of a 95 %
//! confidence interval: of the median for a figure, of the ratio for a ratio,
//! whose `_method` column says `paired` or `unpaired`).

use super::{fmt_opt, ExportError, Exporter};
use crate::compare::record::{Results, Status};
use crate::compare::stats::{Ratio, Summary};

/// Writes one CSV line per case.
pub struct CsvExporter;

const HEADER: &[&str] = &[
    "runtime",
    "kernel",
    "status",
    "runs",
    "start_latency_median_ms",
    "start_latency_median_ci95_low_ms",
    "start_latency_median_ci95_high_ms",
    "start_latency_stddev_ms",
    "start_latency_min_ms",
    "start_latency_max_ms",
    "total_median_ms",
    "score_median_ops_per_s",
    "score_median_ci95_low_ops_per_s",
    "score_median_ci95_high_ops_per_s",
    "score_vs_bare",
    "score_vs_bare_ci95_low",
    "score_vs_bare_ci95_high",
    "score_vs_bare_method",
    "score_vs_bare_n",
    "peak_rss_median_mib",
    "peak_pss_median_mib",
    "memory_overhead_median_mib",
    "cpu_time_median_ms",
    "cpu_overhead_median_ms",
    "cgroup_attach_median_ms",
    "start_vs_peer",
    "start_vs_peer_ci95_low",
    "start_vs_peer_ci95_high",
    "start_vs_peer_method",
    "start_vs_peer_n",
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

/// `paired`, `unpaired`, or `v1-propagated-stddev` for a ratio from a
/// version-1 file (whose CI columns are then empty).
fn method(r: &Ratio) -> &'static str {
    match (r.v1_error, r.paired) {
        (Some(_), _) => "v1-propagated-stddev",
        (None, true) => "paired",
        (None, false) => "unpaired",
    }
}

/// The five columns of a ratio: value, CI low, CI high, method, n.
fn ratio_fields(r: Option<Ratio>) -> [String; 5] {
    let Some(r) = r else {
        return Default::default();
    };
    let ci = |x: f64| {
        if r.v1_error.is_some() {
            String::new()
        } else {
            format!("{x:.4}")
        }
    };
    [
        format!("{:.4}", r.value),
        ci(r.ci_low),
        ci(r.ci_high),
        method(&r).to_string(),
        r.n.to_string(),
    ]
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
            let score = s.and_then(|s| s.score_ops_per_s);
            let mut fields = vec![
                c.runtime.name().to_string(),
                c.kernel.clone(),
                status.to_string(),
                c.samples.len().to_string(),
                fmt_opt(start.map(|x| x.median), 3),
                fmt_opt(start.map(|x| x.ci_low), 3),
                fmt_opt(start.map(|x| x.ci_high), 3),
                fmt_opt(start.map(|x| x.stddev), 3),
                fmt_opt(start.map(|x| x.min), 3),
                fmt_opt(start.map(|x| x.max), 3),
                fmt_opt(med(s.and_then(|s| s.total_ms)), 3),
                fmt_opt(med(score), 0),
                fmt_opt(score.map(|x| x.ci_low), 0),
                fmt_opt(score.map(|x| x.ci_high), 0),
            ];
            fields.extend(ratio_fields(s.and_then(|s| s.score_vs_bare)));
            fields.extend([
                fmt_opt(med(s.and_then(|s| s.peak_rss_mib)), 2),
                fmt_opt(med(s.and_then(|s| s.peak_pss_mib)), 2),
                fmt_opt(med(s.and_then(|s| s.memory_overhead_mib)), 2),
                fmt_opt(med(s.and_then(|s| s.cpu_time_ms)), 2),
                fmt_opt(med(s.and_then(|s| s.cpu_overhead_ms)), 2),
                fmt_opt(med(s.and_then(|s| s.cgroup_attach_ms)), 3),
            ]);
            fields.extend(ratio_fields(s.and_then(|s| s.start_vs_peer)));
            fields.extend([
                s.and_then(|s| s.peer)
                    .map(|p| p.name().to_string())
                    .unwrap_or_default(),
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
            ]);
            debug_assert_eq!(fields.len(), HEADER.len());
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
