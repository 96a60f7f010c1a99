//! `results.json`: the whole record, raw samples included (the input of `vclab report`).

use super::{ExportError, Exporter};
use crate::compare::record::Results;

/// Writes the whole record as pretty JSON.
pub struct JsonExporter;

impl Exporter for JsonExporter {
    fn file_name(&self) -> &'static str {
        "results.json"
    }

    fn serialize(&self, results: &Results) -> Result<Vec<u8>, ExportError> {
        let mut out =
            serde_json::to_vec_pretty(results).map_err(|source| ExportError::Serialise {
                format: "JSON",
                source,
            })?;
        out.push(b'\n');
        Ok(out)
    }
}
