//! The render step: exports, plots and the HTML report written from a
//! [`Results`] record into its directory.

use std::path::Path;

use super::export::hosts::{self, HostRun};
use super::export::{self, write_atomic, ExportError};
use super::html;
use super::plots::{self, PlotError};
use super::record::Results;

/// Errors of the render step.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// An export failed.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// A plot failed.
    #[error(transparent)]
    Plot(#[from] PlotError),
}

/// Writes results.json, results.csv and results.md (after every case).
pub fn write_exports(r: &Results, dir: &Path) -> Result<(), RenderError> {
    export::write_all(r, dir)?;
    Ok(())
}

/// Writes the exports, the SVG plots and report.html.
pub fn write_report(r: &Results, dir: &Path) -> Result<(), RenderError> {
    write_exports(r, dir)?;
    let plots = plots::render_all(r)?;
    for p in &plots {
        write_atomic(&dir.join(p.file), p.svg.as_bytes())?;
    }
    write_atomic(&dir.join("report.html"), html::render(r, &plots).as_bytes())?;
    Ok(())
}

/// Writes the comparison of several results directories into `dir` (which
/// must exist): hosts.md, hosts.csv and report.html.
pub fn write_host_comparison(runs: &[HostRun], dir: &Path) -> Result<(), RenderError> {
    write_atomic(
        &dir.join(hosts::MARKDOWN_FILE),
        hosts::markdown(runs).as_bytes(),
    )?;
    write_atomic(&dir.join(hosts::CSV_FILE), hosts::csv(runs).as_bytes())?;
    write_atomic(
        &dir.join(hosts::HTML_FILE),
        html::render_hosts(runs).as_bytes(),
    )?;
    Ok(())
}
