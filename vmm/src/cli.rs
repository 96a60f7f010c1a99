//! The VMM's command line: `vclab-vmm ARGS` and `vclab vm run ARGS` share
//! this parser and runner, so there is one behaviour behind two entry points.
//! It is parsed with `lexopt` rather than clap: the dedicated `vclab-vmm`
//! binary stays small, which is what its start-up time and memory figures
//! measure.
//!
//! Exit codes: the guest's status when it writes the lab exit port
//! (`guest-exit`); 0 for a reset, or a requested stop at the init handoff or
//! at `--stop-at-console`; 124 timeout; 121 triple fault; 122 KVM internal
//! error or emulation failure; 123 guest kernel panic; 130 / 143 when SIGINT /
//! SIGTERM stopped the VM; 1 when the VM could not be set up (bad arguments,
//! missing files, no KVM, a missing or corrupt `--restore` snapshot); a snapshotting run
//! (`--snapshot-at ready`) resumes after its snapshot and ends as any run; death by SIGSYS
//! when the seccomp filters caught a forbidden syscall (`--jail`: 128 + the signal, said on
//! stderr).

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use vclab_contract::ExitReason;

use crate::config::{DiskSpec, Output, RestoreSpec, SnapshotSpec, StopAt, VmConfig, VmReport};
use crate::host::KvmKind;
use crate::snapshot::{RestoreMode, SaveMode};
use crate::{jail, seccomp};

/// Exit code of a run that hit `--timeout`.
pub const EXIT_TIMEOUT: i32 = 124;
/// Exit code of a triple fault.
pub const EXIT_TRIPLE_FAULT: i32 = 121;
/// Exit code of a KVM internal error / emulation failure.
pub const EXIT_INTERNAL_ERROR: i32 = 122;
/// Exit code of a guest kernel panic.
pub const EXIT_GUEST_PANIC: i32 = 123;
/// Exit code of a VM that could not be set up.
pub const EXIT_SETUP: i32 = 1;
/// Exit code of a VM stopped by SIGINT (128 + 2, as a shell reports it).
pub const EXIT_SIGINT: i32 = 128 + libc::SIGINT;
/// Exit code of a VM stopped by SIGTERM (128 + 15).
pub const EXIT_SIGTERM: i32 = 128 + libc::SIGTERM;

/// The usage text of `--help`.
pub const USAGE: &str = "\
Boot one micro-VM and run it until the guest exits, resets, faults or the timeout ends it.

Usage: vclab-vmm --kernel PATH [OPTIONS]      (also: vclab vm run --kernel PATH [OPTIONS])
       vclab-vmm --restore DIR [OPTIONS]

Options:
  --kernel PATH            an ELF (the lab unikernel or a Linux vmlinux) or a bzImage
  --initrd PATH            an initrd / initramfs loaded high in guest memory
  --disk PATH[,ro][,direct]
                           attach a raw disk image (a multiple of 512 bytes) as a virtio-blk
                           device on virtio-mmio; repeat for more (/dev/vda, /dev/vdb, ...);
                           `,ro` gives the guest a read-only disk; `,direct` opens it with
                           O_DIRECT (no host page cache, as QEMU's cache=none)
  --cmdline TEXT           appended to the kernel command line the VMM composes
                           (e.g. \"vclab.kernel=cpu vclab.iterations=10\")
  --mem MIB                guest memory in MiB [default: 128]
  --vcpus N                number of vCPUs, 1 or more [default: 1]
  --timeout SECS           end the VM after this many seconds (exit code 124)
  --console WHERE          serial console: stdout, off, or a file path [default: stdout]
  --json                   print one JSON report as the last line on stdout
  --verbose-guest          keep the Linux kernel's boot messages (drop `quiet`)
  --stop-at WHEN           auto, init-handoff or never [default: auto]; auto stops a Linux
                           boot at the init handoff on kvm_pvm, where guest userspace cannot run
  --stop-at-console TEXT   end the VM (exit code 0) at the first console line containing TEXT
  --lab-device on|off      give the guest the lab control device [default: on]; off hides it
                           (port 0x3f0 reads all-ones, as on another VMM): the unikernel then
                           prints on the serial console and ends by a reset (exit code 0)
  --hugepages on|off       ask for transparent huge pages on guest RAM (madvise MADV_HUGEPAGE;
                           used where THP is `always` or `madvise`) [default: off]
  --snapshot-at ready      pause the VM at the guest's first ready signal (lab device port
                           0x3f0), write a snapshot into --snapshot-dir, then resume it: the
                           run goes on and ends as it would have (1 vCPU, no --disk; the
                           report's \"snapshot\" gives its time and size)
  --snapshot-dir DIR       where --snapshot-at writes (made if missing; a snapshot there is
                           replaced): snapshot.json (the manifest, written last), state.json
                           (vCPU, irqchip, PIT, clock and device states), memory (guest RAM,
                           zero pages left as holes)
  --restore DIR            build the VM from the snapshot in DIR instead of booting a kernel
                           (no --kernel, --initrd or --disk: they are the snapshot's); the
                           guest resumes after its ready signal. A missing, truncated,
                           corrupted or foreign snapshot is refused (exit code 1)
  --restore-mode MODE      how guest memory comes back: mmap (the file mapped private, pages
                           read on first touch), eager (read in before the guest runs) or
                           uffd (userfaultfd fills pages on first touch) [default: mmap]
  --cmdline-after-restore TEXT
                           vclab.* words the restored guest reads from the lab device's
                           params register, overriding the command line it read at boot
                           (e.g. \"vclab.kernel=mem-bw vclab.size=4096\"); at most 2048 bytes
  --no-seccomp             run without the per-thread seccomp filters (on by default: a
                           forbidden syscall kills the VMM with SIGSYS)
  --seccomp-log            filters on, but a forbidden syscall is allowed and logged by the
                           kernel (audit) instead, to find a missing entry
  --jail                   run the VMM in a jail (root only): new mount, pid and net namespaces,
                           a tmpfs root under /run/vclab/jail-<pid>/root holding only /dev/kvm,
                           /dev/null and the kernel/initrd (read-only), its own cgroup
                           vclab-jail-<pid>, as --jail-uid/--jail-gid; all removed at the end
  --jail-uid N             the jailed VMM's uid [default: 65534]
  --jail-gid N             the jailed VMM's gid [default: 65534]
  -h, --help               print this help
  -V, --version            print the version

Signals: SIGINT and SIGTERM stop the VM cleanly, also when the VMM was started in the
background with SIGINT ignored: the report is printed (--json: exit_reason \"signal\",
stop_signal \"SIGINT\" or \"SIGTERM\") and the exit code is 130 or 143.

Exit code: the guest's status written to the lab exit port; 0 after a reset or a
requested stop; 124 timeout; 121 triple fault; 122 KVM internal error (emulation
failure; also a snapshot that could not be written at the ready signal); 123 guest
kernel panic; 130 SIGINT, 143 SIGTERM; 1 when the VM could not be set up (also a
missing, truncated, corrupted or foreign --restore snapshot: nothing is left behind).
--snapshot-at ready does not change the exit code: the VM resumes after the snapshot.
A syscall the seccomp filters forbid kills the VMM with SIGSYS (a shell shows
159; the kernel log names the syscall); under --jail the VMM that jailed itself says so
and exits 128 + the signal.
";

/// Errors of the command line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An option the VMM does not know, a missing value, a stray argument.
    #[error("{0}; see --help")]
    Syntax(String),
    /// A value that does not parse or is out of range.
    #[error("{flag} {value}: {what}")]
    Value {
        /// The option.
        flag: &'static str,
        /// The value given.
        value: String,
        /// What to give instead.
        what: &'static str,
    },
    /// No `--kernel`.
    #[error("no kernel given: add --kernel PATH (the lab unikernel, a vmlinux or a bzImage) or --restore DIR")]
    NoKernel,
    /// Options that do not go together.
    #[error("{0}")]
    Conflict(&'static str),
}

impl From<lexopt::Error> for Error {
    fn from(e: lexopt::Error) -> Self {
        Error::Syntax(e.to_string())
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Request {
    /// Run one VM; print the JSON report when the flag is set.
    Run(Box<VmConfig>, bool),
    /// Run one VM in a jail (`--jail`); print the JSON report when the flag is set.
    Jailed(Box<VmConfig>, bool, jail::Options),
    /// `--help`.
    Help,
    /// `--version`.
    Version,
}

fn value_of<T: std::str::FromStr>(
    flag: &'static str,
    raw: OsString,
    what: &'static str,
) -> Result<T, Error> {
    let text = raw.to_string_lossy().into_owned();
    text.parse().map_err(|_| Error::Value {
        flag,
        value: text,
        what,
    })
}

fn console_of(raw: OsString) -> Result<Output, Error> {
    Ok(match raw.to_str() {
        Some("stdout") => Output::Stdout,
        Some("off") => Output::Off,
        Some("") => {
            return Err(Error::Value {
                flag: "--console",
                value: "\"\"".to_string(),
                what: "give stdout, off or a file path",
            })
        }
        _ => Output::File(PathBuf::from(raw)),
    })
}

fn on_off(flag: &'static str, raw: OsString) -> Result<bool, Error> {
    match raw.to_str() {
        Some("on") => Ok(true),
        Some("off") => Ok(false),
        _ => Err(Error::Value {
            flag,
            value: raw.to_string_lossy().into_owned(),
            what: "give on or off",
        }),
    }
}

fn stop_at_of(raw: OsString) -> Result<StopAt, Error> {
    match raw.to_str() {
        Some("auto") => Ok(StopAt::Auto),
        Some("init-handoff") => Ok(StopAt::InitHandoff),
        Some("never") => Ok(StopAt::Never),
        _ => Err(Error::Value {
            flag: "--stop-at",
            value: raw.to_string_lossy().into_owned(),
            what: "give auto, init-handoff or never",
        }),
    }
}

/// The snapshot and restore options as given, checked together by [`Snap::apply`].
#[derive(Default)]
struct Snap {
    at_ready: bool,
    dir: Option<PathBuf>,
    restore: Option<PathBuf>,
    mode: Option<RestoreMode>,
    after: Option<String>,
}

impl Snap {
    /// Puts the options into `cfg`, with the kernel (needed unless restoring).
    fn apply(self, cfg: &mut VmConfig, kernel: Option<PathBuf>, jailed: bool) -> Result<(), Error> {
        let conflict = |what| Err(Error::Conflict(what));
        match (self.at_ready, self.dir) {
            (true, Some(dir)) => {
                cfg.snapshot = Some(SnapshotSpec {
                    dir,
                    save_mode: SaveMode::SkipZero,
                })
            }
            (true, None) => return conflict("--snapshot-at ready needs --snapshot-dir DIR"),
            (false, Some(_)) => return conflict("--snapshot-dir needs --snapshot-at ready"),
            (false, None) => {}
        }
        if jailed && (cfg.snapshot.is_some() || self.restore.is_some()) {
            return conflict("--jail does not take --snapshot-at or --restore yet (its root holds no snapshot directory)");
        }
        let Some(dir) = self.restore else {
            if self.mode.is_some() || self.after.is_some() {
                return conflict("--restore-mode and --cmdline-after-restore need --restore DIR");
            }
            cfg.kernel = kernel.ok_or(Error::NoKernel)?;
            return Ok(());
        };
        if kernel.is_some() {
            return conflict("--restore takes the guest from the snapshot: drop --kernel");
        }
        if cfg.snapshot.is_some() {
            return conflict("--restore and --snapshot-at do not go together: a restored guest is past its ready signal");
        }
        cfg.restore = Some(RestoreSpec {
            dir,
            mode: self.mode.unwrap_or_default(),
            cmdline_after: self.after,
        });
        Ok(())
    }
}

/// Parses the arguments after the program name (or after `vm run`); the
/// timestamps of the run count from `origin`.
pub fn parse(args: impl IntoIterator<Item = OsString>, origin: Instant) -> Result<Request, Error> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let mut kernel = None;
    let mut cfg = VmConfig::new(PathBuf::new());
    let mut json = false;
    let (mut jailed, mut jail_opts) = (false, jail::Options::default());
    let mut snap = Snap::default();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("kernel") => kernel = Some(PathBuf::from(parser.value()?)),
            Long("initrd") => cfg.initrd = Some(PathBuf::from(parser.value()?)),
            Long("disk") => {
                let raw = parser.value()?;
                let spec = raw.to_str().and_then(DiskSpec::parse);
                cfg.disks.push(spec.ok_or_else(|| Error::Value {
                    flag: "--disk",
                    value: raw.to_string_lossy().into_owned(),
                    what: "give PATH, PATH,ro or PATH,direct (a raw image file)",
                })?);
            }
            Long("cmdline") => {
                cfg.cmdline = parser.value()?.into_string().map_err(|_| Error::Value {
                    flag: "--cmdline",
                    value: "(not UTF-8)".to_string(),
                    what: "give the command line as UTF-8 text",
                })?
            }
            Long("mem") => {
                cfg.mem_mib = value_of("--mem", parser.value()?, "give a size in MiB (e.g. 128)")?;
                if cfg.mem_mib == 0 {
                    return Err(Error::Value {
                        flag: "--mem",
                        value: "0".to_string(),
                        what: "a VM needs memory; use --mem 2 or more (MiB)",
                    });
                }
            }
            Long("vcpus") => {
                cfg.vcpus = value_of(
                    "--vcpus",
                    parser.value()?,
                    "give a number of vCPUs (1 or more)",
                )?;
                if cfg.vcpus == 0 {
                    return Err(Error::Value {
                        flag: "--vcpus",
                        value: "0".to_string(),
                        what: "a VM needs at least one vCPU; use --vcpus 1 or more",
                    });
                }
            }
            Long("timeout") => {
                let raw = parser.value()?;
                let secs: f64 = value_of(
                    "--timeout",
                    raw.clone(),
                    "give a positive number of seconds",
                )?;
                if !(secs.is_finite() && secs > 0.0) {
                    return Err(Error::Value {
                        flag: "--timeout",
                        value: raw.to_string_lossy().into_owned(),
                        what: "give a positive number of seconds",
                    });
                }
                cfg.timeout =
                    Some(Duration::try_from_secs_f64(secs).map_err(|_| Error::Value {
                        flag: "--timeout",
                        value: raw.to_string_lossy().into_owned(),
                        what: "give a positive number of seconds (below 2^64)",
                    })?);
            }
            Long("console") => cfg.console = console_of(parser.value()?)?,
            Long("json") => json = true,
            Long("verbose-guest") => cfg.verbose_guest = true,
            Long("stop-at") => cfg.stop_at = stop_at_of(parser.value()?)?,
            Long("stop-at-console") => {
                cfg.stop_at_console = Some(parser.value()?.to_string_lossy().into_owned())
            }
            Long("lab-device") => cfg.lab_device = on_off("--lab-device", parser.value()?)?,
            Long("hugepages") => cfg.hugepages = on_off("--hugepages", parser.value()?)?,
            Long("no-seccomp") => cfg.seccomp = seccomp::Mode::Off,
            Long("seccomp-log") => cfg.seccomp = seccomp::Mode::Log,
            Long("snapshot-at") => {
                let raw = parser.value()?;
                if raw != "ready" {
                    return Err(Error::Value {
                        flag: "--snapshot-at",
                        value: raw.to_string_lossy().into_owned(),
                        what: "give ready (the guest's ready signal)",
                    });
                }
                snap.at_ready = true;
            }
            Long("snapshot-dir") => snap.dir = Some(PathBuf::from(parser.value()?)),
            Long("restore") => snap.restore = Some(PathBuf::from(parser.value()?)),
            Long("restore-mode") => {
                let raw = parser.value()?;
                snap.mode = Some(value_of("--restore-mode", raw, "give mmap, eager or uffd")?);
            }
            Long("cmdline-after-restore") => {
                let text = parser.value()?.into_string().map_err(|_| Error::Value {
                    flag: "--cmdline-after-restore",
                    value: "(not UTF-8)".to_string(),
                    what: "give the words as UTF-8 text",
                })?;
                if text.len() > vclab_contract::labctl::MAX_PARAMS_TEXT as usize {
                    return Err(Error::Value {
                        flag: "--cmdline-after-restore",
                        value: format!("({} bytes)", text.len()),
                        what: "give at most 2048 bytes (the lab device's params record)",
                    });
                }
                snap.after = Some(text);
            }
            Long("jail") => jailed = true,
            Long("jail-uid") => {
                jail_opts.uid = value_of("--jail-uid", parser.value()?, "give a numeric uid")?
            }
            Long("jail-gid") => {
                jail_opts.gid = value_of("--jail-gid", parser.value()?, "give a numeric gid")?
            }
            Short('h') | Long("help") => return Ok(Request::Help),
            Short('V') | Long("version") => return Ok(Request::Version),
            other => return Err(other.unexpected().into()),
        }
    }
    snap.apply(&mut cfg, kernel, jailed)?;
    cfg.origin = origin;
    cfg.stop_signals = true;
    if jailed {
        return Ok(Request::Jailed(Box::new(cfg), json, jail_opts));
    }
    Ok(Request::Run(Box::new(cfg), json))
}

/// Parses, runs one VM, prints the report and the reason it ended, and
/// returns the process exit code. `origin` should be taken first thing in
/// `main`: the report's timestamps count from it.
pub fn main(args: impl IntoIterator<Item = OsString>, origin: Instant) -> i32 {
    let (mut cfg, json, jail_opts) = match parse(args, origin) {
        Ok(Request::Run(cfg, json)) => (cfg, json, None),
        Ok(Request::Jailed(cfg, json, opts)) => (cfg, json, Some(opts)),
        Ok(Request::Help) => {
            print!("{USAGE}");
            return 0;
        }
        Ok(Request::Version) => {
            println!("vclab-vmm {}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        Err(e) => {
            eprintln!("vclab: {e}");
            return EXIT_SETUP;
        }
    };
    // This is the VMM's own process: filters on unless the command line said otherwise.
    if cfg.seccomp == seccomp::Mode::Default {
        cfg.seccomp = seccomp::Mode::Kill;
    }
    cfg.seccomp_selftest = seccomp::selftest_requested();
    // A jailed VMM reads its kernel and initrd through bind mounts, and its disks through fds
    // the jail opens: a file it cannot use is said here, in one line naming it, rather than as
    // a failed mount or open inside the jail.
    if jail_opts.is_some() {
        let initrd = cfg.initrd.as_deref().map(crate::loader::open_initrd);
        let checked = crate::loader::probe(&cfg.kernel).and(initrd.transpose());
        if let Err(e) = checked {
            eprintln!("vclab: {e}");
            return EXIT_SETUP;
        }
        if let Err(e) = crate::attach::open(&cfg.disks, &[]) {
            eprintln!("vclab: {e}");
            return EXIT_SETUP;
        }
    }
    match jail_opts {
        None => run_config(&cfg, json),
        Some(opts) => match jail::run(*cfg, opts, |cfg| run_config(&cfg, json)) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("vclab: {e}");
                EXIT_SETUP
            }
        },
    }
}

/// Runs one VM as `cfg` says, prints the reason it ended (and the JSON report with `json`)
/// and returns the exit code.
pub fn run_config(cfg: &VmConfig, json: bool) -> i32 {
    // The VMM's errors name what failed and what to do; no extra context.
    let report = match crate::run(cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vclab: {e}");
            return EXIT_SETUP;
        }
    };
    let code = describe(&report);
    if let (Some(spec), None) = (&cfg.snapshot, &report.snapshot) {
        eprintln!(
            "vclab: no snapshot was taken: the guest never signalled ready on the lab device; {} holds no snapshot",
            spec.dir.display()
        );
    }
    if json {
        // Written, not println!: a closed stdout (`| head -1`) is an error to report, not a panic.
        let written = serde_json::to_string(&report)
            .map_err(std::io::Error::other)
            .and_then(|line| {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{line}").and_then(|()| out.flush())
            });
        if let Err(e) = written {
            eprintln!("vclab: cannot write the JSON report: {e}");
            return EXIT_SETUP;
        }
    }
    code
}

fn ms(ns: Option<u64>) -> String {
    ns.map_or("-".to_string(), |n| format!("{:.1} ms", n as f64 / 1e6))
}

/// The exit code for a report, and the line that says why the VM ended.
pub fn outcome(report: &VmReport) -> (i32, String) {
    if let Some(signal) = &report.stop_signal {
        let code = match signal.as_str() {
            "SIGINT" => EXIT_SIGINT,
            _ => EXIT_SIGTERM,
        };
        return (
            code,
            format!("stopped by {signal} after {}", ms(report.exit_ns)),
        );
    }
    match report.exit_reason {
        ExitReason::GuestExit => {
            let code = report.guest_exit_code.unwrap_or(0);
            let after = ms(report.exit_ns);
            (
                i32::from(code),
                format!("guest exited with status {code} after {after}"),
            )
        }
        ExitReason::Reset => (
            0,
            format!("guest reset the VM after {}", ms(report.exit_ns)),
        ),
        ExitReason::InitHandoff => {
            let why = if report.kvm_kind == Some(KvmKind::Pvm) {
                ": guest userspace cannot run on this host (kvm_pvm: guest system calls fault)"
            } else {
                " as asked (--stop-at init-handoff)"
            };
            let after = ms(report.init_handoff_ns);
            (
                0,
                format!("Linux reached the init handoff after {after}; stopped there{why}"),
            )
        }
        ExitReason::ConsoleMatch => (
            0,
            format!(
                "stopped at the console line asked for after {}",
                ms(report.exit_ns)
            ),
        ),
        ExitReason::Timeout => (
            EXIT_TIMEOUT,
            format!("timeout: the VM was stopped after {}", ms(report.exit_ns)),
        ),
        // A report from another VMM build without `stop_signal`.
        ExitReason::Signal => (
            EXIT_SIGTERM,
            format!("stopped by a signal after {}", ms(report.exit_ns)),
        ),
        ExitReason::TripleFault => (
            EXIT_TRIPLE_FAULT,
            "the guest triple-faulted (KVM_EXIT_SHUTDOWN)".to_string(),
        ),
        ExitReason::GuestPanic => (
            EXIT_GUEST_PANIC,
            format!(
                "the guest kernel panicked; last console lines:\n{}",
                report.exit_detail.as_deref().unwrap_or("")
            ),
        ),
        ExitReason::InternalError => (
            EXIT_INTERNAL_ERROR,
            format!(
                "the VM stopped on an internal error: {}",
                report.exit_detail.as_deref().unwrap_or("unknown")
            ),
        ),
    }
}

/// Says on stderr why the VM ended (and what its snapshot or restore cost) and returns the
/// exit code.
fn describe(report: &VmReport) -> i32 {
    if let Some(s) = &report.snapshot {
        eprintln!(
            "vclab: snapshot written to {} in {:.2} ms ({} KiB of {} KiB memory, state {} KiB)",
            s.dir,
            s.snapshot_ns as f64 / 1e6,
            s.memory_written_bytes / 1024,
            s.memory_bytes / 1024,
            s.state_bytes / 1024
        );
    }
    if let Some(r) = &report.restore {
        eprintln!(
            "vclab: restored from {} ({}) in {:.2} ms; guest asked for its params at {}",
            r.dir,
            r.mode,
            r.restore_ns as f64 / 1e6,
            ms(report.guest_params_ns)
        );
    }
    let (code, line) = outcome(report);
    eprintln!("vclab: {line}");
    code
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_timeout_too_big_for_a_duration_is_refused() {
        let args = ["--kernel", "k", "--timeout", "1e30"].map(std::ffi::OsString::from);
        let r = super::parse(args, std::time::Instant::now());
        assert!(
            matches!(
                r,
                Err(super::Error::Value {
                    flag: "--timeout",
                    ..
                })
            ),
            "{r:?}"
        );
    }

    use super::*;
    use crate::config::DEFAULT_MEM_MIB;
    use vclab_contract::KernelFormat;

    fn p(args: &[&str]) -> Result<Request, Error> {
        parse(args.iter().map(OsString::from), Instant::now())
    }

    fn run_cfg(args: &[&str]) -> (VmConfig, bool) {
        match p(args) {
            Ok(Request::Run(cfg, json)) => (*cfg, json),
            other => panic!("expected a run, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let (cfg, json) = run_cfg(&["--kernel", "k.elf"]);
        assert_eq!(cfg.kernel, PathBuf::from("k.elf"));
        assert_eq!(cfg.mem_mib, DEFAULT_MEM_MIB);
        assert_eq!(cfg.vcpus, 1);
        assert_eq!(cfg.timeout, None);
        assert!(matches!(cfg.console, Output::Stdout));
        assert_eq!(cfg.stop_at, StopAt::Auto);
        assert!(cfg.lab_device);
        assert_eq!(cfg.hugepages, crate::config::DEFAULT_HUGEPAGES);
        assert!(cfg.stop_signals, "the CLI stops cleanly on SIGINT/SIGTERM");
        assert_eq!(
            cfg.seccomp,
            seccomp::Mode::Default,
            "on in main, off for a library caller of parse"
        );
        assert!(!json && !cfg.verbose_guest && cfg.initrd.is_none());
        assert!(cfg.disks.is_empty());
    }

    #[test]
    fn disk_values() {
        assert!(matches!(
            p(&["--kernel", "k", "--disk", ",ro"]),
            Err(Error::Value { flag: "--disk", .. })
        ));
        assert!(matches!(
            p(&["--kernel", "k", "--disk", ""]),
            Err(Error::Value { flag: "--disk", .. })
        ));
        let rw = run_cfg(&["--kernel", "k", "--disk", "a.img,rw"]).0;
        assert_eq!(rw.disks[0].path, PathBuf::from("a.img"));
        assert!(!rw.disks[0].read_only);
    }

    #[test]
    fn every_option() {
        let (cfg, json) = run_cfg(&[
            "--kernel=k",
            "--initrd",
            "i.cpio",
            "--cmdline",
            "vclab.kernel=cpu --not-an-option",
            "--mem",
            "64",
            "--vcpus",
            "2",
            "--timeout",
            "0.5",
            "--console",
            "/tmp/c.txt",
            "--json",
            "--verbose-guest",
            "--stop-at",
            "never",
            "--stop-at-console",
            "Hello",
            "--lab-device",
            "off",
            "--hugepages",
            "on",
            "--disk",
            "root.ext4",
            "--disk=/d/data,x.img,direct,ro",
        ]);
        assert_eq!(cfg.initrd, Some(PathBuf::from("i.cpio")));
        assert_eq!(
            cfg.disks,
            vec![
                DiskSpec {
                    path: "root.ext4".into(),
                    read_only: false,
                    direct: false
                },
                DiskSpec {
                    path: "/d/data,x.img".into(),
                    read_only: true,
                    direct: true
                }
            ]
        );
        assert_eq!(cfg.cmdline, "vclab.kernel=cpu --not-an-option");
        assert_eq!((cfg.mem_mib, cfg.vcpus), (64, 2));
        assert_eq!(cfg.timeout, Some(Duration::from_millis(500)));
        assert!(matches!(&cfg.console, Output::File(f) if f == &PathBuf::from("/tmp/c.txt")));
        assert!(json && cfg.verbose_guest);
        assert_eq!(cfg.stop_at, StopAt::Never);
        assert_eq!(cfg.stop_at_console.as_deref(), Some("Hello"));
        assert!(!cfg.lab_device);
        assert!(cfg.hugepages);
        assert!(run_cfg(&["--kernel", "k", "--lab-device=on"]).0.lab_device);
        let off = run_cfg(&["--kernel", "k", "--no-seccomp"]).0;
        assert_eq!(off.seccomp, seccomp::Mode::Off);
        let log = run_cfg(&["--kernel", "k", "--seccomp-log"]).0;
        assert_eq!(log.seccomp, seccomp::Mode::Log);
        match p(&[
            "--kernel",
            "k",
            "--jail",
            "--jail-uid",
            "1000",
            "--jail-gid=100",
        ]) {
            Ok(Request::Jailed(cfg, false, opts)) => {
                assert_eq!((opts.uid, opts.gid), (1000, 100));
                assert_eq!(cfg.seccomp, seccomp::Mode::Default);
            }
            other => panic!("expected a jailed run, got {other:?}"),
        }
        match p(&["--kernel", "k", "--jail"]) {
            Ok(Request::Jailed(_, _, opts)) => assert_eq!(opts, jail::Options::default()),
            other => panic!("expected a jailed run, got {other:?}"),
        }
        let (cfg, _) = run_cfg(&[
            "--kernel",
            "k",
            "--console",
            "off",
            "--stop-at",
            "init-handoff",
        ]);
        assert!(matches!(cfg.console, Output::Off));
        assert_eq!(cfg.stop_at, StopAt::InitHandoff);
    }

    #[test]
    fn snapshot_and_restore_options() {
        let (cfg, _) = run_cfg(&[
            "--kernel",
            "k",
            "--snapshot-at",
            "ready",
            "--snapshot-dir=/s",
        ]);
        let snap = cfg.snapshot.unwrap();
        assert_eq!(snap.dir, PathBuf::from("/s"));
        assert!(cfg.restore.is_none());
        let (cfg, _) = run_cfg(&["--restore", "/s"]);
        let r = cfg.restore.unwrap();
        assert_eq!(
            (r.dir, r.mode, r.cmdline_after),
            ("/s".into(), RestoreMode::Mmap, None)
        );
        let (cfg, _) = run_cfg(&[
            "--restore",
            "/s",
            "--restore-mode",
            "uffd",
            "--cmdline-after-restore",
            "vclab.kernel=cpu",
        ]);
        let r = cfg.restore.unwrap();
        assert_eq!(r.mode, RestoreMode::Uffd);
        assert_eq!(r.cmdline_after.as_deref(), Some("vclab.kernel=cpu"));
        for (args, says) in [
            (
                &["--kernel", "k", "--snapshot-at", "ready"][..],
                "needs --snapshot-dir",
            ),
            (
                &["--kernel", "k", "--snapshot-dir", "/s"],
                "needs --snapshot-at",
            ),
            (&["--kernel", "k", "--snapshot-at", "boot"], "give ready"),
            (&["--restore", "/s", "--kernel", "k"], "drop --kernel"),
            (
                &["--restore", "/s", "--restore-mode", "lazy"],
                "mmap, eager or uffd",
            ),
            (
                &["--kernel", "k", "--restore-mode", "eager"],
                "need --restore",
            ),
            (
                &["--kernel", "k", "--cmdline-after-restore", "x"],
                "need --restore",
            ),
            (&["--restore", "/s", "--jail"], "--jail does not take"),
            (
                &[
                    "--restore",
                    "/s",
                    "--snapshot-at",
                    "ready",
                    "--snapshot-dir",
                    "/t",
                ],
                "do not go together",
            ),
        ] {
            let e = p(args).unwrap_err().to_string();
            assert!(e.contains(says), "{args:?}: {e}");
        }
        let long = "x".repeat(2049);
        let e = p(&["--restore", "/s", "--cmdline-after-restore", &long]).unwrap_err();
        assert!(e.to_string().contains("at most 2048 bytes"), "{e}");
    }

    #[test]
    fn help_and_version() {
        assert!(matches!(p(&["--help"]), Ok(Request::Help)));
        assert!(matches!(p(&["-h", "--kernel", "k"]), Ok(Request::Help)));
        assert!(matches!(p(&["-V"]), Ok(Request::Version)));
    }

    #[test]
    fn bad_input_names_the_option() {
        let msg = |args: &[&str]| p(args).unwrap_err().to_string();
        assert!(msg(&[]).contains("--kernel PATH"));
        assert!(msg(&["--kernel", "k", "--mem", "0"]).starts_with("--mem 0:"));
        assert!(msg(&["--kernel", "k", "--mem", "lots"]).starts_with("--mem lots:"));
        assert!(msg(&["--kernel", "k", "--vcpus", "0"]).starts_with("--vcpus 0:"));
        assert!(msg(&["--kernel", "k", "--vcpus", "-1"]).contains("--vcpus"));
        assert!(msg(&["--kernel", "k", "--timeout", "0"]).starts_with("--timeout 0:"));
        assert!(msg(&["--kernel", "k", "--timeout", "inf"]).starts_with("--timeout inf:"));
        assert!(msg(&["--kernel", "k", "--console", ""]).contains("stdout, off or a file"));
        assert!(msg(&["--kernel", "k", "--stop-at", "later"]).contains("auto, init-handoff"));
        assert!(msg(&["--kernel", "k", "--lab-device", "no"]).starts_with("--lab-device no:"));
        assert!(msg(&["--kernel", "k", "--hugepages", "2M"]).starts_with("--hugepages 2M:"));
        assert!(msg(&["--kernel", "k", "--frobnicate"]).contains("--frobnicate"));
        assert!(msg(&["--kernel", "k", "--jail-uid", "nobody"]).starts_with("--jail-uid nobody:"));
        assert!(msg(&["--kernel", "k", "stray"]).contains("stray"));
        assert!(msg(&["--kernel"]).contains("--kernel"));
        for m in [msg(&[]), msg(&["--kernel", "k", "--bogus"])] {
            assert_eq!(m.lines().count(), 1, "{m}");
        }
    }

    #[test]
    fn outcomes_map_to_exit_codes() {
        let with = |reason: &str| VmReport {
            guest_exit_code: Some(7),
            ..VmReport::new(reason.parse().unwrap(), KernelFormat::Elf)
        };
        assert_eq!(outcome(&with("guest-exit")).0, 7);
        assert_eq!(outcome(&with("reset")).0, 0);
        assert_eq!(outcome(&with("init-handoff")).0, 0);
        assert_eq!(outcome(&with("console-match")).0, 0);
        assert_eq!(outcome(&with("timeout")).0, EXIT_TIMEOUT);
        assert_eq!(outcome(&with("triple-fault")).0, EXIT_TRIPLE_FAULT);
        assert_eq!(outcome(&with("guest-panic")).0, EXIT_GUEST_PANIC);
        assert_eq!(outcome(&with("internal-error")).0, EXIT_INTERNAL_ERROR);
        let pvm = VmReport {
            kvm_kind: Some(KvmKind::Pvm),
            ..with("init-handoff")
        };
        assert!(outcome(&pvm).1.contains("kvm_pvm"));
        let int = VmReport {
            stop_signal: Some("SIGINT".to_string()),
            ..with("timeout")
        };
        assert_eq!(outcome(&int).0, EXIT_SIGINT);
        assert!(outcome(&int).1.contains("SIGINT"));
        let term = VmReport {
            stop_signal: Some("SIGTERM".to_string()),
            ..with("timeout")
        };
        assert_eq!(outcome(&term).0, EXIT_SIGTERM);
    }
}
