//! The comparison of several results directories, typically one per host
//! (`vclab report DIR1 DIR2 …`): the same runtime × kernel rows side by side,
//! each host's median with its 95 % CI, and each host's record (KVM kind, CPU,
//! cores, noise during its run). Nothing is divided across hosts: the runs of
//! two machines are not paired, and their figures are shown, not blended.

use crate::compare::record::{Case, Results, Status};
use crate::compare::stats::Summary;
use crate::compare::table;
use crate::runtime::RuntimeId;

use super::markdown::{capitalise, md_table};

/// File names the comparison writes into its directory.
pub const MARKDOWN_FILE: &str = "hosts.md";
/// The comparison's CSV (one line per host × runtime × kernel).
pub const CSV_FILE: &str = "hosts.csv";
/// The comparison's HTML page.
pub const HTML_FILE: &str = "report.html";

/// One results directory in the comparison.
#[derive(Debug, Clone)]
pub struct HostRun {
    /// Its short name in column titles (the directory's name, made unique).
    pub label: String,
    /// The directory it was read from, as given.
    pub dir: String,
    /// Its record, summarised.
    pub results: Results,
}

/// Column titles of the hosts table.
pub const HOST_HEADERS: &[&str] = &[
    "host",
    "results",
    "measured (UTC)",
    "CPU",
    "cores",
    "memory MiB",
    "kernel",
    "KVM",
    "cgroups",
    "vclab",
    "runs per case",
    "host noise during the run",
];

/// One line per host: what machine, and how busy it was.
pub fn host_rows(runs: &[HostRun]) -> Vec<Vec<String>> {
    runs.iter()
        .map(|run| {
            let (r, h) = (&run.results, &run.results.host);
            vec![
                run.label.clone(),
                run.dir.clone(),
                r.started_utc.clone(),
                h.cpu_model.clone(),
                h.cores.to_string(),
                h.memory_mib.to_string(),
                h.kernel.clone(),
                h.kvm_name(),
                h.cgroup_name(),
                h.vclab_version.clone(),
                format!("{} warm-up + {}", r.config.warmup, r.config.runs),
                h.noise
                    .as_ref()
                    .map_or_else(|| "not recorded".to_string(), |n| n.describe()),
            ]
        })
        .collect()
}

/// The figures shown per host and row.
const PER_HOST: &[&str] = &[
    "start ms: median [95 % CI]",
    "score Mops/s: median [95 % CI]",
    "score vs bare [95 % CI]",
];

/// Column titles of the rows table: runtime, kernel, then [`PER_HOST`] for each host.
pub fn row_headers(runs: &[HostRun]) -> Vec<String> {
    let mut h = vec!["runtime".to_string(), "kernel".to_string()];
    for run in runs {
        h.extend(PER_HOST.iter().map(|f| format!("{}: {f}", run.label)));
    }
    h
}

/// The runtime × kernel pairs of all hosts, in first-seen order, leaving out
/// those skipped on every host.
fn row_keys(runs: &[HostRun]) -> Vec<(RuntimeId, String)> {
    let mut keys: Vec<(RuntimeId, String)> = Vec::new();
    for c in runs.iter().flat_map(|r| &r.results.cases) {
        let key = (c.runtime, c.kernel.clone());
        if c.status != Status::Skipped && !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

fn med_ci(s: Option<Summary>, decimals: usize, scale: f64) -> String {
    s.map_or_else(String::new, |s| {
        format!(
            "{:.d$} [{:.d$}, {:.d$}]",
            s.median / scale,
            s.ci_low / scale,
            s.ci_high / scale,
            d = decimals
        )
    })
}

/// The [`PER_HOST`] cells of one host's case (or why it has none).
fn host_cells(case: Option<&Case>) -> [String; 3] {
    let Some(c) = case else {
        return ["not run".into(), String::new(), String::new()];
    };
    let s = c.summary.as_ref();
    let start = match (c.status, s) {
        (Status::Skipped, _) => "skipped".to_string(),
        (Status::Failed, _) => "FAILED".to_string(),
        (Status::Measured, s) => med_ci(s.and_then(|s| s.start_latency_ms), 2, 1.0),
    };
    [
        start,
        med_ci(s.and_then(|s| s.score_ops_per_s), 2, 1e6),
        s.and_then(|s| s.score_vs_bare.as_ref().map(table::ratio_cell))
            .unwrap_or_default(),
    ]
}

/// One line per runtime × kernel, each host's figures side by side.
pub fn row_cells(runs: &[HostRun]) -> Vec<Vec<String>> {
    row_keys(runs)
        .into_iter()
        .map(|(rt, k)| {
            let mut line = vec![rt.name().to_string(), k.clone()];
            for run in runs {
                line.extend(host_cells(run.results.case(rt, &k)));
            }
            line
        })
        .collect()
}

/// What the comparison shows, in one paragraph.
pub const METHOD: &str = "each host's figures come from its own results.json, summarised the same way: \
    medians with a percentile-bootstrap 95 % CI [in brackets]; score vs bare is each host's own ratio \
    (paired per round where its runs say their round). Figures are not divided across hosts: runs on \
    different machines are not paired, and the hosts' noise differs (see the hosts table)";

/// The comparison in Markdown.
pub fn markdown(runs: &[HostRun]) -> String {
    let mut out = format!("# vclab report: {} results compared\n\n", runs.len());
    out += &format!("{}.\n\n", capitalise(METHOD));
    out += "## Hosts\n\n";
    out += &md_table(HOST_HEADERS, &host_rows(runs));
    out += "\n## The same rows on each host\n\n";
    let headers = row_headers(runs);
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    out += &md_table(&headers, &row_cells(runs));
    out += "\nWhat the figures are:\n\n";
    for (what, meaning) in table::LEGEND {
        out += &format!("- {what}: {meaning}.\n");
    }
    out
}

const CSV_HEADER: &[&str] = &[
    "host",
    "results",
    "cpu_model",
    "cores",
    "kvm",
    "steal_pct",
    "runtime",
    "kernel",
    "status",
    "runs",
    "start_latency_median_ms",
    "start_latency_median_ci95_low_ms",
    "start_latency_median_ci95_high_ms",
    "score_median_ops_per_s",
    "score_median_ci95_low_ops_per_s",
    "score_median_ci95_high_ops_per_s",
    "score_vs_bare",
    "score_vs_bare_ci95_low",
    "score_vs_bare_ci95_high",
    "score_vs_bare_method",
];

fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// The comparison as CSV: one line per host × runtime × kernel.
pub fn csv(runs: &[HostRun]) -> String {
    use super::fmt_opt;
    let mut out = CSV_HEADER.join(",") + "\n";
    for run in runs {
        let h = &run.results.host;
        for c in &run.results.cases {
            let s = c.summary.as_ref();
            let start = s.and_then(|s| s.start_latency_ms);
            let score = s.and_then(|s| s.score_ops_per_s);
            let ratio = s
                .and_then(|s| s.score_vs_bare)
                .filter(|r| r.v1_error.is_none());
            let status = match c.status {
                Status::Measured => "measured",
                Status::Skipped => "skipped",
                Status::Failed => "failed",
            };
            let fields = [
                run.label.clone(),
                run.dir.clone(),
                h.cpu_model.clone(),
                h.cores.to_string(),
                h.kvm_name(),
                fmt_opt(h.noise.as_ref().and_then(|n| n.steal_pct), 2),
                c.runtime.name().to_string(),
                c.kernel.clone(),
                status.to_string(),
                c.samples.len().to_string(),
                fmt_opt(start.map(|x| x.median), 3),
                fmt_opt(start.map(|x| x.ci_low), 3),
                fmt_opt(start.map(|x| x.ci_high), 3),
                fmt_opt(score.map(|x| x.median), 0),
                fmt_opt(score.map(|x| x.ci_low), 0),
                fmt_opt(score.map(|x| x.ci_high), 0),
                fmt_opt(ratio.map(|r| r.value), 4),
                fmt_opt(ratio.map(|r| r.ci_low), 4),
                fmt_opt(ratio.map(|r| r.ci_high), 4),
                ratio
                    .map(|r| if r.paired { "paired" } else { "unpaired" })
                    .unwrap_or_default()
                    .to_string(),
            ];
            out += &fields
                .iter()
                .map(|f| quote(f))
                .collect::<Vec<_>>()
                .join(",");
            out.push('\n');
        }
    }
    out
}

/// Short, unique labels for `dirs`: each directory's last component, with
/// `#2`, `#3`… appended to repeats.
pub fn labels(dirs: &[std::path::PathBuf]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in dirs {
        let base = d.file_name().map_or_else(
            || d.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut label = base.clone();
        let mut i = 2;
        while out.contains(&label) {
            label = format!("{base}#{i}");
            i += 1;
        }
        out.push(label);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn labels_are_unique_directory_names() {
        let dirs = ["results/a", "other/a", "b/", "/x/c"].map(PathBuf::from);
        assert_eq!(labels(&dirs), ["a", "a#2", "b", "c"]);
    }
}
