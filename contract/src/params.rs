//! What to run: the kernel, the working-set size, the iteration count and the seed. The harness
//! writes them on the guest command line ([`crate::cmdline`]) and every runtime's workload runs
//! them (`vclab_workload::run`, `vclab_workload::run_io`), so their names, defaults and bounds
//! are part of the contract.
//!
//! For the `io` kernel (see [`crate::io`]) `size` is the bytes of the disk region used (from
//! offset 0, a multiple of [`crate::io::BLOCK_SIZE`], at least two blocks), `iterations` the
//! number of random 4 KiB reads and `seed` the seed of their positions and of the written data.

use core::fmt;

/// Smallest accepted `size` in bytes (one page; mem-lat needs at least two 64-byte nodes).
pub const MIN_SIZE: u64 = 4096;

/// Largest accepted `size` in bytes (64 MiB): the unikernel guest has about 100 MiB of RAM.
pub const MAX_SIZE: u64 = 64 << 20;

/// Largest accepted iteration count; with [`MAX_SIZE`] it keeps every op count inside a `u64`.
pub const MAX_ITERATIONS: u64 = 1 << 32;

/// Extra scratch bytes asked for so the kernels can start on a 64-byte (cache line) boundary.
pub const SCRATCH_SLACK: usize = 64;

/// One of the deterministic kernels.
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
    /// Sequential and random 4 KiB reads and scratch writes on a disk (I/O bound; needs a disk,
    /// so it is not in [`Kernel::ALL`]).
    Io,
}

impl Kernel {
    /// The kernels that need nothing but memory, in the order the CLI lists them: the set
    /// `vclab compare` runs by default. [`Kernel::Io`] needs a disk and is left out.
    pub const ALL: [Kernel; 3] = [Kernel::Cpu, Kernel::MemBw, Kernel::MemLat];

    /// Every kernel: [`Kernel::ALL`] and then [`Kernel::Io`].
    pub const EVERY: [Kernel; 4] = [Kernel::Cpu, Kernel::MemBw, Kernel::MemLat, Kernel::Io];

    /// Whether the kernel reads a disk (a file on the host, a virtio-blk device in a VM).
    pub const fn needs_disk(self) -> bool {
        matches!(self, Kernel::Io)
    }

    /// The kernel's name as used on the command line and in the JSON line.
    pub const fn name(self) -> &'static str {
        match self {
            Kernel::Cpu => "cpu",
            Kernel::MemBw => "mem-bw",
            Kernel::MemLat => "mem-lat",
            Kernel::Io => "io",
        }
    }

    /// Looks a kernel up by its name (`cpu`, `mem-bw`, `mem-lat`, `io`).
    pub fn from_name(name: &str) -> Option<Kernel> {
        Kernel::EVERY.into_iter().find(|k| k.name() == name)
    }

    /// The default working-set size in bytes (each default run takes roughly 50–300 ms natively).
    pub const fn default_size(self) -> u64 {
        match self {
            Kernel::Cpu => 1 << 20,
            Kernel::MemBw => 16 << 20,
            Kernel::MemLat => 8 << 20,
            Kernel::Io => 16 << 20,
        }
    }

    /// The default iteration count (measured here, elapsed time including data generation:
    /// cpu ~150 ms, mem-bw ~70 ms, mem-lat ~170 ms; io: 1,024 random reads).
    pub const fn default_iterations(self) -> u64 {
        match self {
            Kernel::Cpu => 24,
            Kernel::MemBw => 64,
            Kernel::MemLat => 6,
            Kernel::Io => 1024,
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

    /// Checks the size and iteration bounds (for `io` also that `size` is whole 4 KiB blocks,
    /// at least two: one read, one scratch).
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
        let block = crate::io::BLOCK_SIZE as u64;
        if self.kernel == Kernel::Io && (self.size % block != 0 || self.size < 2 * block) {
            return Err(ParamsError::IoSize { size: self.size });
        }
        Ok(())
    }

    /// How many scratch bytes `vclab_workload::run` needs for these params
    /// (`size` + [`SCRATCH_SLACK`]; for `io` the transfer buffer,
    /// [`crate::io::BUFFER_LEN`] + [`crate::io::BUFFER_ALIGN`], whatever the size).
    pub fn scratch_len(&self) -> Result<usize, ParamsError> {
        self.validate()?;
        if self.kernel == Kernel::Io {
            return Ok(crate::io::BUFFER_LEN + crate::io::BUFFER_ALIGN);
        }
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
    /// `io` with a size that is not whole 4 KiB blocks or under two of them.
    IoSize {
        /// The refused size.
        size: u64,
    },
    /// `io` run without a disk (`vclab_workload::run` has none: use `run_io`).
    IoNeedsDisk,
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
            ParamsError::UnknownKernel => {
                f.write_str("unknown kernel: use cpu, mem-bw, mem-lat or io")
            }
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
            ParamsError::IoSize { size } => write!(
                f,
                "io size {size} bytes is not a multiple of 4096 of at least 8192: give the disk \
                 region in whole 4 KiB blocks, two or more"
            ),
            ParamsError::IoNeedsDisk => f.write_str(
                "the io kernel needs a disk: give the host binary --disk FILE, or the VM a \
                 virtio-blk disk",
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
        for k in Kernel::EVERY {
            assert_eq!(Kernel::from_name(k.name()), Some(k));
        }
        assert_eq!(Kernel::from_name("gpu"), None);
        assert_eq!("mem-bw".parse::<Kernel>(), Ok(Kernel::MemBw));
        assert_eq!("CPU".parse::<Kernel>(), Err(ParamsError::UnknownKernel));
        assert_eq!(Kernel::from_name(""), None);
        assert_eq!("io".parse::<Kernel>(), Ok(Kernel::Io));
    }

    #[test]
    fn the_default_set_leaves_io_out() {
        assert!(!Kernel::ALL.contains(&Kernel::Io));
        assert_eq!(&Kernel::EVERY[..3], &Kernel::ALL[..]);
        assert!(Kernel::EVERY
            .iter()
            .all(|k| k.needs_disk() == (*k == Kernel::Io)));
    }

    #[test]
    fn io_sizes_are_whole_blocks() {
        let mut p = Params::new(Kernel::Io);
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(
            p.scratch_len(),
            Ok(crate::io::BUFFER_LEN + crate::io::BUFFER_ALIGN)
        );
        for bad in [4096, 8191, 8192 + 512] {
            p.size = bad;
            assert_eq!(
                p.validate(),
                Err(ParamsError::IoSize { size: bad }),
                "{bad}"
            );
        }
        p.size = 8192;
        assert_eq!(p.validate(), Ok(()));
        p.size = MAX_SIZE + 4096;
        assert_eq!(
            p.validate(),
            Err(ParamsError::SizeTooLarge { size: p.size })
        );
    }

    #[test]
    fn defaults_are_valid() {
        for k in Kernel::ALL {
            let p = Params::new(k);
            assert_eq!(p.validate(), Ok(()));
            assert_eq!(p.scratch_len(), Ok(p.size as usize + SCRATCH_SLACK));
        }
        assert_eq!(Params::new(Kernel::Io).validate(), Ok(()));
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
        for k in Kernel::EVERY {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, std::format!("\"{}\"", k.name()));
            assert_eq!(serde_json::from_str::<Kernel>(&json).unwrap(), k);
        }
    }
}
