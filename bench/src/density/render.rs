//! The render step of `vclab density`, a pure function of the saved
//! [`DensityRecord`]: density.json, density.csv (one row per step),
//! fits.csv (marginal cost per runtime and measure), rates.csv, SVG plots
//! (memory vs N per measure, launch latency vs N, rate vs concurrency) and
//! report.html. `vclab report DIR` calls the same function.

use std::path::Path;

use plotters::prelude::*;

use super::fit::{fit_ramp, Fit};
use super::measure::Measure;
use super::project::{self, Projection, Table};
use super::record::{DensityRecord, Ramp, FILE};
use crate::compare::export::{write_atomic, ExportError};
use crate::compare::html::{escape, html_table, inline_svg, CSS};
use crate::compare::stats;
use crate::runtime::RuntimeId;

/// Errors of the render step.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A file could not be written.
    #[error(transparent)]
    Write(#[from] ExportError),
    /// The record could not be serialised.
    #[error("cannot serialise the density record: {0}")]
    Json(serde_json::Error),
    /// plotters failed.
    #[error("cannot draw the plot {plot}: {message}")]
    Plot {
        /// The file.
        plot: String,
        /// plotters' message.
        message: String,
    },
}

/// A plot: file name, title, SVG text.
#[derive(Debug, Clone)]
pub struct Plot {
    /// File name.
    pub file: String,
    /// Title.
    pub title: String,
    /// The SVG document.
    pub svg: String,
}

const COLORS: [RGBColor; 8] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
];

/// What one idle instance of `rt` is, as the ramp holds it: the configuration its costs describe.
pub fn held_as(rt: RuntimeId) -> &'static str {
    match rt {
        RuntimeId::Bare => "`vclab-workload idle` as a child of the harness",
        RuntimeId::Container => "a detached vclab container (no launcher process kept) with new PID, mount, UTS, IPC, network (loopback only) and cgroup namespaces over an overlay of the lab rootfs; it has no limits, so no cgroup of its own: its memory is accounted in one shared `vclab` memory cgroup below the harness's",
        RuntimeId::Runc | RuntimeId::Crun => "`run --detach` of an OCI bundle over the same rootfs (PID, IPC, UTS, mount and network namespaces), a cgroup of its own in every controller, no runtime process kept",
        RuntimeId::MicrovmUnikernel | RuntimeId::MicrovmUnikernelUart | RuntimeId::MicrovmUnikernelRestore => "`vclab-vmm` running the unikernel in idle mode: 1 vCPU on the VMM's main thread, guest RAM on small pages",
        RuntimeId::QemuMicrovm | RuntimeId::Firecracker | RuntimeId::CloudHypervisor => "the peer VMM running the same unikernel in idle mode, 1 vCPU",
        RuntimeId::MicrovmLinux | RuntimeId::QemuMicrovmLinux | RuntimeId::VmDistro => "a Linux guest booted to its idle init",
    }
}

/// The ramps of `r` with their labels (`runtime`, `runtime (KSM)`).
fn ramps(r: &DensityRecord) -> Vec<(String, &Ramp)> {
    r.runtimes
        .iter()
        .flat_map(|rr| {
            rr.ramps.iter().map(move |ramp| {
                let label = if ramp.ksm {
                    format!("{} (KSM)", rr.runtime)
                } else {
                    rr.runtime.to_string()
                };
                (label, ramp)
            })
        })
        .collect()
}

/// A line chart of `series` (label, points).
fn line_plot(
    file: &str,
    caption: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<String, RenderError> {
    let err = |e: &dyn std::fmt::Display| RenderError::Plot {
        plot: file.to_string(),
        message: e.to_string(),
    };
    let pts = || series.iter().flat_map(|(_, p)| p.iter());
    let x_hi = pts().map(|p| p.0).fold(1.0, f64::max);
    let y_lo = pts().map(|p| p.1).fold(0.0, f64::min);
    let y_hi = pts().map(|p| p.1).fold(1e-3, f64::max);
    let pad = (y_hi - y_lo) * 0.08;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..x_hi * 1.02, (y_lo - pad)..(y_hi + pad))
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .draw()
            .map_err(|e| err(&e))?;
        for (i, (label, points)) in series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| err(&e))?
                .label(label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(|e| err(&e))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

/// Every plot of `r`.
pub fn plots(r: &DensityRecord) -> Result<Vec<Plot>, RenderError> {
    let mut out = Vec::new();
    for m in Measure::ALL {
        let series: Vec<(String, Vec<(f64, f64)>)> = ramps(r)
            .into_iter()
            .map(|(label, ramp)| {
                let pts = super::fit::points(ramp, m)
                    .into_iter()
                    .map(|(n, kib)| (n, kib / 1024.0))
                    .collect::<Vec<_>>();
                (label, pts)
            })
            .filter(|(_, p)| p.iter().any(|q| q.0 > 0.0))
            .collect();
        if series.is_empty() {
            continue;
        }
        let file = format!("memory_{}.svg", m.name());
        let svg = line_plot(
            &file,
            &format!("Memory vs idle instances: {}", m.name()),
            "idle instances held (N)",
            "MiB",
            &series,
        )?;
        out.push(Plot {
            file,
            title: format!("Memory vs N: {}", m.meaning()),
            svg,
        });
    }
    let latency: Vec<(String, Vec<(f64, f64)>)> = ramps(r)
        .into_iter()
        .map(|(label, ramp)| {
            let pts = ramp
                .steps
                .iter()
                .filter_map(|s| Some((f64::from(s.n), stats::median(&s.latencies_ms)?)))
                .collect();
            (label, pts)
        })
        .filter(|(_, p): &(String, Vec<(f64, f64)>)| !p.is_empty())
        .collect();
    if !latency.is_empty() {
        let file = "latency_vs_n.svg".to_string();
        let svg = line_plot(
            &file,
            "Launch latency to ready vs instances already held (median of each step)",
            "idle instances held (N)",
            "ms",
            &latency,
        )?;
        out.push(Plot {
            file,
            title: "Launch latency vs N: does it degrade as the host fills?".into(),
            svg,
        });
    }
    let rates: Vec<(String, Vec<(f64, f64)>)> = r
        .runtimes
        .iter()
        .filter(|rr| !rr.rates.is_empty())
        .map(|rr| {
            (
                rr.runtime.to_string(),
                rr.rates
                    .iter()
                    .map(|x| (f64::from(x.concurrency), x.per_s))
                    .collect(),
            )
        })
        .collect();
    if !rates.is_empty() {
        let file = "rate_vs_concurrency.svg".to_string();
        let svg = line_plot(
            &file,
            "Launch rate: instances ready per second vs concurrent launchers",
            "concurrent launchers",
            "instances ready per second",
            &rates,
        )?;
        out.push(Plot {
            file,
            title: "Launch rate vs concurrency".into(),
            svg,
        });
    }
    Ok(out)
}

fn opt(v: Option<f64>, d: usize) -> String {
    v.map_or_else(String::new, |x| format!("{x:.d$}"))
}

/// density.csv: one row per step of every ramp.
pub fn steps_csv(r: &DensityRecord) -> String {
    let mut out = String::from(
        "runtime,ksm,n,elapsed_s,mem_available_drop_kib,pss_kib,kernel_kib,anon_kib,cgroup_kib,processes,threads,host_processes,host_threads,launched,latency_median_ms,latency_max_ms,sampled,alive,oom_kills,ksm_pages_sharing\n",
    );
    for rr in &r.runtimes {
        for ramp in &rr.ramps {
            for s in &ramp.steps {
                let m = |x: Measure| opt(x.kib(&ramp.baseline, s), 0);
                out += &format!(
                    "{},{},{},{:.3},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                    rr.runtime,
                    ramp.ksm,
                    s.n,
                    s.elapsed_s,
                    m(Measure::MemAvailable),
                    m(Measure::Pss),
                    m(Measure::Kernel),
                    m(Measure::Anon),
                    m(Measure::Cgroup),
                    s.processes,
                    s.threads,
                    s.host_processes,
                    s.host_threads,
                    s.latencies_ms.len(),
                    opt(stats::median(&s.latencies_ms), 3),
                    opt(stats::max(&s.latencies_ms), 3),
                    s.sampled,
                    s.alive,
                    s.oom_kills,
                    s.ksm.map_or(String::new(), |k| k.pages_sharing.to_string()),
                );
            }
        }
    }
    out
}

/// fits.csv: the marginal cost per runtime, ramp and measure.
pub fn fits_csv(r: &DensityRecord) -> String {
    let mut out = String::from(
        "runtime,ksm,measure,points,slope_kib_per_instance,slope_se_kib,intercept_kib,intercept_se_kib,r2,max_n,stop\n",
    );
    for rr in &r.runtimes {
        for ramp in &rr.ramps {
            for m in Measure::ALL {
                let Some(f) = fit_ramp(ramp, m) else { continue };
                out += &format!(
                    "{},{},{},{},{:.2},{},{:.1},{},{},{},{}\n",
                    rr.runtime,
                    ramp.ksm,
                    m.name(),
                    f.points,
                    f.slope,
                    opt(f.slope_se, 2),
                    f.intercept,
                    opt(f.intercept_se, 1),
                    opt(f.r2, 4),
                    ramp.max_n,
                    ramp.stop.map_or("", |s| s.label()),
                );
            }
        }
    }
    out
}

/// rates.csv.
pub fn rates_csv(r: &DensityRecord) -> String {
    let mut out = String::from(
        "runtime,concurrency,launches,ready,seconds,per_s,latency_median_ms,failure\n",
    );
    for rr in &r.runtimes {
        for x in &rr.rates {
            out += &format!(
                "{},{},{},{},{:.3},{:.1},{},\"{}\"\n",
                rr.runtime,
                x.concurrency,
                x.launches,
                x.ready,
                x.seconds,
                x.per_s,
                opt(stats::median(&x.latencies_ms), 3),
                x.failure.as_deref().unwrap_or("").replace('"', "'"),
            );
        }
    }
    out
}

/// `slope ± SE` in MiB per instance, with the intercept.
fn fit_cell(f: Option<Fit>) -> String {
    match f {
        None => String::new(),
        Some(f) => {
            let se = f
                .slope_se
                .map_or(String::new(), |s| format!(" ± {:.3}", s / 1024.0));
            format!(
                "{:.3}{se} (intercept {:.1} MiB)",
                f.slope / 1024.0,
                f.intercept / 1024.0
            )
        }
    }
}

/// Headers of the marginal-cost table.
pub const COST_HEADERS: &[&str] = &[
    "runtime",
    "max N",
    "stopped because",
    "MemAvailable MiB/instance (± SE)",
    "PSS MiB/instance",
    "kernel MiB/instance",
    "anon MiB/instance",
    "cgroup MiB/instance",
    "launch latency median, first → last step (ms)",
    "tasks per instance",
    "launch rate (instances/s at concurrency)",
    "teardown",
];

/// The marginal-cost table's rows.
pub fn cost_rows(r: &DensityRecord) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for rr in &r.runtimes {
        if rr.skipped.is_some() {
            continue;
        }
        let rates = rr
            .rates
            .iter()
            .map(|x| {
                let f = if x.failure.is_some() {
                    " (stopped)"
                } else {
                    ""
                };
                format!("{:.0} at {}{f}", x.per_s, x.concurrency)
            })
            .collect::<Vec<_>>()
            .join(", ");
        for ramp in &rr.ramps {
            let name = if ramp.ksm {
                format!("{} (KSM on)", rr.runtime)
            } else {
                rr.runtime.to_string()
            };
            let lat =
                |s: Option<&super::record::Step>| s.and_then(|s| stats::median(&s.latencies_ms));
            let with_lat: Vec<&super::record::Step> = ramp
                .steps
                .iter()
                .filter(|s| !s.latencies_ms.is_empty())
                .collect();
            let latency = match (
                lat(with_lat.first().copied()),
                lat(with_lat.last().copied()),
            ) {
                (Some(a), Some(b)) => format!("{a:.1} → {b:.1}"),
                _ => String::new(),
            };
            let tasks = ramp
                .steps
                .last()
                .filter(|s| s.n > 0)
                .map_or(String::new(), |s| {
                    format!(
                        "{:.1} processes, {:.1} threads",
                        f64::from(s.processes) / f64::from(s.n),
                        f64::from(s.threads) / f64::from(s.n)
                    )
                });
            let stop = match ramp.stop {
                Some(s) if s.planned() => s.label().to_string(),
                Some(s) => format!("{}: {}", s.label(), ramp.stop_detail),
                None => "not finished".into(),
            };
            let td = &ramp.teardown;
            let teardown = if td.leftovers.is_empty() {
                format!("{:.1} s, nothing left", td.seconds)
            } else {
                format!("FAILED: left {}", td.leftovers.join("; "))
            };
            rows.push(vec![
                name,
                ramp.max_n.to_string(),
                stop,
                fit_cell(fit_ramp(ramp, Measure::MemAvailable)),
                fit_cell(fit_ramp(ramp, Measure::Pss)),
                fit_cell(fit_ramp(ramp, Measure::Kernel)),
                fit_cell(fit_ramp(ramp, Measure::Anon)),
                fit_cell(fit_ramp(ramp, Measure::Cgroup)),
                latency,
                tasks,
                if ramp.ksm {
                    String::new()
                } else {
                    rates.clone()
                },
                teardown,
            ]);
        }
    }
    rows
}

fn table_html(t: &Table, id: &str) -> String {
    format!(
        "<h3>{}</h3>\n{}",
        escape(t.title),
        html_table(&t.headers, &t.rows, id)
    )
}

fn projection_html(p: &Projection) -> String {
    let mut out = String::from("<p>Assumptions:</p><ul id=\"assumptions\">");
    for (what, value) in &p.assumptions {
        out += &format!("<li><b>{}</b>: {}</li>", escape(what), escape(value));
    }
    out += "</ul>\n";
    out += &table_html(&p.server, "projection-server");
    out += &table_html(&p.fleet, "projection-fleet");
    out
}

/// report.html for `r` with its `plots`.
pub fn html(r: &DensityRecord, plots: &[Plot]) -> String {
    let h = &r.host;
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out += &format!(
        "<title>vclab density {}</title><style>{CSS}</style></head><body>\n<h1>vclab density, {}</h1>\n",
        escape(&r.started_utc),
        escape(&r.started_utc)
    );
    out += "<div class=\"host\">";
    out += &format!(
        "<b>Host</b>: {} ({} CPUs, {} MiB), kernel {}; <b>KVM</b>: {}; <b>cgroups</b>: {}<br>",
        escape(&h.cpu_model),
        h.cores,
        h.memory_mib,
        escape(&h.kernel),
        escape(&h.kvm_name()),
        escape(&h.cgroup_name())
    );
    out += &format!("<b>Command</b>: <code>{}</code><br>", escape(&r.command));
    let p = &r.plan;
    out += &format!(
        "<b>Plan</b>: up to {} idle instances per runtime in steps of {}; memory budget {} MiB (MemAvailable drop; never past 60% of RAM in use); launch rate over {} launches at concurrency {}; launch timeout {} s{}{}<br>",
        p.max,
        p.step,
        p.budget_bytes >> 20,
        p.rate_launches,
        p.concurrency.iter().map(u32::to_string).collect::<Vec<_>>().join(", "),
        p.launch_timeout_s,
        p.guest_mib.map_or(String::new(), |m| format!("; guest RAM {m} MiB")),
        if p.ksm { "; KSM ramps for VMs" } else { "" },
    );
    let limits: Vec<String> = r
        .host_limits
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    out += &format!("<b>Host limits</b>: {}<br>", escape(&limits.join(", ")));
    if r.changes.is_empty() {
        out += "<b>Changed for the run</b>: nothing<br>";
    } else {
        let ch: Vec<String> = r
            .changes
            .iter()
            .map(|c| {
                format!(
                    "{}: {} → {} ({})",
                    c.name,
                    c.before,
                    c.during,
                    if c.restored {
                        "restored"
                    } else {
                        "not restored"
                    }
                )
            })
            .collect();
        out += &format!("<b>Changed for the run</b>: {}<br>", escape(&ch.join("; ")));
    }
    if r.interrupted {
        out += "<b>Interrupted</b>: the run was stopped with Ctrl-C; what was measured until then is shown.<br>";
    }
    out += "</div>\n<h2>Marginal cost per idle instance, and how far each runtime got</h2>\n";
    out += "<p>Each cost is the least-squares slope of the measure against N (± its standard error), with the intercept: the fixed cost the fit puts at N = 0.</p>\n";
    out += &html_table(COST_HEADERS, &cost_rows(r), "cost");
    let skipped: Vec<String> = r
        .runtimes
        .iter()
        .filter_map(|rr| {
            rr.skipped
                .as_ref()
                .map(|s| format!("<li><b>{}</b>: {}</li>", rr.runtime, escape(s)))
        })
        .collect();
    if !skipped.is_empty() {
        out += &format!(
            "<p>Not run on this host:</p><ul id=\"skipped\">{}</ul>\n",
            skipped.concat()
        );
    }
    let ksm: Vec<Vec<String>> = r
        .runtimes
        .iter()
        .filter_map(|rr| {
            let k = rr.ksm_ramp()?;
            let last = k.steps.last()?.ksm?;
            let plain = rr.ramp().and_then(|p| fit_ramp(p, Measure::MemAvailable));
            Some(vec![
                rr.runtime.to_string(),
                k.max_n.to_string(),
                format!(
                    "{} pages ({:.1} MiB) saved, {} shared pages",
                    last.pages_sharing,
                    last.pages_sharing as f64 * 4.0 / 1024.0,
                    last.pages_shared
                ),
                fit_cell(plain),
                fit_cell(fit_ramp(k, Measure::MemAvailable)),
            ])
        })
        .collect();
    if !ksm.is_empty() {
        out += "<h2>KSM</h2>\n";
        out += &html_table(
            &[
                "runtime",
                "N",
                "merged at the end",
                "MemAvailable MiB/instance, KSM off",
                "KSM on",
            ],
            &ksm,
            "ksm",
        );
    }
    out += "<p>What each runtime held:</p><ul id=\"held\">";
    for rr in &r.runtimes {
        out += &format!(
            "<li><b>{}</b>: {}.</li>",
            rr.runtime,
            escape(held_as(rr.runtime))
        );
    }
    out += "</ul>\n";
    out += "<p>What the measures are:</p><ul id=\"measures\">";
    for m in Measure::ALL {
        out += &format!("<li><b>{}</b>: {}.</li>", m.name(), escape(m.meaning()));
    }
    out += "<li><b>launch latency</b>: spawn to the instance's ready line ({\"ready\":true}) reaching the harness; <b>launch rate</b>: instances ready per second from the first launch to the last ready, each launcher holding what it started.</li></ul>\n";
    out += "<h2>Plots</h2>\n";
    for pl in plots {
        out += &format!(
            "<figure>{}<figcaption>{} ({})</figcaption></figure>\n",
            inline_svg(&pl.svg),
            escape(&pl.title),
            escape(&pl.file)
        );
    }
    out += "<h2>The course's projection</h2>\n";
    out += &projection_html(&project::project(r));
    out += "</body></html>\n";
    out
}

/// Writes density.json, the CSVs, the plots and report.html into `dir`.
pub fn write_all(r: &DensityRecord, dir: &Path) -> Result<(), RenderError> {
    write_json(r, dir)?;
    write_atomic(&dir.join("density.csv"), steps_csv(r).as_bytes())?;
    write_atomic(&dir.join("fits.csv"), fits_csv(r).as_bytes())?;
    write_atomic(&dir.join("rates.csv"), rates_csv(r).as_bytes())?;
    let plots = plots(r)?;
    for p in &plots {
        write_atomic(&dir.join(&p.file), p.svg.as_bytes())?;
    }
    write_atomic(&dir.join("report.html"), html(r, &plots).as_bytes())?;
    Ok(())
}

/// Writes density.json alone (after every step).
pub fn write_json(r: &DensityRecord, dir: &Path) -> Result<(), RenderError> {
    let text = serde_json::to_string_pretty(r).map_err(RenderError::Json)?;
    write_atomic(&dir.join(FILE), text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::density::plan::{Budget, Plan};
    use crate::density::record::{Meminfo, Rate, RuntimeRun, Step, StopReason};

    /// A record whose ramp costs exactly 1 MiB of MemAvailable, 0.25 MiB
    /// of Pss and 0.5 MiB of kernel memory per instance.
    pub fn record() -> DensityRecord {
        let base = Meminfo {
            total_kib: 24 << 20,
            available_kib: 20 << 20,
            slab_kib: 1000,
            ..Meminfo::default()
        };
        let steps = (0..=5)
            .map(|i| {
                let n = i * 100;
                Step {
                    n,
                    meminfo: Meminfo {
                        available_kib: base.available_kib - u64::from(n) * 1024,
                        slab_kib: base.slab_kib + u64::from(n) * 512,
                        ..base
                    },
                    pss_kib: u64::from(n) * 256,
                    processes: n,
                    threads: 2 * n,
                    latencies_ms: if n > 0 { vec![10.0, 12.0] } else { vec![] },
                    ..Step::default()
                }
            })
            .collect();
        DensityRecord {
            kind: crate::density::record::KIND.into(),
            version: 1,
            started_utc: "2026-12-01T00:00:00Z".into(),
            command: "vclab density".into(),
            host: crate::host::HostRecord::default(),
            plan: Plan {
                runtimes: vec![RuntimeId::MicrovmUnikernel, RuntimeId::Firecracker],
                max: 500,
                step: 100,
                budget: Budget::Share(0.5),
                budget_bytes: 12 << 30,
                concurrency: vec![1, 2],
                rate_launches: 100,
                guest_mib: None,
                ksm: false,
                raise_limits: false,
                app_mem_bytes: 64 << 20,
                launch_timeout_s: 20,
                quick: false,
            },
            host_limits: vec![],
            changes: vec![],
            interrupted: false,
            runtimes: vec![
                RuntimeRun {
                    runtime: RuntimeId::MicrovmUnikernel,
                    skipped: None,
                    ramps: vec![Ramp {
                        baseline: base,
                        steps,
                        max_n: 500,
                        stop: Some(StopReason::ReachedMax),
                        ..Ramp::default()
                    }],
                    rates: vec![Rate {
                        concurrency: 2,
                        launches: 100,
                        ready: 100,
                        seconds: 0.5,
                        per_s: 200.0,
                        ..Rate::default()
                    }],
                },
                RuntimeRun {
                    runtime: RuntimeId::Firecracker,
                    skipped: Some("firecracker is not installed".into()),
                    ramps: vec![],
                    rates: vec![],
                },
            ],
        }
    }

    #[test]
    fn renders_every_file_from_the_record() {
        let r = record();
        let dir = tempfile::tempdir().unwrap();
        write_all(&r, dir.path()).unwrap();
        for f in [
            "density.json",
            "density.csv",
            "fits.csv",
            "rates.csv",
            "memory_mem_available.svg",
            "memory_pss.svg",
            "latency_vs_n.svg",
            "rate_vs_concurrency.svg",
            "report.html",
        ] {
            assert!(dir.path().join(f).is_file(), "{f}");
        }
        let back = DensityRecord::load(dir.path()).unwrap();
        assert_eq!(back, r);
        let fits = fits_csv(&r);
        assert!(
            fits.contains("microvm-unikernel,false,mem_available,6,1024.00,0.00,0.0"),
            "{fits}"
        );
        assert!(
            fits.contains("microvm-unikernel,false,pss,6,256.00"),
            "{fits}"
        );
        assert!(
            fits.contains("microvm-unikernel,false,kernel,6,512.00"),
            "{fits}"
        );
        let rows = cost_rows(&r);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][1], "500");
        assert!(rows[0][3].starts_with("1.000 ± 0.000"), "{:?}", rows[0]);
        assert!(rows[0][10].contains("200 at 2"));
        let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
        assert!(html.contains("firecracker</b>: firecracker is not installed"));
        assert!(html.contains("102,400"), "100 GiB / 1 MiB idle instances");
        assert_eq!(steps_csv(&r).lines().count(), 7);
    }

    #[test]
    fn the_projection_marks_extrapolation() {
        let p = project::project(&record());
        let uni = &p.server.rows[1];
        assert_eq!(uni[0], "microvm-unikernel");
        assert_eq!(uni[2], "102,400");
        assert!(uni[4].contains("linear extrapolation"), "{uni:?}");
        // 1 MiB × 1,000,000 = 976.6 GiB of overhead, 10 hosts of 100 GiB.
        let fleet = &p.fleet.rows[1];
        assert!(fleet[1].starts_with("977 GB"), "{fleet:?}");
        assert!(fleet[2].starts_with("10 hosts"), "{fleet:?}");
        let w = project::weight_line(&record()).unwrap();
        assert!(w.contains("microvm-unikernel 1.000"), "{w}");
    }
}
