//! The isolation probe's line (`vclab-workload probe` writes it, `vclab compare`'s isolation
//! summary reads it): `{"probe":1,"syscalls":{...}|null,"host":{...},"process":{...},
//! "escapes":[...]}`. [`FORMAT`] always; the line's types ([`ProbeLine`] and its parts) with the
//! `alloc` feature, their serde derives with `serde`.

/// The line's format version, the value of `probe`.
pub const FORMAT: u32 = 1;

#[cfg(feature = "alloc")]
mod line;
#[cfg(feature = "alloc")]
pub use line::*;
