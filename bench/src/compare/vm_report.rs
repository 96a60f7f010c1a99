//! Reading the figures a VMM's `--json` report gives (DESIGN.md, "CLI
//! output": the last stdout line). The lookups take a list of field names
//! with their unit in the suffix, so a report can be read whatever nesting it uses.

use serde_json::Value;

/// Depth-first search for the first field named one of `names` holding a number.
fn find_number(v: &Value, name: &str) -> Option<f64> {
    match v {
        Value::Object(map) => {
            if let Some(x) = map.get(name).and_then(Value::as_f64) {
                return Some(x);
            }
            map.values().find_map(|c| find_number(c, name))
        }
        Value::Array(items) => items.iter().find_map(|c| find_number(c, name)),
        _ => None,
    }
}

/// A duration in milliseconds from the first of `stems` found with a unit
/// suffix (`_ns`, `_us`, `_ms`, `_s`).
pub fn duration_ms(v: &Value, stems: &[&str]) -> Option<f64> {
    for stem in stems {
        for (suffix, to_ms) in [("_ns", 1e-6), ("_us", 1e-3), ("_ms", 1.0), ("_s", 1e3)] {
            if let Some(x) = find_number(v, &format!("{stem}{suffix}")) {
                return Some(x * to_ms);
            }
        }
    }
    None
}

/// A size in KiB from the first of `stems` found with a unit suffix
/// (`_bytes`, `_kib`, `_kb`, `_mib`).
pub fn size_kib(v: &Value, stems: &[&str]) -> Option<u64> {
    for stem in stems {
        for (suffix, to_kib) in [
            ("_bytes", 1.0 / 1024.0),
            ("_kib", 1.0),
            ("_kb", 1.0),
            ("_mib", 1024.0),
        ] {
            if let Some(x) = find_number(v, &format!("{stem}{suffix}")) {
                return Some((x * to_kib).round() as u64);
            }
        }
    }
    None
}

/// The report: the last stdout line, when it is a JSON object.
pub fn parse(last_line: Option<&str>) -> Option<Value> {
    let v: Value = serde_json::from_str(last_line?).ok()?;
    v.is_object().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_units_at_any_depth() {
        let v = parse(Some(
            r#"{"phases":{"guest_ready_ns":12500000,"x":1},"guest_ram_bytes":134217728,"mem":{"guest_touched_kib":2048}}"#,
        ))
        .unwrap();
        assert_eq!(duration_ms(&v, &["ready", "guest_ready"]), Some(12.5));
        assert_eq!(size_kib(&v, &["guest_ram"]), Some(131072));
        assert_eq!(size_kib(&v, &["guest_touched"]), Some(2048));
        assert_eq!(duration_ms(&v, &["nothing"]), None);
        assert!(parse(Some("not json")).is_none());
        assert!(parse(Some("[1]")).is_none());
        assert!(parse(None).is_none());
    }
}
