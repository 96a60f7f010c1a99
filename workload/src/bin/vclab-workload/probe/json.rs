//! A minimal JSON writer for the probe's line (the binary carries no serde).

use std::fmt::Write;

/// A JSON object under construction.
pub struct Obj(String);

impl Obj {
    /// An empty object.
    pub fn new() -> Self {
        Obj(String::from("{"))
    }

    /// Adds `"key":` followed by already-encoded JSON.
    pub fn raw(mut self, key: &str, value: impl AsRef<str>) -> Self {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        self.0.push_str(&string(key));
        self.0.push(':');
        self.0.push_str(value.as_ref());
        self
    }

    /// Adds a string member.
    pub fn str(self, key: &str, value: &str) -> Self {
        let v = string(value);
        self.raw(key, v)
    }

    /// Adds an integer member.
    pub fn num(self, key: &str, value: impl TryInto<u64>) -> Self {
        let v = value.try_into().unwrap_or(u64::MAX).to_string();
        self.raw(key, v)
    }

    /// The encoded object.
    pub fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// A JSON string literal.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number for a float (finite; `null` otherwise).
pub fn float(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".into()
    }
}

/// A JSON array of already-encoded items.
pub fn array<S: AsRef<str>>(items: &[S]) -> String {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item.as_ref());
    }
    out.push(']');
    out
}

/// A JSON array of strings.
pub fn strings(items: &[String]) -> String {
    let encoded: Vec<String> = items.iter().map(|s| string(s)).collect();
    array(&encoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes() {
        let o = Obj::new()
            .num("n", 3u32)
            .str("s", "a\"b\\\n\u{1}")
            .raw("a", array(&["1", "2"]))
            .finish();
        assert_eq!(o, r#"{"n":3,"s":"a\"b\\\n\u0001","a":[1,2]}"#);
        assert_eq!(float(1.5), "1.5");
        assert_eq!(float(f64::NAN), "null");
        assert_eq!(strings(&["x".into()]), r#"["x"]"#);
    }
}
