//! Canonical JSON: object keys sorted at every level, no blanks, so that
//! structures holding `HashMap`s (labels, annotations, exposed ports)
//! serialize to the same bytes every time.

use serde::Serialize;
use serde_json::{Map, Value};

/// `value` as canonical JSON bytes.
pub fn canonical<T: Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&sorted(serde_json::to_value(value)?))
}

fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out = Map::new();
            for (k, v) in entries {
                out.insert(k, sorted(v));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    #[test]
    fn hashmap_keys_come_out_sorted() {
        let map: HashMap<String, u32> = (0..50).map(|i| (format!("k{i:02}"), i)).collect();
        let text = String::from_utf8(super::canonical(&map).unwrap()).unwrap();
        let first = text.find("\"k00\"").unwrap();
        let last = text.find("\"k49\"").unwrap();
        assert!(first < last);
        let keys: Vec<&str> = text
            .match_indices("\"k")
            .map(|(i, _)| &text[i..i + 4])
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }
}
