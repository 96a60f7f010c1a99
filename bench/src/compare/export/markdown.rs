//! `results.md`: the host, the results table and the course table in Markdown.

use super::{ExportError, Exporter};
use crate::compare::course;
use crate::compare::isolation::summary as isolation;
use crate::compare::record::Results;
use crate::compare::table;

/// Writes the Markdown report.
pub struct MarkdownExporter;

fn escape(cell: &str) -> String {
    cell.replace('|', "\\|").replace('\n', " ")
}

/// `s` with its first letter in upper case.
pub fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A Markdown table.
pub fn md_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n", headers.join(" | "));
    out += &format!("|{}\n", "---|".repeat(headers.len()));
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| escape(c)).collect();
        out += &format!("| {} |\n", cells.join(" | "));
    }
    out
}

impl Exporter for MarkdownExporter {
    fn file_name(&self) -> &'static str {
        "results.md"
    }

    fn serialize(&self, r: &Results) -> Result<Vec<u8>, ExportError> {
        let h = &r.host;
        let mut out = format!("# vclab compare, {}\n\n", r.started_utc);
        out += &format!(
            "Host: {} ({} CPUs, {} MiB), kernel {}, KVM {}, cgroups {}, vclab {}.\n\n",
            h.cpu_model,
            h.cores,
            h.memory_mib,
            h.kernel,
            h.kvm_name(),
            h.cgroup_name(),
            h.vclab_version
        );
        out += &format!("{}.\n\n", capitalise(&h.noise_line()));
        out += &format!("Method: {}.\n\n", table::method(r));
        let rows: Vec<Vec<String>> = table::shown_cases(r)
            .into_iter()
            .map(table::cells)
            .collect();
        out += &md_table(table::HEADERS, &rows);
        out += "\nWhat the figures are:\n\n";
        for (what, meaning) in table::LEGEND {
            out += &format!("- {what}: {meaning}.\n");
        }
        let skipped = table::skipped_lines(r);
        if !skipped.is_empty() {
            out += "\nNot run on this host:\n\n";
            for (rt, kernels, why) in skipped {
                out += &format!("- {rt} ({kernels}): {why}\n");
            }
        }
        out += "\nStart latency means:\n\n";
        for (rows, meaning) in table::start_meaning() {
            out += &format!("- {rows}: {meaning}.\n");
        }
        let io_rows = crate::compare::io_table::rows(r);
        if !io_rows.is_empty() {
            out += "\n## The io kernel\n\n";
            out += &md_table(crate::compare::io_table::HEADERS, &io_rows);
            out += &format!("\n{}.\n", capitalise(crate::compare::io_table::NOTE));
        }
        out += "\n## The course's table, measured\n\n";
        let rows: Vec<Vec<String>> = course::course_table(r)
            .into_iter()
            .map(course::CourseLine::cells)
            .collect();
        out += &md_table(course::HEADERS, &rows);
        if let Some(iso) = &r.isolation {
            out += "\n## Isolation\n\n";
            out += &md_table(isolation::HEADERS, &isolation::table(iso));
            out += &format!("\n{}\n", isolation::METHOD);
        }
        Ok(out.into_bytes())
    }
}
