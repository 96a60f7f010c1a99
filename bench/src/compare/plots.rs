//! SVG plots drawn from saved results (never inside the timing loop): start
//! latency, memory overhead and score relative to bare, one bar per runtime
//! and kernel with an error bar: the min–max of the runs for a figure, the
//! 95 % CI for a ratio.

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::record::Results;
use super::stats::Summary;

/// Errors of the plot step.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// plotters failed while drawing.
    #[error("cannot draw the plot '{plot}': {message}")]
    Draw {
        /// The plot's file name.
        plot: &'static str,
        /// plotters' message.
        message: String,
    },
}

/// One bar: centre value and the ends of its error bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    /// Bar height (the median or the ratio).
    pub value: f64,
    /// Lower end of the error bar.
    pub low: f64,
    /// Upper end of the error bar.
    pub high: f64,
}

/// The data of one plot: runtimes along x, one series per kernel.
#[derive(Debug, Clone, PartialEq)]
pub struct BarData {
    /// Runtime names along the x axis.
    pub runtimes: Vec<String>,
    /// Kernel name → one optional bar per runtime.
    pub series: Vec<(String, Vec<Option<Bar>>)>,
}

impl BarData {
    fn bars(&self) -> impl Iterator<Item = &Bar> {
        self.series.iter().flat_map(|(_, v)| v.iter().flatten())
    }
}

/// A plot written by [`render_all`].
#[derive(Debug, Clone)]
pub struct Plot {
    /// File name (`start_latency.svg`, ...).
    pub file: &'static str,
    /// Title shown above it.
    pub title: &'static str,
    /// The SVG document.
    pub svg: String,
}

const COLORS: [RGBColor; 4] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
];

/// Gathers one metric per runtime × kernel from the summaries.
pub fn gather(r: &Results, pick: impl Fn(&super::record::CaseSummary) -> Option<Bar>) -> BarData {
    let runtimes = r.runtimes();
    let series = r
        .kernels()
        .into_iter()
        .map(|k| {
            let bars = runtimes
                .iter()
                .map(|rt| {
                    r.case(*rt, &k)
                        .and_then(|c| c.summary.as_ref())
                        .and_then(&pick)
                })
                .collect();
            (k, bars)
        })
        .collect::<Vec<(String, Vec<Option<Bar>>)>>();
    // Keep only the runtimes with at least one bar, and kernels with at least one bar.
    let keep: Vec<usize> = (0..runtimes.len())
        .filter(|&i| series.iter().any(|(_, b)| b[i].is_some()))
        .collect();
    BarData {
        runtimes: keep
            .iter()
            .map(|&i| runtimes[i].name().to_string())
            .collect(),
        series: series
            .into_iter()
            .filter(|(_, b)| b.iter().any(Option::is_some))
            .map(|(k, b)| (k, keep.iter().map(|&i| b[i]).collect()))
            .collect(),
    }
}

fn spread(s: Summary) -> Bar {
    Bar {
        value: s.median,
        low: s.min,
        high: s.max,
    }
}

fn draw<Y>(
    plot: &'static str,
    caption: &str,
    y_desc: &str,
    data: &BarData,
    y_range: Y,
    baseline: f64,
) -> Result<String, PlotError>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let err = |e: &dyn std::fmt::Display| PlotError::Draw {
        plot,
        message: e.to_string(),
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let n = data.runtimes.len().max(1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(60)
            .y_label_area_size(70)
            .build_cartesian_2d::<RangedCoordf64, Y>((-0.5..n - 0.5).into(), y_range)
            .map_err(|e| err(&e))?;
        let names = data.runtimes.clone();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(data.runtimes.len().max(1))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 0.01 && i >= 0.0 {
                    names.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc(y_desc)
            .draw()
            .map_err(|e| err(&e))?;
        let k = data.series.len().max(1) as f64;
        let width = 0.8 / k;
        for (si, (kernel, bars)) in data.series.iter().enumerate() {
            let color = COLORS[si % COLORS.len()];
            let offset = -0.4 + width * (si as f64 + 0.5);
            let rects = bars.iter().enumerate().filter_map(|(i, b)| {
                let b = (*b)?;
                let x = i as f64 + offset;
                Some(Rectangle::new(
                    [(x - width * 0.45, baseline), (x + width * 0.45, b.value)],
                    color.filled(),
                ))
            });
            chart
                .draw_series(rects)
                .map_err(|e| err(&e))?
                .label(kernel.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
            let errs = bars.iter().enumerate().filter_map(|(i, b)| {
                let b = (*b)?;
                Some(ErrorBar::new_vertical(
                    i as f64 + offset,
                    b.low,
                    b.value,
                    b.high,
                    BLACK.stroke_width(1),
                    8,
                ))
            });
            chart.draw_series(errs).map_err(|e| err(&e))?;
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

fn linear_range(data: &BarData, include: f64) -> std::ops::Range<f64> {
    let lo = data
        .bars()
        .map(|b| b.low.min(b.value))
        .fold(include, f64::min);
    let hi = data
        .bars()
        .map(|b| b.high.max(b.value))
        .fold(include, f64::max);
    let pad = ((hi - lo) * 0.08).max(1e-6);
    (lo.min(0.0) - if lo < 0.0 { pad } else { 0.0 })..hi + pad
}

/// Start latency (ms, log scale), min–max as the error bar.
pub fn start_latency(r: &Results) -> Result<Plot, PlotError> {
    let data = gather(r, |s| s.start_latency_ms.map(spread));
    let lo = data.bars().map(|b| b.low).fold(f64::INFINITY, f64::min);
    let hi = data.bars().map(|b| b.high).fold(0.0, f64::max);
    let (lo, hi) = if lo.is_finite() && lo > 0.0 {
        (lo / 2.0, hi * 2.0)
    } else {
        (0.1, 10.0)
    };
    let svg = draw(
        "start_latency.svg",
        "Start latency, launch to workload start (median, min-max)",
        "milliseconds (log scale)",
        &data,
        (lo..hi).log_scale(),
        lo,
    )?;
    Ok(Plot {
        file: "start_latency.svg",
        title: "Start latency",
        svg,
    })
}

/// A plot on a linear axis that always shows `include` (0 MiB of overhead,
/// a ratio of 1.0), bars rising from 0.
fn linear_plot(
    file: &'static str,
    title: &'static str,
    caption: &str,
    y_desc: &str,
    data: &BarData,
    include: f64,
) -> Result<Plot, PlotError> {
    let svg = draw(
        file,
        caption,
        y_desc,
        data,
        linear_range(data, include),
        0.0,
    )?;
    Ok(Plot { file, title, svg })
}

/// Memory the runtime adds over the bare workload (MiB), min–max as the error bar.
pub fn memory_overhead(r: &Results) -> Result<Plot, PlotError> {
    linear_plot(
        "memory_overhead.svg",
        "Memory overhead",
        "Memory overhead over the bare workload (peak RSS, median, min-max)",
        "MiB",
        &gather(r, |s| s.memory_overhead_mib.map(spread)),
        0.0,
    )
}

/// Workload score relative to bare (1.0 = no CPU overhead), its 95 % CI as
/// the error bar.
pub fn cpu_overhead(r: &Results) -> Result<Plot, PlotError> {
    let data = gather(r, |s| {
        s.score_vs_bare.map(|x| Bar {
            value: x.value,
            low: x.ci_low,
            high: x.ci_high,
        })
    });
    linear_plot(
        "cpu_overhead.svg",
        "CPU overhead (score vs bare)",
        "Workload score relative to bare per kernel (1.0 = no CPU overhead; bar: 95% CI)",
        "score / bare score",
        &data,
        1.0,
    )
}

/// All plots of `r`.
pub fn render_all(r: &Results) -> Result<Vec<Plot>, PlotError> {
    Ok(vec![
        start_latency(r)?,
        memory_overhead(r)?,
        cpu_overhead(r)?,
    ])
}
