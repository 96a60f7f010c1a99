//! The vclab harness as a library, shared by the `vclab` CLI and the
//! criterion benches: the runtime registry ([`runtime`]), the launched-instance
//! handle ([`spawn`]), the host record ([`host`]) and `vclab compare` with its
//! reports ([`compare`]).

pub mod compare;
pub mod density;
pub mod host;
pub mod runtime;
pub mod spawn;
