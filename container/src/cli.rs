//! The launcher's command line, shared by the lean `vclab-container` binary
//! and `vclab container run` (which passes its arguments through unchanged):
//! one parser, one behaviour, two entry points.
//!
//! [`parse`] reads the arguments with lexopt and checks them without touching
//! the system (tier-1 testable); [`Options::into_config`] turns them into a
//! [`ContainerConfig`] (loading the bundle, copying `-e KEY` variables);
//! [`main`] runs the container, prints the JSON report and returns the exit
//! code. Exit codes: the container's status (128+N for signal N); 1 for bad
//! usage; 125, 126, 127 for launcher, cannot-execute and not-found errors
//! ([`crate::Error::exit_code`]).

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::PathBuf;

use crate::{size, spec, ContainerConfig};

/// Errors of the command line: bad usage (exit code 1), or the run's own
/// error (its [`crate::Error::exit_code`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An option the launcher does not know.
    #[error("unknown option {0}: see --help for the options")]
    UnknownOption(String),
    /// An option that needs a value came last.
    #[error("{option} needs a value: give {what}")]
    MissingValue {
        /// The option.
        option: String,
        /// What to give (e.g. `SIZE (e.g. 256m)`).
        what: &'static str,
    },
    /// A flag was given a value (`--json=1`).
    #[error("{option} takes no value: drop the {value:?}")]
    FlagValue {
        /// The flag.
        option: String,
        /// The value given.
        value: String,
    },
    /// A positional argument before `--`.
    #[error("unexpected argument {0:?}: put the command after `--` (-- CMD [ARG...])")]
    Positional(String),
    /// An argument is not valid UTF-8 where text is needed.
    #[error("{what} {value:?} is not valid UTF-8: give it as UTF-8 text")]
    NotUtf8 {
        /// What the argument is.
        what: String,
        /// The argument (lossily decoded).
        value: String,
    },
    /// Both `--rootfs` and `--bundle`.
    #[error("--rootfs and --bundle exclude each other: give one of them")]
    RootfsAndBundle,
    /// Neither `--rootfs` nor `--bundle`.
    #[error("give --rootfs DIR or --bundle DIR (see --help)")]
    NoImage,
    /// `--rootfs` without a command.
    #[error("no command given: add `-- CMD [ARG...]`")]
    NoCommand,
    /// `--bundle` with a command.
    #[error("--bundle takes the command from config.json: drop the CMD after --")]
    BundleCommand,
    /// `--memory` or `--cpus` could not be read.
    #[error("{flag}: {source}")]
    Size {
        /// The option.
        flag: &'static str,
        /// Why.
        source: size::Error,
    },
    /// `--pids` is not a number of at least 1.
    #[error("invalid --pids {0:?}: give a whole number of at least 1")]
    Pids(String),
    /// `-w` is not absolute.
    #[error("-w {0:?}: the working directory must be absolute")]
    Workdir(String),
    /// `--user` is not `UID[:GID]`.
    #[error("invalid --user {0:?}: give a numeric UID[:GID]")]
    User(String),
    /// The OCI bundle could not be used.
    #[error(transparent)]
    Bundle(spec::Error),
    /// The container run failed.
    #[error(transparent)]
    Run(crate::Error),
    /// The JSON report could not be written.
    #[error("cannot write the JSON report to stdout: {0}")]
    Report(std::io::Error),
}

impl Error {
    /// The exit code: the run's own code (125, 126, 127) for a run error,
    /// 125 for a report that could not be written, 1 for bad usage.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Run(e) => e.exit_code(),
            Error::Report(_) => 125,
            _ => 1,
        }
    }
}

/// The image to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    /// `--rootfs DIR`: the read-only lower layer of an overlay.
    Rootfs(PathBuf),
    /// `--bundle DIR`: an OCI runtime bundle (`DIR/config.json`).
    Bundle(PathBuf),
}

/// A checked `run` command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `--rootfs` or `--bundle`.
    pub image: Image,
    /// The command after `--` (empty with `--bundle`).
    pub command: Vec<String>,
    /// `--memory`, bytes.
    pub memory_bytes: Option<u64>,
    /// `--cpus`, CFS quota in µs per [`size::CPU_PERIOD_US`].
    pub cpu_quota_us: Option<u64>,
    /// `--pids`.
    pub pids: Option<u64>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `-e/--env`, in order (`KEY=VAL`, or `KEY` to copy from here).
    pub env: Vec<String>,
    /// `-w/--workdir` (absolute).
    pub workdir: Option<String>,
    /// `--user` as (uid, gid); the gid defaults to the uid.
    pub user: Option<(u32, u32)>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--init`.
    pub init: bool,
    /// `--id`.
    pub id: Option<String>,
    /// `--json`.
    pub json: bool,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run a container.
    Run(Box<Options>),
    /// `-h/--help`: print [`usage`].
    Help,
    /// `--version`.
    Version,
}

/// The help text; `prog` is how the launcher was invoked.
pub fn usage(prog: &str) -> String {
    format!(
        "\
Run one container: CMD on an overlay of the rootfs DIR (the image is never
changed), or the OCI runtime bundle DIR. Exits with the container's status
(128+N when killed by signal N); 1 on bad usage, 125 when the launcher fails,
126 when CMD cannot be executed, 127 when CMD is not found.

Usage: {prog} [OPTIONS] --rootfs DIR -- CMD [ARG...]
       {prog} [OPTIONS] --bundle DIR

Options:
      --rootfs DIR       The root file system directory (read-only lower layer)
      --bundle DIR       An OCI runtime bundle directory (holding config.json)
      --memory SIZE      Memory limit: a number with b, k, m or g (e.g. 256m)
      --cpus N           CPU limit as a fractional number of CPUs (e.g. 0.5)
      --pids N           Maximum number of processes and threads
      --hostname NAME    Host name inside the container
  -e, --env KEY=VAL      Set an environment variable (KEY alone copies it from here)
  -w, --workdir DIR      Working directory inside the container (absolute)
      --user UID[:GID]   User and optional group inside the container, as numbers
      --read-only        Mount the container's root file system read-only
      --init             Run a tiny init as PID 1 that reaps zombies and forwards signals
      --id ID            Container id (default: generated)
      --json             Print a JSON report as the last line on stdout
  -h, --help             Print this help
      --version          Print the version
"
    )
}

/// The next option's value (any text, also one starting with '-', but not
/// the `--` that starts the command).
fn value(p: &mut lexopt::Parser, option: &str, what: &'static str) -> Result<OsString, Error> {
    let missing = || Error::MissingValue {
        option: option.to_string(),
        what,
    };
    match p.value() {
        Ok(v) if v != "--" => Ok(v),
        _ => Err(missing()),
    }
}

fn utf8(what: &str, v: OsString) -> Result<String, Error> {
    v.into_string().map_err(|v| Error::NotUtf8 {
        what: what.to_string(),
        value: v.to_string_lossy().into_owned(),
    })
}

fn text(p: &mut lexopt::Parser, option: &str, what: &'static str) -> Result<String, Error> {
    let v = value(p, option, what)?;
    utf8(option, v)
}

fn parse_user(text: &str) -> Result<(u32, u32), Error> {
    let bad = || Error::User(text.to_string());
    let (u, g) = match text.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (text, None),
    };
    let uid: u32 = u.parse().map_err(|_| bad())?;
    let gid = match g {
        Some(g) => g.parse().map_err(|_| bad())?,
        None => uid,
    };
    Ok((uid, gid))
}

/// Parses the arguments of `run` (without the program name) and checks them.
/// Pure: reads no file and no environment variable.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Action, Error> {
    use lexopt::Arg::{Long, Short, Value};
    let mut p = lexopt::Parser::from_args(args);
    let (mut rootfs, mut bundle) = (None, None);
    let mut command = Vec::new();
    let mut o = Options {
        image: Image::Rootfs(PathBuf::new()),
        command: Vec::new(),
        memory_bytes: None,
        cpu_quota_us: None,
        pids: None,
        hostname: None,
        env: Vec::new(),
        workdir: None,
        user: None,
        read_only: false,
        init: false,
        id: None,
        json: false,
    };
    loop {
        // `--` starts the command: everything after it belongs to CMD.
        if let Some(mut raw) = p.try_raw_args() {
            if raw.peek() == Some(OsStr::new("--")) {
                raw.next();
                for a in raw {
                    command.push(utf8("argument", a)?);
                }
                break;
            }
        }
        let arg = match p.next() {
            Ok(Some(arg)) => arg,
            Ok(None) => break,
            Err(lexopt::Error::UnexpectedValue { option, value }) => {
                return Err(Error::FlagValue {
                    option,
                    value: value.to_string_lossy().into_owned(),
                })
            }
            Err(e) => return Err(Error::UnknownOption(e.to_string())),
        };
        match arg {
            Short('h') | Long("help") => return Ok(Action::Help),
            Long("version") => return Ok(Action::Version),
            Long("rootfs") => rootfs = Some(PathBuf::from(value(&mut p, "--rootfs", "DIR")?)),
            Long("bundle") => bundle = Some(PathBuf::from(value(&mut p, "--bundle", "DIR")?)),
            Long("memory") => {
                let v = text(&mut p, "--memory", "SIZE (e.g. 256m)")?;
                let bytes = size::parse_size(&v).map_err(|source| Error::Size {
                    flag: "--memory",
                    source,
                })?;
                o.memory_bytes = Some(bytes);
            }
            Long("cpus") => {
                let v = text(&mut p, "--cpus", "N (e.g. 0.5)")?;
                let quota = size::parse_cpus(&v).map_err(|source| Error::Size {
                    flag: "--cpus",
                    source,
                })?;
                o.cpu_quota_us = Some(quota);
            }
            Long("pids") => {
                let v = text(&mut p, "--pids", "N")?;
                match v.parse::<u64>() {
                    Ok(n) if n > 0 => o.pids = Some(n),
                    _ => return Err(Error::Pids(v)),
                }
            }
            Long("hostname") => o.hostname = Some(text(&mut p, "--hostname", "NAME")?),
            Short('e') | Long("env") => o.env.push(text(&mut p, "--env", "KEY=VAL")?),
            Short('w') | Long("workdir") => {
                let w = text(&mut p, "--workdir", "DIR")?;
                if !w.starts_with('/') {
                    return Err(Error::Workdir(w));
                }
                o.workdir = Some(w);
            }
            Long("user") => o.user = Some(parse_user(&text(&mut p, "--user", "UID[:GID]")?)?),
            Long("read-only") => o.read_only = true,
            Long("init") => o.init = true,
            Long("id") => o.id = Some(text(&mut p, "--id", "ID")?),
            Long("json") => o.json = true,
            Short(c) => return Err(Error::UnknownOption(format!("-{c}"))),
            Long(name) => return Err(Error::UnknownOption(format!("--{name}"))),
            Value(v) => return Err(Error::Positional(v.to_string_lossy().into_owned())),
        }
    }
    o.image = match (rootfs, bundle) {
        (Some(_), Some(_)) => return Err(Error::RootfsAndBundle),
        (Some(_), None) if command.is_empty() => return Err(Error::NoCommand),
        (Some(r), None) => Image::Rootfs(r),
        (None, Some(_)) if !command.is_empty() => return Err(Error::BundleCommand),
        (None, Some(b)) => Image::Bundle(b),
        (None, None) => return Err(Error::NoImage),
    };
    o.command = command;
    Ok(Action::Run(Box::new(o)))
}

impl Options {
    /// The container configuration: the rootfs defaults or the bundle's
    /// config.json, with the options on top. `-e KEY` copies `KEY` from this
    /// process's environment (skipped when unset).
    pub fn into_config(self) -> Result<ContainerConfig, Error> {
        let mut cfg = match self.image {
            Image::Rootfs(rootfs) => ContainerConfig::new(rootfs, self.command),
            Image::Bundle(bundle) => spec::load_bundle(&bundle).map_err(Error::Bundle)?,
        };
        if let Some(m) = self.memory_bytes {
            cfg.limits.memory_bytes = Some(m);
        }
        if let Some(q) = self.cpu_quota_us {
            cfg.limits.cpu_quota_us = Some(q);
            cfg.limits.cpu_period_us = size::CPU_PERIOD_US;
        }
        if let Some(p) = self.pids {
            cfg.limits.pids = Some(p);
        }
        if self.hostname.is_some() {
            cfg.hostname = self.hostname;
        }
        for e in self.env {
            if e.contains('=') {
                cfg.env.push(e);
            } else if let Ok(v) = std::env::var(&e) {
                cfg.env.push(format!("{e}={v}"));
            }
        }
        if let Some(w) = self.workdir {
            cfg.cwd = w;
        }
        if let Some((uid, gid)) = self.user {
            cfg.uid = uid;
            cfg.gid = gid;
        }
        cfg.read_only |= self.read_only;
        cfg.init |= self.init;
        if self.id.is_some() {
            cfg.id = self.id;
        }
        Ok(cfg)
    }
}

/// Parses, runs and reports; returns the exit code. `Ok(code)` also for help
/// and version (0).
fn run(prog: &str, args: impl IntoIterator<Item = OsString>) -> Result<i32, Error> {
    let opts = match parse(args)? {
        Action::Run(o) => o,
        Action::Help => {
            print!("{}", usage(prog));
            return Ok(0);
        }
        Action::Version => {
            println!("{prog} {}", env!("CARGO_PKG_VERSION"));
            return Ok(0);
        }
    };
    let json = opts.json;
    let cfg = opts.into_config()?;
    let report = crate::run(&cfg).map_err(Error::Run)?;
    if json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush())
            .map_err(Error::Report)?;
    }
    Ok(report.exit_code)
}

/// The launcher's entry point: parses `args` (the arguments after the program
/// or subcommand name; `prog` names it in the help text), runs the container,
/// prints the JSON report with `--json`, and returns the exit code. Errors are
/// printed as one line, `vclab: ...`, on stderr.
pub fn main(prog: &str, args: impl IntoIterator<Item = OsString>) -> i32 {
    match run(prog, args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vclab: {e}");
            e.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    fn opts(a: &[&str]) -> Options {
        match parse(args(a)) {
            Ok(Action::Run(o)) => *o,
            other => panic!("{a:?}: {other:?}"),
        }
    }

    fn err(a: &[&str]) -> Error {
        match parse(args(a)) {
            Err(e) => e,
            Ok(x) => panic!("{a:?} accepted: {x:?}"),
        }
    }

    #[test]
    fn every_flag() {
        let o = opts(&[
            "--rootfs",
            "/r",
            "--memory",
            "256m",
            "--cpus",
            "0.5",
            "--pids",
            "16",
            "--hostname",
            "box",
            "-e",
            "A=1",
            "--env",
            "B",
            "-w",
            "/bin",
            "--user",
            "1000:100",
            "--read-only",
            "--init",
            "--id",
            "x1",
            "--json",
            "--",
            "/bin/sh",
            "-c",
            "--json",
        ]);
        assert_eq!(
            o,
            Options {
                image: Image::Rootfs("/r".into()),
                command: vec!["/bin/sh".into(), "-c".into(), "--json".into()],
                memory_bytes: Some(256 << 20),
                cpu_quota_us: Some(50_000),
                pids: Some(16),
                hostname: Some("box".into()),
                env: vec!["A=1".into(), "B".into()],
                workdir: Some("/bin".into()),
                user: Some((1000, 100)),
                read_only: true,
                init: true,
                id: Some("x1".into()),
                json: true,
            }
        );
    }

    #[test]
    fn other_spellings() {
        let o = opts(&[
            "--rootfs=/r",
            "--memory=1g",
            "-eK=V",
            "--workdir=/w",
            "-w",
            "/x",
            "--user",
            "7",
            "--",
            "true",
        ]);
        assert_eq!(o.memory_bytes, Some(1 << 30));
        assert_eq!(o.env, ["K=V"]);
        assert_eq!(o.workdir.as_deref(), Some("/x"));
        assert_eq!(o.user, Some((7, 7)));
        assert!(!o.json && !o.init && !o.read_only);
        let o = opts(&["--bundle", "/b", "--json"]);
        assert_eq!((o.image, o.command.len()), (Image::Bundle("/b".into()), 0));
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse(args(&["-h"])).unwrap(), Action::Help);
        assert_eq!(
            parse(args(&["--rootfs", "/r", "--help", "--bogus"])).unwrap(),
            Action::Help
        );
        assert_eq!(parse(args(&["--version"])).unwrap(), Action::Version);
        let u = usage("vclab-container");
        for flag in [
            "--rootfs",
            "--bundle",
            "--memory",
            "--cpus",
            "--pids",
            "--hostname",
            "--env",
            "--workdir",
            "--user",
            "--read-only",
            "--init",
            "--id",
            "--json",
            "--version",
        ] {
            assert!(u.contains(flag), "{flag} missing from the help");
        }
    }

    #[test]
    fn bad_sizes() {
        for (flag, v) in [("--memory", "12q"), ("--memory", "0"), ("--cpus", "-1")] {
            let e = err(&["--rootfs", "/r", flag, v, "--", "true"]);
            assert!(matches!(e, Error::Size { .. }), "{e}");
            let msg = e.to_string();
            assert!(msg.starts_with(flag) && msg.contains(v), "{msg}");
            assert_eq!(e.exit_code(), 1);
        }
        assert!(matches!(
            err(&["--rootfs", "/r", "--pids", "0", "--", "true"]),
            Error::Pids(_)
        ));
        assert!(matches!(
            err(&["--rootfs", "/r", "--pids", "x", "--", "true"]),
            Error::Pids(_)
        ));
    }

    #[test]
    fn bad_values() {
        assert!(matches!(
            err(&["--rootfs", "/r", "-w", "rel", "--", "true"]),
            Error::Workdir(_)
        ));
        for u in ["bob", "1:x", ":1", ""] {
            let e = err(&["--rootfs", "/r", "--user", u, "--", "true"]);
            assert!(matches!(e, Error::User(_)), "{u:?}: {e}");
        }
        let e = err(&["--rootfs", "/r", "--memory"]);
        assert_eq!(
            e.to_string(),
            "--memory needs a value: give SIZE (e.g. 256m)"
        );
        let e = err(&["--rootfs", "--", "true"]);
        assert!(matches!(e, Error::MissingValue { .. }), "{e}");
        let e = err(&["--rootfs", "/r", "--json=1", "--", "true"]);
        assert!(matches!(e, Error::FlagValue { .. }), "{e}");
    }

    #[test]
    fn command_rules() {
        assert!(matches!(err(&["--rootfs", "/r"]), Error::NoCommand));
        assert!(matches!(err(&["--rootfs", "/r", "--"]), Error::NoCommand));
        assert!(matches!(
            err(&["--bundle", "/b", "--", "true"]),
            Error::BundleCommand
        ));
        assert!(matches!(
            err(&["--rootfs", "/r", "--bundle", "/b"]),
            Error::RootfsAndBundle
        ));
        assert!(matches!(err(&["--", "true"]), Error::NoImage));
        assert!(matches!(err(&[]), Error::NoImage));
        let e = err(&["--rootfs", "/r", "true"]);
        assert!(matches!(e, Error::Positional(ref v) if v == "true"), "{e}");
    }

    #[test]
    fn unknown_flags() {
        for (a, name) in [("--frobnicate", "--frobnicate"), ("-x", "-x")] {
            let e = err(&["--rootfs", "/r", a, "--", "true"]);
            assert!(matches!(e, Error::UnknownOption(ref n) if n == name), "{e}");
            assert_eq!(e.exit_code(), 1);
        }
    }

    #[test]
    fn non_utf8_command_is_rejected() {
        let mut a = args(&["--rootfs", "/r", "--"]);
        a.push(OsString::from_vec(vec![0xff, b'x']));
        let e = parse(a).unwrap_err();
        assert!(matches!(e, Error::NotUtf8 { .. }), "{e}");
    }

    #[test]
    fn config_applies_the_options() {
        let o = opts(&[
            "--rootfs",
            "/r",
            "--memory",
            "64m",
            "--cpus",
            "2",
            "--pids",
            "9",
            "-e",
            "PATH",
            "-e",
            "VCLAB_TEST_SURELY_UNSET_4711",
            "-e",
            "X=y",
            "--user",
            "5:6",
            "--id",
            "abc",
            "--",
            "true",
        ]);
        let cfg = o.into_config().unwrap();
        assert_eq!(cfg.rootfs, PathBuf::from("/r"));
        assert_eq!(cfg.args, ["true"]);
        assert_eq!(cfg.limits.memory_bytes, Some(64 << 20));
        assert_eq!(cfg.limits.cpu_quota_us, Some(200_000));
        assert_eq!(cfg.limits.cpu_period_us, size::CPU_PERIOD_US);
        assert_eq!(cfg.limits.pids, Some(9));
        let path = std::env::var("PATH").unwrap();
        assert_eq!(cfg.env, [format!("PATH={path}"), "X=y".into()]);
        assert_eq!((cfg.uid, cfg.gid), (5, 6));
        assert_eq!(cfg.id.as_deref(), Some("abc"));
        assert_eq!(cfg.cwd, "/");
    }

    #[test]
    fn missing_bundle_is_a_usage_error() {
        let o = opts(&["--bundle", "/nonexistent/vclab-bundle"]);
        let e = o.into_config().unwrap_err();
        assert!(matches!(e, Error::Bundle(_)), "{e}");
        assert!(e.to_string().contains("config.json"), "{e}");
        assert_eq!(e.exit_code(), 1);
    }
}
