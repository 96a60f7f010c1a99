//! Hand-parsed command line of `vclab-workload` (no clap: the binary must stay small and start fast).

use std::fmt;
use std::path::PathBuf;

use vclab_workload::{Kernel, Params};

use crate::probe;

/// The usage text printed by `--help` and named in argument errors.
pub const USAGE: &str = "\
usage: vclab-workload run <cpu|mem-bw|mem-lat> [--size BYTES] [--iterations N] [--seed N]
       vclab-workload run io --disk FILE [--size BYTES] [--iterations N] [--seed N]
                                      sequential reads of the first BYTES (default 16 MiB) of FILE
                                      (O_DIRECT where allowed), N random 4 KiB reads (default
                                      1024), writes + read-back on its last 1/16 (at most 256 KiB)
       vclab-workload io-image --size BYTES [--seed N] FILE
                                      write the disk image the io kernel reads (BYTES a multiple
                                      of 4096; seed default 1)
       vclab-workload idle            print {\"ready\":true}, wait for SIGTERM/SIGINT, exit 0
       vclab-workload ready           write 123 to I/O port 0x3f0 through /dev/port (vclab guest)
       vclab-workload guest-exit N    write N (0-255) to I/O port 0x3f1 through /dev/port (vclab guest)
       vclab-workload probe [--escapes] [--target-pid PID] [--no-syscalls]
                                      print one JSON line: syscall reach, host visibility and (with
                                      --escapes) the escape checks; PID (default: the
                                      VCLAB_PROBE_TARGET_PID variable) is a process outside the
                                      container for the ptrace check";

/// One invocation.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Run a kernel and print its JSON line.
    Run(Params),
    /// Run the io kernel on a disk file and print its JSON line.
    RunIo {
        /// The params (kernel io).
        params: Params,
        /// The disk image.
        disk: PathBuf,
    },
    /// Write the io kernel's disk image.
    IoImage {
        /// Where.
        out: PathBuf,
        /// Bytes.
        size: u64,
        /// The image's seed.
        seed: u64,
    },
    /// Print the ready line and wait for a signal.
    Idle,
    /// Signal "guest ready" to the VMM.
    Ready,
    /// End the VM with this status.
    GuestExit(u8),
    /// Run the isolation probe.
    Probe(probe::Options),
    /// Print the usage.
    Help,
}

/// A command line this binary refuses.
#[derive(Debug, PartialEq, Eq)]
pub enum ArgsError {
    /// No command given.
    Missing,
    /// The first word is not a command.
    UnknownCommand(String),
    /// `run` without a kernel or with an unknown one.
    Kernel(Option<String>),
    /// An option `run` or `probe` does not know.
    UnknownOption(String),
    /// An option without its value.
    MissingValue(&'static str),
    /// A value that is not a number in range.
    BadNumber {
        /// The option or command the value belongs to.
        what: &'static str,
        /// The value given.
        value: String,
    },
    /// Params out of bounds (size, iterations).
    Params(vclab_workload::ParamsError),
    /// Words after a complete command.
    Extra(String),
    /// `run io` without `--disk`.
    NoDisk,
    /// `--disk` for a kernel other than io.
    DiskNotIo(Kernel),
    /// `io-image` without its size or file.
    ImageUsage,
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgsError::Missing => write!(
                f,
                "no command given: use run, idle, ready, guest-exit, probe or io-image (see --help)"
            ),
            ArgsError::UnknownCommand(c) => write!(
                f,
                "unknown command `{c}`: use run, idle, ready, guest-exit, probe or io-image (see --help)"
            ),
            ArgsError::Kernel(None) => {
                write!(f, "`run` needs a kernel: cpu, mem-bw, mem-lat or io")
            }
            ArgsError::Kernel(Some(k)) => {
                write!(f, "unknown kernel `{k}`: use cpu, mem-bw, mem-lat or io")
            }
            ArgsError::UnknownOption(o) if o.starts_with("probe:") => write!(
                f,
                "unknown option `{}` for probe: use --escapes, --target-pid or --no-syscalls",
                &o["probe:".len()..]
            ),
            ArgsError::UnknownOption(o) => write!(
                f,
                "unknown option `{o}` for run: use --size, --iterations, --seed or (io) --disk"
            ),
            ArgsError::MissingValue(o) => write!(f, "option {o} needs a value"),
            ArgsError::BadNumber { what, value } => {
                write!(f, "{what} `{value}` is not a valid decimal number in range")
            }
            ArgsError::Params(e) => write!(f, "{e}"),
            ArgsError::Extra(w) => write!(f, "unexpected argument `{w}` (see --help)"),
            ArgsError::NoDisk => write!(
                f,
                "`run io` needs --disk FILE (make one with `vclab-workload io-image --size BYTES FILE`)"
            ),
            ArgsError::DiskNotIo(k) => {
                write!(f, "--disk is for the io kernel only, not {k}")
            }
            ArgsError::ImageUsage => write!(
                f,
                "`io-image` needs --size BYTES and one output FILE: io-image --size BYTES [--seed N] FILE"
            ),
        }
    }
}

/// Parses the arguments after the program name.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, ArgsError> {
    let mut args = args.into_iter();
    let command = match args.next() {
        None => return Err(ArgsError::Missing),
        Some(c) => c,
    };
    let command = match command.as_str() {
        "-h" | "--help" | "help" => Command::Help,
        "run" => return parse_run(args),
        "io-image" => return parse_io_image(args),
        "probe" => return parse_probe(args, std::env::var("VCLAB_PROBE_TARGET_PID").ok()),
        "idle" => Command::Idle,
        "ready" => Command::Ready,
        "guest-exit" => {
            let value = args.next().ok_or(ArgsError::MissingValue("guest-exit"))?;
            let status = value.parse::<u8>().map_err(|_| ArgsError::BadNumber {
                what: "guest-exit status (0-255)",
                value,
            })?;
            Command::GuestExit(status)
        }
        _ => return Err(ArgsError::UnknownCommand(command)),
    };
    match args.next() {
        Some(extra) => Err(ArgsError::Extra(extra)),
        None => Ok(command),
    }
}

/// Splits `--option=value` into the option and its inline value.
fn split_inline(arg: String) -> (String, Option<String>) {
    match arg.split_once('=') {
        Some((o, v)) if o.starts_with("--") => (o.to_owned(), Some(v.to_owned())),
        _ => (arg, None),
    }
}

/// Parses `run <kernel> [--size BYTES] [--iterations N] [--seed N]` (also `--size=BYTES`), and
/// for io `--disk FILE`.
fn parse_run(mut args: impl Iterator<Item = String>) -> Result<Command, ArgsError> {
    let name = args.next().ok_or(ArgsError::Kernel(None))?;
    let kernel = Kernel::from_name(&name).ok_or(ArgsError::Kernel(Some(name)))?;
    let mut params = Params::new(kernel);
    let mut disk = None;
    while let Some(arg) = args.next() {
        let (option, inline) = split_inline(arg);
        if option == "--disk" {
            let value = inline.or_else(|| args.next());
            disk = Some(PathBuf::from(
                value.ok_or(ArgsError::MissingValue("--disk"))?,
            ));
            continue;
        }
        let (name, slot): (&'static str, &mut u64) = match option.as_str() {
            "--size" => ("--size", &mut params.size),
            "--iterations" => ("--iterations", &mut params.iterations),
            "--seed" => ("--seed", &mut params.seed),
            _ if option.starts_with('-') => return Err(ArgsError::UnknownOption(option)),
            _ => return Err(ArgsError::Extra(option)),
        };
        let value = match inline {
            Some(v) => v,
            None => args.next().ok_or(ArgsError::MissingValue(name))?,
        };
        *slot = value
            .parse::<u64>()
            .map_err(|_| ArgsError::BadNumber { what: name, value })?;
    }
    params.validate().map_err(ArgsError::Params)?;
    match (kernel.needs_disk(), disk) {
        (true, Some(disk)) => Ok(Command::RunIo { params, disk }),
        (true, None) => Err(ArgsError::NoDisk),
        (false, Some(_)) => Err(ArgsError::DiskNotIo(kernel)),
        (false, None) => Ok(Command::Run(params)),
    }
}

/// Parses `io-image --size BYTES [--seed N] FILE` (also `--size=BYTES`).
fn parse_io_image(mut args: impl Iterator<Item = String>) -> Result<Command, ArgsError> {
    let (mut size, mut seed, mut out) = (None, vclab_workload::params::DEFAULT_SEED, None);
    while let Some(arg) = args.next() {
        let (option, inline) = split_inline(arg);
        let name = match option.as_str() {
            "--size" => "--size",
            "--seed" => "--seed",
            _ if option.starts_with('-') => return Err(ArgsError::UnknownOption(option)),
            _ if out.is_none() => {
                out = Some(PathBuf::from(option));
                continue;
            }
            _ => return Err(ArgsError::Extra(option)),
        };
        let value = match inline {
            Some(v) => v,
            None => args.next().ok_or(ArgsError::MissingValue(name))?,
        };
        let n = value
            .parse::<u64>()
            .map_err(|_| ArgsError::BadNumber { what: name, value })?;
        match name {
            "--size" => size = Some(n),
            _ => seed = n,
        }
    }
    match (size, out) {
        (Some(size), Some(out)) => Ok(Command::IoImage { out, size, seed }),
        _ => Err(ArgsError::ImageUsage),
    }
}

/// Parses `probe [--escapes] [--target-pid PID] [--no-syscalls]`; `env_pid` is
/// `VCLAB_PROBE_TARGET_PID`, used when `--target-pid` is not given.
fn parse_probe(
    mut args: impl Iterator<Item = String>,
    env_pid: Option<String>,
) -> Result<Command, ArgsError> {
    let mut options = probe::Options::default();
    let mut pid = env_pid.filter(|p| !p.is_empty());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--escapes" => options.escapes = true,
            "--no-syscalls" => options.no_syscalls = true,
            "--target-pid" => {
                pid = Some(args.next().ok_or(ArgsError::MissingValue("--target-pid"))?);
            }
            _ if arg.starts_with("--target-pid=") => {
                pid = Some(arg["--target-pid=".len()..].to_owned());
            }
            _ if arg.starts_with('-') => {
                return Err(ArgsError::UnknownOption(format!("probe:{arg}")))
            }
            _ => return Err(ArgsError::Extra(arg)),
        }
    }
    if let Some(value) = pid {
        let n = value.parse::<i32>().ok().filter(|&n| n > 0);
        options.target_pid = Some(n.ok_or(ArgsError::BadNumber {
            what: "--target-pid",
            value,
        })?);
    }
    Ok(Command::Probe(options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(words: &[&str]) -> Result<Command, ArgsError> {
        parse(words.iter().map(|s| s.to_string()))
    }

    #[test]
    fn run_with_options() {
        let cmd = p(&[
            "run",
            "mem-lat",
            "--size",
            "65536",
            "--iterations=2",
            "--seed",
            "9",
        ]);
        assert_eq!(
            cmd,
            Ok(Command::Run(Params {
                kernel: Kernel::MemLat,
                size: 65536,
                iterations: 2,
                seed: 9
            }))
        );
        assert_eq!(
            p(&["run", "cpu"]),
            Ok(Command::Run(Params::new(Kernel::Cpu)))
        );
    }

    #[test]
    fn probe_options() {
        let words = |w: &[&str]| {
            w.iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .into_iter()
        };
        assert_eq!(
            parse_probe(words(&[]), None),
            Ok(Command::Probe(probe::Options::default()))
        );
        assert_eq!(
            parse_probe(
                words(&["--escapes", "--target-pid", "42", "--no-syscalls"]),
                None
            ),
            Ok(Command::Probe(probe::Options {
                escapes: true,
                target_pid: Some(42),
                no_syscalls: true
            }))
        );
        // The variable gives the pid; the option wins over it.
        assert_eq!(
            parse_probe(words(&[]), Some("7".into())),
            Ok(Command::Probe(probe::Options {
                target_pid: Some(7),
                ..Default::default()
            }))
        );
        assert_eq!(
            parse_probe(words(&["--target-pid=9"]), Some("7".into())),
            Ok(Command::Probe(probe::Options {
                target_pid: Some(9),
                ..Default::default()
            }))
        );
    }

    #[test]
    fn io_run_and_image() {
        assert_eq!(
            p(&[
                "run",
                "io",
                "--disk",
                "/var/tmp/d.img",
                "--size=65536",
                "--iterations",
                "9"
            ]),
            Ok(Command::RunIo {
                params: Params {
                    kernel: Kernel::Io,
                    size: 65536,
                    iterations: 9,
                    seed: 1
                },
                disk: PathBuf::from("/var/tmp/d.img")
            })
        );
        assert_eq!(
            p(&["run", "io", "--disk=d"]),
            Ok(Command::RunIo {
                params: Params::new(Kernel::Io),
                disk: PathBuf::from("d")
            })
        );
        assert_eq!(p(&["run", "io"]), Err(ArgsError::NoDisk));
        assert_eq!(
            p(&["run", "io", "--disk"]),
            Err(ArgsError::MissingValue("--disk"))
        );
        assert_eq!(
            p(&["run", "cpu", "--disk", "d"]),
            Err(ArgsError::DiskNotIo(Kernel::Cpu))
        );
        assert!(matches!(
            p(&["run", "io", "--disk", "d", "--size", "5000"]),
            Err(ArgsError::Params(vclab_workload::ParamsError::IoSize {
                size: 5000
            }))
        ));
        assert_eq!(
            p(&["io-image", "--size", "8192", "out.img", "--seed=4"]),
            Ok(Command::IoImage {
                out: PathBuf::from("out.img"),
                size: 8192,
                seed: 4
            })
        );
        assert_eq!(p(&["io-image", "out.img"]), Err(ArgsError::ImageUsage));
        assert_eq!(
            p(&["io-image", "--size", "8192"]),
            Err(ArgsError::ImageUsage)
        );
        assert!(matches!(
            p(&["io-image", "--size", "8192", "a", "b"]),
            Err(ArgsError::Extra(_))
        ));
        assert!(matches!(
            p(&["io-image", "--size", "x", "a"]),
            Err(ArgsError::BadNumber { what: "--size", .. })
        ));
    }

    #[test]
    fn other_commands() {
        assert_eq!(p(&["idle"]), Ok(Command::Idle));
        assert_eq!(p(&["ready"]), Ok(Command::Ready));
        assert_eq!(p(&["guest-exit", "7"]), Ok(Command::GuestExit(7)));
        assert_eq!(p(&["--help"]), Ok(Command::Help));
    }

    #[test]
    fn errors() {
        assert_eq!(p(&[]), Err(ArgsError::Missing));
        assert!(matches!(p(&["walk"]), Err(ArgsError::UnknownCommand(_))));
        assert_eq!(p(&["run"]), Err(ArgsError::Kernel(None)));
        assert!(matches!(
            p(&["run", "gpu"]),
            Err(ArgsError::Kernel(Some(_)))
        ));
        assert!(matches!(
            p(&["run", "cpu", "--fast"]),
            Err(ArgsError::UnknownOption(_))
        ));
        assert_eq!(
            p(&["run", "cpu", "--size"]),
            Err(ArgsError::MissingValue("--size"))
        );
        assert!(matches!(
            p(&["run", "cpu", "--seed", "-1"]),
            Err(ArgsError::BadNumber { .. })
        ));
        assert!(matches!(
            p(&["run", "cpu", "--size", "1"]),
            Err(ArgsError::Params(_))
        ));
        assert!(matches!(
            p(&["run", "cpu", "--iterations", "0"]),
            Err(ArgsError::Params(_))
        ));
        assert!(matches!(
            p(&["guest-exit", "256"]),
            Err(ArgsError::BadNumber { .. })
        ));
        assert!(matches!(p(&["idle", "now"]), Err(ArgsError::Extra(_))));
        assert!(matches!(
            parse_probe(["--fast".to_string()].into_iter(), None),
            Err(ArgsError::UnknownOption(_))
        ));
        assert!(matches!(
            parse_probe(["--target-pid".to_string(), "0".into()].into_iter(), None),
            Err(ArgsError::BadNumber { .. })
        ));
        assert!(matches!(
            parse_probe(std::iter::empty(), Some("x".into())),
            Err(ArgsError::BadNumber { .. })
        ));
        assert!(matches!(
            p(&["run", "cpu", "extra"]),
            Err(ArgsError::Extra(_))
        ));
    }
}
