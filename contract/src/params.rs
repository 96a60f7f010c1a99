//! What to run: the kernel, the working-set size, the iteration count and the seed. The harness
//! writes them on the guest command line ([`crate::cmdline`]) and every runtime's workload runs
//! them (`vclab_workload::run`), so their names, defaults and bounds are part of the contract.

use core::fmt;

/// Smallest accepted `size` in bytes (one page; mem-lat needs at least two 64-byte nodes).
pub const MIN_SIZE: u64 = 4096;

/// Largest accepted `size` in bytes (64 MiB): the unikernel guest has about 100 MiB of RAM.
pub const MAX_SIZE: u64 = 64 << 20;

/// Largest accepted iteration count; with [`MAX_SIZE`] it keeps every op count inside a `u64`.
pub const MAX_ITERATIONS: u64 = 1 << 32;

/// Extra scratch bytes asked for so the kernels can start on a 64-byte (cache line) boundary.
pub const SCRATCH_SLACK: usize = 64;

/// One of the three deterministic kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "kebab-case")
)]
pub enum Kernel {
    /// SHA-256 over a generated buffer, hashed `iterations` times (compute bound).
    Cpu,
    /// STREAM-like copy + triad passes over three arrays (memory-bandwidth bound).
    MemBw,
    /// Dependent pointer chase through one random cycle (memory-latency bound).
    MemLat,
}

impl Kernel {
    /// Every kernel, in the order the CLI lists them.
    pub const ALL: [Kernel; 3] = [Kernel::Cpu, Kernel::MemBw, Kernel::MemLat];

    /// The kernel's name as used on the command line and in the JSON line.
    pub const fn name(self) -> &'static str {
        match self {
            Kernel::Cpu => "cpu",
            Kernel::MemBw => "mem-bw",
            Kernel::MemLat => "mem-lat",
        }
    }

    /// Looks a kernel up by its name (`cpu`, `mem-bw`, `mem-lat`).
    pub fn from_name(name: &str) -> Option<Kernel> {
        Kernel::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The default working-set size in bytes (each default run takes roughly 50–300 ms natively).
    pub const fn default_size(self) -> u64 {
        match self {
            Kernel::Cpu => 1 << 20,
            Kernel::MemBw => 16 << 20,
            Kernel::MemLat => 8 << 20,
        }
    }

    /// The default iteration count (measured here, elapsed time including data generation:
    /// cpu ~150 ms, mem-bw ~70 ms, mem-lat ~170 ms).
    pub const fn default_iterations(self) -> u64 {
        match self {
            Kernel::Cpu => 24,
            Kernel::MemBw => 64,
            Kernel::MemLat => 6,
        }
    }
}

impl core::str::FromStr for Kernel {
    type Err = ParamsError;

    fn from_str(name: &str) -> Result<Kernel, ParamsError> {
        Kernel::from_name(name).ok_or(ParamsError::UnknownKernel)
    }
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The default seed.
pub const DEFAULT_SEED: u64 = 1;

/// The complete input of one run: the same `Params` give the same checksum on every runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Params {
    /// Which kernel to run.
    pub kernel: Kernel,
    /// Working-set size in bytes, in `MIN_SIZE..=MAX_SIZE`.
    pub size: u64,
    /// How many passes the kernel makes, in `1..=MAX_ITERATIONS`.
    pub iterations: u64,
    /// Seed of the generated data (cpu, mem-bw) or of the random cycle (mem-lat).
    pub seed: u64,
}

impl Params {
    /// The defaults of `kernel`: its default size and iterations and [`DEFAULT_SEED`].
    pub const fn new(kernel: Kernel) -> Params {
        Params {
            kernel,
            size: kernel.default_size(),
            iterations: kernel.default_iterations(),
            seed: DEFAULT_SEED,
        }
    }

    /// Checks the size and iteration bounds.
    pub fn validate(&self) -> Result<(), ParamsError> {
        if self.size < MIN_SIZE {
            return Err(ParamsError::SizeTooSmall { size: self.size });
        }
        if self.size > MAX_SIZE {
            return Err(ParamsError::SizeTooLarge { size: self.size });
        }
        if self.iterations == 0 || self.iterations > MAX_ITERATIONS {
            return Err(ParamsError::Iterations {
                iterations: self.iterations,
            });
        }
        Ok(())
    }

    /// How many scratch bytes `vclab_workload::run` needs for these params
    /// (`size` + [`SCRATCH_SLACK`]).
    pub fn scratch_len(&self) -> Result<usize, ParamsError> {
        self.validate()?;
        usize::try_from(self.size)
            .ok()
            .and_then(|s| s.checked_add(SCRATCH_SLACK))
            .ok_or(ParamsError::SizeTooLarge { size: self.size })
    }
}

/// Why params or a scratch buffer were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamsError {
    /// A kernel name that is not `cpu`, `mem-bw` or `mem-lat`.
    UnknownKernel,
    /// `size` is below [`MIN_SIZE`].
    SizeTooSmall {
        /// The refused size.
        size: u64,
    },
    /// `size` is above [`MAX_SIZE`].
    SizeTooLarge {
        /// The refused size.
        size: u64,
    },
    /// `iterations` is 0 or above [`MAX_ITERATIONS`].
    Iterations {
        /// The refused iteration count.
        iterations: u64,
    },
    /// The caller's scratch buffer is shorter than [`Params::scratch_len`].
    ScratchTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        got: usize,
    },
}

impl fmt::Display for ParamsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ParamsError::UnknownKernel => f.write_str("unknown kernel: use cpu, mem-bw or mem-lat"),
            ParamsError::SizeTooSmall { size } => write!(
                f,
                "size {size} bytes is too small: use at least {MIN_SIZE} bytes"
            ),
            ParamsError::SizeTooLarge { size } => write!(
                f,
                "size {size} bytes is too large: use at most {MAX_SIZE} bytes (64 MiB, the unikernel's limit)"
            ),
            ParamsError::Iterations { iterations } => write!(
                f,
                "iterations {iterations} is out of range: use 1 to {MAX_ITERATIONS}"
            ),
            ParamsError::ScratchTooSmall { needed, got } => write!(
                f,
                "scratch buffer of {got} bytes is too small: pass at least {needed} bytes (Params::scratch_len)"
            ),
        }
    }
}

impl core::error::Error for ParamsError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in Kernel::ALL {
            assert_eq!(Kernel::from_name(k.name()), Some(k));
        }
        assert_eq!(Kernel::from_name("gpu"), None);
        assert_eq!("mem-bw".parse::<Kernel>(), Ok(Kernel::MemBw));
        assert_eq!("CPU".parse::<Kernel>(), Err(ParamsError::UnknownKernel));
        assert_eq!(Kernel::from_name(""), None);
    }

    #[test]
    fn defaults_are_valid() {
        for k in Kernel::ALL {
            let p = Params::new(k);
            assert_eq!(p.validate(), Ok(()));
            assert_eq!(p.scratch_len(), Ok(p.size as usize + SCRATCH_SLACK));
        }
    }

    #[test]
    fn bounds_are_checked() {
        let mut p = Params::new(Kernel::Cpu);
        p.size = MIN_SIZE - 1;
        assert_eq!(
            p.validate(),
            Err(ParamsError::SizeTooSmall { size: MIN_SIZE - 1 })
        );
        p.size = MAX_SIZE + 1;
        assert_eq!(
            p.scratch_len(),
            Err(ParamsError::SizeTooLarge { size: MAX_SIZE + 1 })
        );
        p.size = MAX_SIZE;
        p.iterations = 0;
        assert_eq!(p.validate(), Err(ParamsError::Iterations { iterations: 0 }));
        p.iterations = MAX_ITERATIONS + 1;
        assert!(p.validate().is_err());
        p.iterations = MAX_ITERATIONS;
        assert_eq!(p.validate(), Ok(()));
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_names_are_the_kernel_names() {
        for k in Kernel::ALL {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, std::format!("\"{}\"", k.name()));
            assert_eq!(serde_json::from_str::<Kernel>(&json).unwrap(), k);
        }
    }
}
