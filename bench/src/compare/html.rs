//! `report.html`: one self-contained page (inline CSS, inline SVG plots, no
//! scripts, no network) that opens offline.

use super::course;
use super::export::hosts::{self, HostRun};
use super::isolation::summary as isolation;
use super::plots::Plot;
use super::record::Results;
use super::table;

/// The reports' style sheet (compare and density).
pub const CSS: &str = "body{font-family:sans-serif;margin:24px;color:#222;max-width:1300px}\
h1{font-size:24px}h2{font-size:19px;margin-top:28px}\
table{border-collapse:collapse;font-size:13px;margin:8px 0}\
th,td{border:1px solid #bbb;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#e8eef6}tr:nth-child(even) td{background:#f7f7f7}\
td.failed{color:#b00;font-weight:bold}.host{font-size:14px;line-height:1.5}\
figure{margin:12px 0}figcaption{font-size:13px;color:#555}";

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The table's legend: what each kind of figure is.
fn legend() -> String {
    let mut out = String::from("<p>What the figures are:</p><ul id=\"legend\">");
    for (what, meaning) in table::LEGEND {
        out += &format!("<li><b>{}</b>: {}.</li>", escape(what), escape(meaning));
    }
    out + "</ul>\n"
}

/// An HTML table with `id`; cells starting with FAILED are marked.
pub fn html_table(headers: &[&str], rows: &[Vec<String>], id: &str) -> String {
    let mut out = format!("<table id=\"{id}\"><thead><tr>");
    for h in headers {
        out += &format!("<th>{}</th>", escape(h));
    }
    out += "</tr></thead><tbody>\n";
    for r in rows {
        out += "<tr>";
        for c in r {
            let class = if c.starts_with("FAILED") {
                " class=\"failed\""
            } else {
                ""
            };
            out += &format!("<td{class}>{}</td>", escape(c));
        }
        out += "</tr>\n";
    }
    out += "</tbody></table>\n";
    out
}

/// Strips the XML declaration so the SVG can sit inline in HTML.
/// An SVG file's `<svg>` element, for inlining in a page.
pub fn inline_svg(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

/// The whole page for `r` with its `plots`.
pub fn render(r: &Results, plots: &[Plot]) -> String {
    let h = &r.host;
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out += &format!(
        "<title>vclab compare {}</title><style>{CSS}</style></head><body>\n",
        escape(&r.started_utc)
    );
    out += &format!("<h1>vclab compare, {}</h1>\n", escape(&r.started_utc));
    out += "<div class=\"host\">";
    out += &format!(
        "<b>Host</b>: {} ({} CPUs, {} MiB), kernel {}<br>",
        escape(&h.cpu_model),
        h.cores,
        h.memory_mib,
        escape(&h.kernel)
    );
    out += &format!(
        "<b>KVM</b>: {} — {}<br><b>cgroups</b>: {}<br>",
        escape(&h.kvm_name()),
        escape(&h.kvm_explanation),
        escape(&h.cgroup_name())
    );
    let peers: Vec<String> = h
        .peers
        .iter()
        .map(|p| match &p.version {
            Some(v) => format!("{} ({})", p.name, v),
            None if p.path.is_some() => p.name.clone(),
            None => format!("{} (not installed)", p.name),
        })
        .collect();
    out += &format!(
        "<b>Peers</b>: {}<br><b>vclab</b> {}<br>",
        escape(&peers.join(", ")),
        escape(&h.vclab_version)
    );
    out += &format!(
        "<b>Host noise during the run</b>: {}<br>",
        escape(
            h.noise
                .as_ref()
                .map_or("not recorded".to_string(), |n| n.describe())
                .as_str()
        )
    );
    out += &format!("<b>Method</b>: {}.", escape(&table::method(r)));
    out += "</div>\n<h2>Results</h2>\n";
    let rows: Vec<Vec<String>> = table::shown_cases(r)
        .into_iter()
        .map(table::cells)
        .collect();
    out += &html_table(table::HEADERS, &rows, "results");
    out += &legend();
    let skipped = table::skipped_lines(r);
    if !skipped.is_empty() {
        out += "<p>Not run on this host:</p><ul id=\"skipped\">";
        for (rt, kernels, why) in skipped {
            out += &format!(
                "<li><b>{}</b> ({}): {}</li>",
                escape(&rt),
                escape(&kernels),
                escape(&why)
            );
        }
        out += "</ul>\n";
    }
    out += "<p>Start latency means:</p><ul>";
    for (rows, meaning) in table::start_meaning() {
        out += &format!("<li><b>{}</b>: {}.</li>", escape(&rows), escape(meaning));
    }
    out += "</ul>\n";
    let io_rows = super::io_table::rows(r);
    if !io_rows.is_empty() {
        out += "<h2>The io kernel</h2>\n";
        out += &html_table(super::io_table::HEADERS, &io_rows, "io");
        out += &format!("<p>{}</p>\n", escape(super::io_table::NOTE));
    }
    out += "<h2>Plots</h2>\n";
    for p in plots {
        out += &format!(
            "<figure>{}<figcaption>{} ({})</figcaption></figure>\n",
            inline_svg(&p.svg),
            escape(p.title),
            escape(p.file)
        );
    }
    out += "<h2>The course's table, measured</h2>\n";
    let rows: Vec<Vec<String>> = course::course_table(r)
        .into_iter()
        .map(course::CourseLine::cells)
        .collect();
    out += &html_table(course::HEADERS, &rows, "course");
    if let Some(iso) = &r.isolation {
        out += "<h2>Isolation</h2>\n";
        out += &html_table(isolation::HEADERS, &isolation::table(iso), "isolation");
        out += &format!("<p>{}</p>\n", escape(isolation::METHOD));
    }
    out += "</body></html>\n";
    out
}

/// The page comparing several results directories (one per host, say):
/// the hosts table, then the same rows side by side.
pub fn render_hosts(runs: &[HostRun]) -> String {
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out += &format!(
        "<title>vclab report: {} results compared</title><style>{CSS}</style></head><body>\n",
        runs.len()
    );
    out += &format!("<h1>vclab report: {} results compared</h1>\n", runs.len());
    out += &format!("<p class=\"host\">{}.</p>\n", escape(hosts::METHOD));
    out += "<h2>Hosts</h2>\n";
    out += &html_table(hosts::HOST_HEADERS, &hosts::host_rows(runs), "hosts");
    out += "<h2>The same rows on each host</h2>\n";
    let headers = hosts::row_headers(runs);
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    out += &html_table(&headers, &hosts::row_cells(runs), "rows");
    out += &legend();
    out += "</body></html>\n";
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn strips_xml_declaration() {
        assert_eq!(inline_svg("<?xml version=\"1.0\"?>\n<svg a>"), "<svg a>");
    }
}
