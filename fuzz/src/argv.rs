//! Argument vectors for the CLI targets: the input's bytes split at NUL, one argument each, any
//! bytes (not only UTF-8), as `execve` would pass them.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// The most arguments taken from one input (longer inputs are cut, not refused).
pub const MAX_ARGS: usize = 64;

/// Splits `data` at NUL bytes into at most [`MAX_ARGS`] arguments. An empty input is no
/// argument at all; a trailing NUL ends the last argument without starting another.
pub fn decode(data: &[u8]) -> Vec<OsString> {
    if data.is_empty() {
        return Vec::new();
    }
    let data = data.strip_suffix(&[0]).unwrap_or(data);
    data.split(|&b| b == 0)
        .take(MAX_ARGS)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect()
}

/// The seed form of `args`: each one followed by a NUL.
pub fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in args {
        out.extend_from_slice(a.as_bytes());
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_limits() {
        let args = ["run", "--rootfs", "/r", "--", "/bin/true", ""];
        let got = decode(&encode(&args));
        assert_eq!(got, args.map(OsString::from));
        assert!(decode(b"").is_empty());
        assert_eq!(decode(&[0; 200]).len(), MAX_ARGS);
        assert_eq!(
            decode(b"\xff\x00x"),
            [OsString::from_vec(vec![0xff]), "x".into()]
        );
    }
}
