//! Docker/Podman spellings of sizes (`256m`, `1.5g`) and CPU counts (`0.5`).

/// Errors of this module: the text that could not be read and why.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The size text is not a number with an optional b/k/m/g suffix.
    #[error("invalid size {0:?}: use a number with an optional unit b, k, m or g (e.g. 256m)")]
    Size(String),
    /// The size is zero or does not fit in 64 bits.
    #[error("size {0:?} is out of range: give at least 1 byte and less than 16 EiB")]
    SizeRange(String),
    /// The CPU text is not a positive number.
    #[error("invalid CPU count {0:?}: use a positive number such as 0.5 or 2")]
    Cpus(String),
}

/// The CFS period used for `--cpus`, in microseconds (Docker's default).
pub const CPU_PERIOD_US: u64 = 100_000;

/// Parses a memory size: a decimal number with an optional unit `b`, `k`, `m`
/// or `g` (powers of 1024, case-insensitive, an optional trailing `b` as in
/// `kb`). A bare number means bytes.
pub fn parse_size(text: &str) -> Result<u64, Error> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').map_or(t.as_str(), |s| s);
    let (num, mult): (&str, u64) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some(c) if c.is_ascii_digit() || c == '.' => (t, 1),
        _ => return Err(Error::Size(text.to_string())),
    };
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(Error::Size(text.to_string()));
    }
    let value: f64 = num.parse().map_err(|_| Error::Size(text.to_string()))?;
    let bytes = value * mult as f64;
    if !(1.0..1.8e19).contains(&bytes) {
        return Err(Error::SizeRange(text.to_string()));
    }
    Ok(bytes as u64)
}

/// Parses a fractional CPU count and returns the CFS quota in microseconds
/// per [`CPU_PERIOD_US`].
pub fn parse_cpus(text: &str) -> Result<u64, Error> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| Error::Cpus(text.to_string()))?;
    if !value.is_finite() || value <= 0.0 || value > 1024.0 {
        return Err(Error::Cpus(text.to_string()));
    }
    let quota = (value * CPU_PERIOD_US as f64).round() as u64;
    // The kernel's smallest CFS quota is 1 ms.
    Ok(quota.max(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_docker_spelling() {
        assert_eq!(parse_size("256m"), Ok(256 << 20));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("64kb"), Ok(64 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4096b"), Ok(4096));
    }

    #[test]
    fn bad_sizes_are_rejected() {
        for bad in ["12q", "", "m", "-1m", "1.2.3m", "abc", "1 m x"] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_size("0"), Err(Error::SizeRange("0".into())));
        assert!(parse_size("99999999999g").is_err());
    }

    #[test]
    fn cpus_to_quota() {
        assert_eq!(parse_cpus("0.5"), Ok(50_000));
        assert_eq!(parse_cpus("2"), Ok(200_000));
        assert_eq!(parse_cpus("1.25"), Ok(125_000));
        assert_eq!(parse_cpus("0.001"), Ok(1000));
        for bad in ["-1", "0", "x", "", "inf", "NaN", "5000"] {
            assert!(parse_cpus(bad).is_err(), "{bad:?} accepted");
        }
    }
}
