//! The one workload vclab runs everywhere: deterministic kernels (`cpu`: SHA-256 over a
//! generated buffer; `mem-bw`: copy and triad passes; `mem-lat`: a dependent pointer chase through
//! a random cycle; `io`: reads and writes on a disk, [`run_io`] with a [`BlockSource`]) and a JSON
//! line writer; re-exported from `vclab-contract` (which also holds the
//! harness's writer), the run's [`Params`] and the parser of the guest's `vclab.*` command line. The
//! core is `#![no_std]` and never allocates: the caller passes a scratch buffer of [`Params::scratch_len`]
//! bytes to [`run`], so the host binary, the container and the bare-metal unikernel guest all run
//! the same code and get the same checksum for the same [`Params`].
#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]

pub mod checksum;
pub mod io;
pub mod json;
mod kernels;
pub mod latency;
pub mod prng;
pub mod sha256;
pub mod time;

/// The guest command line's `vclab.*` parameters (defined in `vclab-contract`).
pub use vclab_contract::cmdline;
/// What to run (defined in `vclab-contract`).
pub use vclab_contract::params;

pub use checksum::Checksum;
pub use cmdline::{GuestCmdline, Mode};
pub use io::{run_io, BlockSource, Clock, IoError, IoOutcome, IoStats};
pub use json::{write_ready, Report, MAX_LINE_LEN, READY_LINE};
pub use params::{Kernel, Params, ParamsError, MAX_SIZE, MIN_SIZE};

/// What a kernel run produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The checksum: equal for equal params on every runtime.
    pub checksum: Checksum,
    /// Operations done: bytes hashed (cpu), bytes read + written (mem-bw), dependent loads (mem-lat).
    pub ops: u64,
}

/// Runs the kernel `params` names over `scratch` (at least [`Params::scratch_len`] bytes; its
/// contents do not matter and are overwritten).
/// The io kernel needs a disk: [`run_io`] runs it, this refuses it with
/// [`ParamsError::IoNeedsDisk`].
pub fn run(params: &Params, scratch: &mut [u8]) -> Result<Outcome, ParamsError> {
    if params.kernel == Kernel::Io {
        return Err(ParamsError::IoNeedsDisk);
    }
    let needed = params.scratch_len()?;
    let too_small = ParamsError::ScratchTooSmall {
        needed,
        got: scratch.len(),
    };
    if scratch.len() < needed {
        return Err(too_small);
    }
    // Start on a cache line so the result does not depend on the caller's alignment.
    let offset = scratch.as_ptr().align_offset(params::SCRATCH_SLACK);
    let size = needed - params::SCRATCH_SLACK;
    let buf = offset
        .checked_add(size)
        .and_then(|end| scratch.get_mut(offset..end))
        .ok_or(too_small)?;
    Ok(match params.kernel {
        Kernel::Cpu => kernels::cpu(params, buf),
        Kernel::MemBw => kernels::mem_bw(params, buf),
        Kernel::MemLat => kernels::mem_lat(params, buf),
        Kernel::Io => return Err(ParamsError::IoNeedsDisk),
    })
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_io;
