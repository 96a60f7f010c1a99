//! What the parts of vclab must agree on, defined once (DESIGN.md, "Contracts between the parts"):
//! the guest, the VMM, the container launcher and the harness all depend on this crate instead of
//! copying a port number, a line or a name.
//!
//! - [`labctl`]: the lab control device's ports and values, and the other ports the unikernel's
//!   exit path uses (COM1, QEMU's isa-debug-exit, the i8042 reset).
//! - [`lines`]: the ready line and Linux's init-handoff marker.
//! - [`params`] and [`cmdline`]: the workload's inputs and the guest's `vclab.*` command line,
//!   writer and parser.
//! - [`vm`]: the VMM report's exit reasons and kernel formats.
//! - [`container`]: the container launcher's report (`RunReport` with the `alloc` feature).
//! - [`failure`]: why a run failed, which drives exit codes and the harness's report.
//! - [`probe`]: the isolation probe's line (its types with the `alloc` feature).
//!
//! `#![no_std]` and, by default, no allocation: the freestanding unikernel uses it as it is. The
//! `alloc` feature adds the report structs that hold strings; `serde` adds serde derives whose
//! names are the ones the JSON lines and `results.json` have always used.
#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

use core::fmt;

/// Gives a fieldless enum its names: `ALL`, `as_str`, `from_name`, `Display` and `FromStr`
/// (refusing other names with [`UnknownName`]). The serde derive of each enum uses
/// `rename_all = "kebab-case"`; a test checks both spell every variant the same.
macro_rules! names {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The value's name (in JSON, on the command line, in messages).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }

            /// Looks a value up by its name.
            pub fn from_name(name: &str) -> Option<$ty> {
                Self::ALL.iter().copied().find(|v| v.as_str() == name)
            }
        }

        impl core::fmt::Display for $ty {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl core::str::FromStr for $ty {
            type Err = $crate::UnknownName;

            fn from_str(name: &str) -> Result<$ty, $crate::UnknownName> {
                $ty::from_name(name).ok_or($crate::UnknownName {
                    what: $what,
                    expected: concat!($($name, " "),+),
                })
            }
        }
    };
}

pub mod cmdline;
pub mod container;
pub mod failure;
pub mod io;
pub mod labctl;
pub mod lines;
pub mod params;
pub mod probe;
pub mod vm;

pub use cmdline::{CmdlineError, Fault, GuestCmdline, Mode, Word};
#[cfg(feature = "alloc")]
pub use container::RunReport;
pub use container::{CgroupMode, Placement};
pub use failure::Failure;
#[cfg(feature = "alloc")]
pub use failure::FailureReport;
pub use io::{IoStats, MmioDevice};
pub use lines::{INIT_HANDOFF_MARKER, READY_LINE};
pub use params::{Kernel, Params, ParamsError};
pub use vm::{ExitReason, KernelFormat};

/// A name that is not one of an enum's names (the `FromStr` error of this crate's enums, other
/// than [`Kernel`], which keeps [`ParamsError::UnknownKernel`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownName {
    /// What was looked up, e.g. "exit reason".
    pub what: &'static str,
    /// The accepted names, space-separated.
    pub expected: &'static str,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {}: expected one of {}",
            self.what,
            self.expected.trim_end()
        )
    }
}

impl core::error::Error for UnknownName {}
