//! The guest command line's `vclab.*` parameters (DESIGN.md, "Guest command line"): the harness
//! writes them with [`GuestCmdline`]'s `Display` and the guests read them with
//! [`GuestCmdline::parse`], both without allocating. Words are split on ASCII whitespace; words
//! that are not `vclab.*` parameters (and `vclab.*` keys this parser does not know) pass through
//! as [`Word::Other`].

use core::fmt;

use crate::params::{Kernel, Params};

/// What the guest should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Run a kernel and report its result line.
    Run(Kernel),
    /// Report ready and wait.
    Idle,
}

impl Mode {
    /// The value of `vclab.kernel=`: the kernel's name, or `idle`.
    pub const fn name(self) -> &'static str {
        match self {
            Mode::Run(kernel) => kernel.name(),
            Mode::Idle => "idle",
        }
    }
}

/// A deliberate misbehaviour for the VMM's tests (`vclab.fault=`, unikernel only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Triple-fault the vCPU.
    Triple,
    /// Spin forever.
    Hang,
    /// Write output without end.
    Flood,
    /// Poke unexpected I/O ports.
    Ports,
    /// Read and write guest-physical pages above RAM (unclaimed MMIO).
    Mmio,
}

impl Fault {
    /// Every fault, in DESIGN.md order.
    pub const ALL: [Fault; 5] = [
        Fault::Triple,
        Fault::Hang,
        Fault::Flood,
        Fault::Ports,
        Fault::Mmio,
    ];

    /// The fault's name on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Fault::Triple => "triple",
            Fault::Hang => "hang",
            Fault::Flood => "flood",
            Fault::Ports => "ports",
            Fault::Mmio => "mmio",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One word of the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Word<'a> {
    /// `vclab.kernel=cpu|mem-bw|mem-lat|io|idle`
    Mode(Mode),
    /// `vclab.size=BYTES`
    Size(u64),
    /// `vclab.iterations=N`
    Iterations(u64),
    /// `vclab.seed=N`
    Seed(u64),
    /// `vclab.tsc_khz=N`
    TscKhz(u64),
    /// `vclab.fault=triple|hang|flood|ports`
    Fault(Fault),
    /// `vclab.exit=N` (0–255)
    Exit(u8),
    /// Any other word, passed through unchanged.
    Other(&'a str),
}

/// Writes the word as [`parse_word`] reads it back, e.g. `vclab.size=4096`.
impl fmt::Display for Word<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Word::Mode(m) => write!(f, "vclab.kernel={}", m.name()),
            Word::Size(n) => write!(f, "vclab.size={n}"),
            Word::Iterations(n) => write!(f, "vclab.iterations={n}"),
            Word::Seed(n) => write!(f, "vclab.seed={n}"),
            Word::TscKhz(n) => write!(f, "vclab.tsc_khz={n}"),
            Word::Fault(fault) => write!(f, "vclab.fault={}", fault.name()),
            Word::Exit(n) => write!(f, "vclab.exit={n}"),
            Word::Other(text) => f.write_str(text),
        }
    }
}

/// A known `vclab.*` parameter with a value this parser refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmdlineError<'a> {
    /// The whole offending word, e.g. `vclab.size=12k`.
    pub word: &'a str,
    /// What the value must look like.
    pub expected: &'static str,
}

impl fmt::Display for CmdlineError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad guest command line parameter `{}`: expected {}",
            self.word, self.expected
        )
    }
}

impl core::error::Error for CmdlineError<'_> {}

/// Parses one word.
pub fn parse_word(word: &str) -> Result<Word<'_>, CmdlineError<'_>> {
    let Some((key, value)) = word
        .strip_prefix("vclab.")
        .and_then(|kv| kv.split_once('='))
    else {
        return Ok(Word::Other(word));
    };
    let err = |expected| CmdlineError { word, expected };
    let number = |expected| value.parse::<u64>().map_err(|_| err(expected));
    match key {
        "kernel" => match value {
            "idle" => Ok(Word::Mode(Mode::Idle)),
            _ => Kernel::from_name(value)
                .map(|k| Word::Mode(Mode::Run(k)))
                .ok_or(err("cpu, mem-bw, mem-lat, io or idle")),
        },
        "size" => number("a size in bytes (decimal)").map(Word::Size),
        "iterations" => number("an iteration count (decimal)").map(Word::Iterations),
        "seed" => number("a seed (decimal u64)").map(Word::Seed),
        "tsc_khz" => number("the TSC frequency in kHz (decimal)").map(Word::TscKhz),
        "fault" => Fault::ALL
            .into_iter()
            .find(|f| f.name() == value)
            .map(Word::Fault)
            .ok_or(err("triple, hang, flood or ports")),
        "exit" => value
            .parse::<u8>()
            .map(Word::Exit)
            .map_err(|_| err("an exit status 0-255")),
        _ => Ok(Word::Other(word)),
    }
}

/// The words of a command line, parsed one by one, in order.
pub fn words(cmdline: &str) -> impl Iterator<Item = Result<Word<'_>, CmdlineError<'_>>> {
    cmdline.split_ascii_whitespace().map(parse_word)
}

/// The `vclab.*` settings of a whole command line; the last occurrence of a key wins.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestCmdline {
    /// `vclab.kernel=`, if given.
    pub mode: Option<Mode>,
    /// `vclab.size=`, if given.
    pub size: Option<u64>,
    /// `vclab.iterations=`, if given.
    pub iterations: Option<u64>,
    /// `vclab.seed=`, if given.
    pub seed: Option<u64>,
    /// `vclab.tsc_khz=`, if given.
    pub tsc_khz: Option<u64>,
    /// `vclab.fault=`, if given.
    pub fault: Option<Fault>,
    /// `vclab.exit=`, if given.
    pub exit: Option<u8>,
}

impl GuestCmdline {
    /// The settings that run `params`: kernel, size, iterations and seed (add `tsc_khz` for a
    /// guest without a host clock).
    pub const fn run(params: &Params) -> GuestCmdline {
        GuestCmdline {
            mode: Some(Mode::Run(params.kernel)),
            size: Some(params.size),
            iterations: Some(params.iterations),
            seed: Some(params.seed),
            tsc_khz: None,
            fault: None,
            exit: None,
        }
    }

    /// The words of the settings that are given, in the order [`fmt::Display`] writes them:
    /// kernel, size, iterations, seed, tsc_khz, fault, exit.
    pub fn words(&self) -> impl Iterator<Item = Word<'static>> {
        [
            self.mode.map(Word::Mode),
            self.size.map(Word::Size),
            self.iterations.map(Word::Iterations),
            self.seed.map(Word::Seed),
            self.tsc_khz.map(Word::TscKhz),
            self.fault.map(Word::Fault),
            self.exit.map(Word::Exit),
        ]
        .into_iter()
        .flatten()
    }

    /// Parses a whole command line, skipping words that are not `vclab.*` parameters.
    pub fn parse(cmdline: &str) -> Result<GuestCmdline, CmdlineError<'_>> {
        let mut c = GuestCmdline::default();
        for word in words(cmdline) {
            match word? {
                Word::Mode(m) => c.mode = Some(m),
                Word::Size(n) => c.size = Some(n),
                Word::Iterations(n) => c.iterations = Some(n),
                Word::Seed(n) => c.seed = Some(n),
                Word::TscKhz(n) => c.tsc_khz = Some(n),
                Word::Fault(f) => c.fault = Some(f),
                Word::Exit(n) => c.exit = Some(n),
                Word::Other(_) => {}
            }
        }
        Ok(c)
    }

    /// The run's params when the mode is `Run`: the kernel's defaults overridden by the given
    /// size, iterations and seed (not yet validated: `vclab_workload::run` does that). `None`
    /// when idle or when no kernel was given.
    pub fn params(&self) -> Option<Params> {
        let Some(Mode::Run(kernel)) = self.mode else {
            return None;
        };
        let d = Params::new(kernel);
        Some(Params {
            kernel,
            size: self.size.unwrap_or(d.size),
            iterations: self.iterations.unwrap_or(d.iterations),
            seed: self.seed.unwrap_or(d.seed),
        })
    }
}

/// Writes the given settings as `vclab.*` words separated by one space, e.g.
/// `vclab.kernel=mem-bw vclab.size=4096 vclab.iterations=3 vclab.seed=9 vclab.tsc_khz=2600000`;
/// nothing at all when none is given. [`GuestCmdline::parse`] reads it back to the same value.
impl fmt::Display for GuestCmdline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, word) in self.words().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{word}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_line_parses_with_pass_through() {
        let line = "console=ttyS0 vclab.kernel=mem-lat  vclab.size=8388608\tvclab.iterations=3 \
                    vclab.seed=42 vclab.tsc_khz=2995200 vclab.other=1 -- quiet";
        let c = GuestCmdline::parse(line).unwrap();
        assert_eq!(c.mode, Some(Mode::Run(Kernel::MemLat)));
        assert_eq!(c.tsc_khz, Some(2995200));
        assert_eq!(
            c.params(),
            Some(Params {
                kernel: Kernel::MemLat,
                size: 8388608,
                iterations: 3,
                seed: 42
            })
        );
        let others: [Option<&str>; 4] = {
            let mut it = words(line).filter_map(|w| match w {
                Ok(Word::Other(s)) => Some(s),
                _ => None,
            });
            [it.next(), it.next(), it.next(), it.next()]
        };
        assert_eq!(
            others,
            [
                Some("console=ttyS0"),
                Some("vclab.other=1"),
                Some("--"),
                Some("quiet")
            ]
        );
    }

    #[test]
    fn defaults_fill_missing_values_and_idle_has_no_params() {
        let c = GuestCmdline::parse("vclab.kernel=cpu").unwrap();
        assert_eq!(c.params(), Some(Params::new(Kernel::Cpu)));
        let idle = GuestCmdline::parse("vclab.kernel=idle vclab.size=4096").unwrap();
        assert_eq!(idle.mode, Some(Mode::Idle));
        assert_eq!(idle.params(), None);
        assert_eq!(GuestCmdline::parse("").unwrap(), GuestCmdline::default());
    }

    #[test]
    fn fault_and_exit() {
        let c = GuestCmdline::parse("vclab.fault=flood vclab.exit=255").unwrap();
        assert_eq!(c.fault, Some(Fault::Flood));
        assert_eq!(c.exit, Some(255));
        for f in Fault::ALL {
            assert_eq!(parse_word(f.name()), Ok(Word::Other(f.name())));
        }
    }

    #[test]
    fn bad_values_name_the_word() {
        for bad in [
            "vclab.size=12k",
            "vclab.size=",
            "vclab.iterations=-1",
            "vclab.seed=18446744073709551616",
            "vclab.kernel=gpu",
            "vclab.fault=boom",
            "vclab.exit=256",
            "vclab.tsc_khz=fast",
        ] {
            let e = GuestCmdline::parse(bad).unwrap_err();
            assert_eq!(e.word, bad);
        }
        // The kernel error lists every kernel, io included, and io parses.
        let e = GuestCmdline::parse("vclab.kernel=gpu").unwrap_err();
        assert_eq!(e.expected, "cpu, mem-bw, mem-lat, io or idle");
        let io = GuestCmdline::parse("vclab.kernel=io").unwrap();
        assert_eq!(io.mode, Some(Mode::Run(Kernel::Io)));
    }

    #[test]
    fn last_occurrence_wins() {
        let c = GuestCmdline::parse("vclab.seed=1 vclab.seed=2").unwrap();
        assert_eq!(c.seed, Some(2));
    }

    #[test]
    fn writer_writes_todays_text() {
        let params = Params {
            kernel: Kernel::MemBw,
            size: 4096,
            iterations: 3,
            seed: 9,
        };
        let c = GuestCmdline {
            tsc_khz: Some(2600000),
            ..GuestCmdline::run(&params)
        };
        assert_eq!(
            c.to_string(),
            "vclab.kernel=mem-bw vclab.size=4096 vclab.iterations=3 vclab.seed=9 vclab.tsc_khz=2600000"
        );
        assert_eq!(GuestCmdline::default().to_string(), "");
        let faulty = GuestCmdline {
            fault: Some(Fault::Triple),
            exit: Some(7),
            ..GuestCmdline::default()
        };
        assert_eq!(faulty.to_string(), "vclab.fault=triple vclab.exit=7");
    }

    #[test]
    fn written_line_parses_back_to_the_same_value() {
        let mut cases = std::vec![
            GuestCmdline::default(),
            GuestCmdline {
                mode: Some(Mode::Idle),
                ..GuestCmdline::default()
            },
            GuestCmdline {
                mode: Some(Mode::Run(Kernel::Cpu)),
                size: Some(u64::MAX),
                iterations: Some(0),
                seed: Some(u64::MAX),
                tsc_khz: Some(1),
                fault: Some(Fault::Ports),
                exit: Some(255),
            },
        ];
        for kernel in Kernel::ALL {
            cases.push(GuestCmdline::run(&Params::new(kernel)));
        }
        for fault in Fault::ALL {
            cases.push(GuestCmdline {
                fault: Some(fault),
                exit: Some(0),
                ..GuestCmdline::default()
            });
        }
        for c in cases {
            let text = c.to_string();
            assert_eq!(GuestCmdline::parse(&text), Ok(c), "{text}");
            for word in c.words() {
                let w = word.to_string();
                assert_eq!(parse_word(&w), Ok(word), "{w}");
            }
        }
        assert_eq!(Word::Other("quiet").to_string(), "quiet");
    }
}
