//! SOURCE_DATE_EPOCH (default 0), the one clock of a reproducible build,
//! and its RFC 3339 form for `created` fields.

/// Why SOURCE_DATE_EPOCH could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EpochError {
    /// Not a non-negative whole number of seconds.
    #[error(
        "SOURCE_DATE_EPOCH={value:?} is not a whole number of seconds since 1970 (unset it for 0)"
    )]
    NotSeconds {
        /// The value found.
        value: String,
    },
}

/// The build's timestamp: `$SOURCE_DATE_EPOCH` in seconds, 0 when unset
/// or empty.
pub fn source_date_epoch() -> Result<u64, EpochError> {
    parse_epoch(std::env::var("SOURCE_DATE_EPOCH").ok().as_deref())
}

/// [`source_date_epoch`] of a given value (`None`: unset).
pub fn parse_epoch(value: Option<&str>) -> Result<u64, EpochError> {
    match value.map(str::trim) {
        None | Some("") => Ok(0),
        Some(v) => v.parse().map_err(|_| EpochError::NotSeconds {
            value: v.to_string(),
        }),
    }
}

/// `secs` since 1970 as RFC 3339 UTC (`1970-01-01T00:00:00Z`), without fractional seconds (the
/// image config's `created`); the civil date is the launcher's ([`vclab_container::state::civil_utc`]).
pub fn rfc3339(secs: u64) -> String {
    let (y, m, d, hh, mm, ss) = vclab_container::state::civil_utc(secs);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn epoch_values() {
        assert_eq!(parse_epoch(None), Ok(0));
        assert_eq!(parse_epoch(Some("")), Ok(0));
        assert_eq!(parse_epoch(Some("1700000000")), Ok(1_700_000_000));
        let e = parse_epoch(Some("-1")).unwrap_err();
        assert!(e.to_string().contains("\"-1\""));
        assert!(parse_epoch(Some("yesterday")).is_err());
    }
}
