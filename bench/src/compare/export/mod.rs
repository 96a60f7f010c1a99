//! Exports of a [`Results`] record: one [`Exporter`] trait, one file per format.
//! Every exporter is a pure function of the record, so `vclab report` can
//! rewrite them from a saved `results.json`.

mod csv;
pub mod hosts;
mod json;
mod markdown;

use std::path::{Path, PathBuf};

pub use self::csv::CsvExporter;
pub use self::json::JsonExporter;
pub use self::markdown::MarkdownExporter;
use super::record::Results;

/// Errors of the export step.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The record could not be serialised.
    #[error("cannot serialise the results as {format}: {source}")]
    Serialise {
        /// Format name.
        format: &'static str,
        /// The serde error.
        source: serde_json::Error,
    },
    /// The file could not be written.
    #[error("cannot write {path}: {source} (is the results directory writable?)")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// One export format.
pub trait Exporter {
    /// The file name it writes inside the results directory.
    fn file_name(&self) -> &'static str;
    /// The file's bytes for `results`.
    fn serialize(&self, results: &Results) -> Result<Vec<u8>, ExportError>;
}

/// All exporters, in the order they are written.
pub fn all() -> Vec<Box<dyn Exporter>> {
    vec![
        Box::new(JsonExporter),
        Box::new(CsvExporter),
        Box::new(MarkdownExporter),
    ]
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a
/// crash never leaves a half-written export.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let tmp = path.with_extension("tmp");
    let wrap = |source| ExportError::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&tmp, bytes).map_err(wrap)?;
    std::fs::rename(&tmp, path).map_err(wrap)
}

/// Writes every export of `results` into `dir`.
pub fn write_all(results: &Results, dir: &Path) -> Result<(), ExportError> {
    for e in all() {
        write_atomic(&dir.join(e.file_name()), &e.serialize(results)?)?;
    }
    Ok(())
}

/// `v` with `decimals` digits, or an empty string.
pub fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(String::new, |x| format!("{x:.decimals$}"))
}
