//! The launcher's command line, shared by the lean `vclab-container` binary
//! and `vclab container <verb>` (which passes its arguments through
//! unchanged): one parser, one behaviour, two entry points.
//!
//! Verbs (runc's meaning): `run` (the default when the first argument is an
//! option: `vclab-container --rootfs R -- CMD` is `run`; `--detach` creates
//! and starts without waiting), `create`, `start ID`, `state ID`,
//! `kill ID [SIGNAL]`, `delete [--force] ID`, `list [--format json] [-q]`.
//!
//! [`parse`] reads the arguments with lexopt and checks them without touching
//! the system (tier-1 testable); [`Options::into_config`] turns them into a
//! [`ContainerConfig`] (loading the bundle, copying `-e KEY` variables,
//! checking `-v` sources); [`main`] runs the verb, prints its output and
//! returns the exit code. Exit codes: an attached run's container status
//! (128+N for signal N); 0 for a verb that did its work; 1 for bad usage or
//! input (also an unknown container id, or a verb that does not apply in the
//! container's status, e.g. `delete` of a running one without `--force`);
//! 125, 126, 127 for launcher, cannot-execute and not-found errors
//! ([`crate::Error::exit_code`], [`crate::lifecycle::Error::exit_code`]).

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::PathBuf;

use crate::{lifecycle, rootfs, size, spec, ContainerConfig};

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
    /// A lifecycle verb failed.
    #[error(transparent)]
    Lifecycle(lifecycle::Error),
    /// A verb needs a container id.
    #[error("{0} needs a container id: {0} ID")]
    NoId(&'static str),
    /// An argument the verb does not take.
    #[error("unexpected argument {value:?} to {verb}: see --help")]
    Extra {
        /// The verb.
        verb: &'static str,
        /// The argument.
        value: String,
    },
    /// The id was given twice.
    #[error("give the container id once (--id ID or a positional ID)")]
    IdTwice,
    /// `kill`'s signal is unknown.
    #[error("unknown signal {0:?}: give a name (TERM, KILL, SIGUSR1) or a number")]
    Signal(String),
    /// `--net` is not `host`.
    #[error("unknown --net {0:?}: give host (share the host's network namespace; the default is a new one with loopback only)")]
    Net(String),
    /// `list --format` is unknown.
    #[error("unknown --format {0:?}: give table or json")]
    Format(String),
    /// `-v` is not `HOST:CTR[:ro|rw]`.
    #[error(
        "invalid -v {0:?}: give HOST:CTR[:ro] with absolute paths (e.g. -v /srv/data:/data:ro)"
    )]
    Volume(String),
    /// A `-v` host path does not exist.
    #[error("-v source {0} does not exist: create it or fix the path")]
    VolumeSource(PathBuf),
    /// A `--console-socket` path does not exist.
    #[error("--console-socket {0} does not exist: start the receiver first")]
    ConsoleSocket(PathBuf),
    /// The JSON report could not be written.
    #[error("cannot write the JSON report to stdout: {0}")]
    Report(std::io::Error),
    /// The `--seccomp` profile is unusable.
    #[error(transparent)]
    Seccomp(crate::seccomp::Error),
    /// The launcher could not re-execute itself from a protected binary.
    #[error(transparent)]
    Reexec(crate::reexec::Error),
}

impl Error {
    /// The exit code: the run's own code (125, 126, 127) for a run error,
    /// 125 for a report that could not be written, 1 for bad usage.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Run(e) => e.exit_code(),
            Error::Lifecycle(e) => e.exit_code(),
            Error::Report(_) | Error::Reexec(_) => 125,
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
    /// `--net host`: no network namespace of its own (weaker isolation,
    /// opt-in; saves about 0.2 MiB of kernel memory per container).
    pub net_host: bool,
    /// `--id`.
    pub id: Option<String>,
    /// `--json`.
    pub json: bool,
    /// `-d/--detach` (`run`): create and start, do not wait.
    pub detach: bool,
    /// `--console-socket PATH`.
    pub console_socket: Option<PathBuf>,
    /// `-v HOST:CTR[:ro]`, in order.
    pub volumes: Vec<Volume>,
    /// `-t/--tty`: stdio on a pty (`process.terminal`).
    pub tty: bool,
    /// `--seccomp PROFILE.json|unconfined` (read by [`Options::into_config`]).
    pub seccomp: Option<String>,
}

/// One `-v HOST:CTR[:ro]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// Host path (absolute).
    pub host: PathBuf,
    /// Container path (absolute).
    pub container: String,
    /// `:ro`.
    pub read_only: bool,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run a container (attached, or `--detach`).
    Run(Box<Options>),
    /// `create`: set it up, its process waits for `start`.
    Create(Box<Options>),
    /// `start ID`.
    Start(String),
    /// `state ID`.
    State(String),
    /// `kill ID [SIGNAL]`.
    Kill(String, nix::sys::signal::Signal),
    /// `delete [--force] ID`.
    Delete {
        /// The container.
        id: String,
        /// `-f/--force`.
        force: bool,
    },
    /// `list`.
    List {
        /// `--format json`.
        json: bool,
        /// `-q/--quiet`: ids only.
        quiet: bool,
    },
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
(128+N when killed by signal N; the other commands with 0); 1 on bad usage or
input (also an unknown ID, or a command the container's status refuses), 125
when the launcher fails, 126 when CMD cannot be executed, 127 when CMD is not
found.

Usage: {prog} [run] [OPTIONS] --rootfs DIR -- CMD [ARG...]
       {prog} [run] [OPTIONS] --bundle DIR
       {prog} create [OPTIONS] (--rootfs DIR -- CMD... | --bundle DIR) [ID]
       {prog} start ID | state ID | kill ID [SIGNAL] | delete [--force] ID
       {prog} list [--format table|json] [-q]

Commands (runc's meaning; state under /run/vclab/ID):
  run      Run a container and wait for it (the default); with --detach, create and
           start it and exit, leaving no launcher process
  create   Set a container up; its process waits until `start` (the ID may also be
           given last, as with runc)
  start    Start a created container's program
  state    Print a container's OCI state (JSON): created, running or stopped
  kill     Send SIGNAL (default TERM; a name or number) to a container's process
  delete   Remove a stopped or created container; --force also a running one
  list     List the containers (dead launchers' leftovers are swept first)

Options:
      --rootfs DIR       The root file system directory (read-only lower layer)
  -b, --bundle DIR       An OCI runtime bundle directory (holding config.json)
      --memory SIZE      Memory limit: a number with b, k, m or g (e.g. 256m)
      --cpus N           CPU limit as a fractional number of CPUs (e.g. 0.5)
      --pids N           Maximum number of processes and threads
      --hostname NAME    Host name inside the container
  -e, --env KEY=VAL      Set an environment variable (KEY alone copies it from here)
  -w, --workdir DIR      Working directory inside the container (absolute)
      --user UID[:GID]   User and optional group inside the container, as numbers
      --read-only        Mount the container's root file system read-only
      --init             Run a tiny init as PID 1 that reaps zombies and forwards signals
      --net host         Share the host's network namespace (weaker isolation; the
                         default is a new one with loopback only)
  -v, --volume HOST:CTR[:ro]  Bind-mount the host path HOST at CTR (read-only with :ro)
      --console-socket PATH  With process.terminal: send the pty master to the unix
                         socket PATH (SCM_RIGHTS, as runc); else an attached run relays it
  -t, --tty              Give the container a pty as stdio (process.terminal)
      --seccomp PROFILE  A seccomp profile in Docker's JSON format, or unconfined
                         (default: Docker's default profile with --rootfs; a bundle's
                         linux.seccomp, none without it, as runc)
  -d, --detach           (run) Create and start the container, do not wait for it
      --id ID            Container id (default: generated)
      --json             Print a JSON report as the last line on stdout (with
                         --detach or create: the container's OCI state)
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

fn parse_volume(text: &str) -> Result<Volume, Error> {
    let bad = || Error::Volume(text.to_string());
    let mut parts = text.split(':');
    let (host, container) = (parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?);
    let read_only = match parts.next() {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(_) => return Err(bad()),
    };
    if parts.next().is_some() || !host.starts_with('/') || !container.starts_with('/') {
        return Err(bad());
    }
    Ok(Volume {
        host: host.into(),
        container: container.to_string(),
        read_only,
    })
}

/// The verbs, as typed.
const VERBS: [&str; 7] = ["run", "create", "start", "state", "kill", "delete", "list"];

/// Parses the arguments (without the program name) and checks them: a verb
/// and its arguments, or, when the first argument is not a verb, `run`'s.
/// Pure: reads no file and no environment variable.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Action, Error> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    let verb = args
        .first()
        .and_then(|a| a.to_str())
        .and_then(|a| VERBS.iter().find(|v| **v == a).copied());
    let Some(verb) = verb else {
        return parse_run(args, false);
    };
    args.remove(0);
    match verb {
        "run" => parse_run(args, false),
        "create" => parse_run(args, true),
        "list" => parse_list(args),
        _ => parse_id_verb(verb, args),
    }
}

/// `start`, `state`, `kill`, `delete`: options, then the id (and kill's signal).
fn parse_id_verb(verb: &'static str, args: Vec<OsString>) -> Result<Action, Error> {
    use lexopt::Arg::{Long, Short, Value};
    let mut p = lexopt::Parser::from_args(args);
    let mut force = false;
    let mut words = Vec::new();
    while let Some(arg) = p.next().map_err(|e| Error::UnknownOption(e.to_string()))? {
        match arg {
            Short('h') | Long("help") => return Ok(Action::Help),
            Short('f') | Long("force") if verb == "delete" => force = true,
            Short(c) => return Err(Error::UnknownOption(format!("-{c}"))),
            Long(name) => return Err(Error::UnknownOption(format!("--{name}"))),
            Value(v) => words.push(utf8("argument", v)?),
        }
    }
    let max = if verb == "kill" { 2 } else { 1 };
    if let Some(extra) = words.get(max) {
        return Err(Error::Extra {
            verb,
            value: extra.clone(),
        });
    }
    let mut words = words.into_iter();
    let id = words.next().ok_or(Error::NoId(verb))?;
    Ok(match verb {
        "start" => Action::Start(id),
        "state" => Action::State(id),
        "kill" => {
            let sig = match words.next() {
                None => nix::sys::signal::Signal::SIGTERM,
                Some(s) => lifecycle::parse_signal(&s).ok_or(Error::Signal(s))?,
            };
            Action::Kill(id, sig)
        }
        _ => Action::Delete { id, force },
    })
}

fn parse_list(args: Vec<OsString>) -> Result<Action, Error> {
    use lexopt::Arg::{Long, Short, Value};
    let mut p = lexopt::Parser::from_args(args);
    let (mut json, mut quiet) = (false, false);
    while let Some(arg) = p.next().map_err(|e| Error::UnknownOption(e.to_string()))? {
        match arg {
            Short('h') | Long("help") => return Ok(Action::Help),
            Short('q') | Long("quiet") => quiet = true,
            Short('f') | Long("format") => {
                let f = text(&mut p, "--format", "table or json")?;
                json = match f.as_str() {
                    "json" => true,
                    "table" => false,
                    _ => return Err(Error::Format(f)),
                };
            }
            Short(c) => return Err(Error::UnknownOption(format!("-{c}"))),
            Long(name) => return Err(Error::UnknownOption(format!("--{name}"))),
            Value(v) => {
                return Err(Error::Extra {
                    verb: "list",
                    value: v.to_string_lossy().into_owned(),
                })
            }
        }
    }
    Ok(Action::List { json, quiet })
}

/// `run` and `create`: the container's options; `create` also takes the id
/// as a positional argument (runc's `create [--bundle DIR] ID`).
fn parse_run(args: Vec<OsString>, create: bool) -> Result<Action, Error> {
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
        net_host: false,
        id: None,
        json: false,
        detach: create,
        console_socket: None,
        volumes: Vec::new(),
        tty: false,
        seccomp: None,
    };
    let mut positional_id = None;
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
            Short('b') | Long("bundle") => {
                bundle = Some(PathBuf::from(value(&mut p, "--bundle", "DIR")?))
            }
            Short('v') | Long("volume") => {
                let v = text(&mut p, "--volume", "HOST:CTR[:ro]")?;
                o.volumes.push(parse_volume(&v)?);
            }
            Long("console-socket") => {
                o.console_socket = Some(PathBuf::from(value(&mut p, "--console-socket", "PATH")?))
            }
            Short('d') | Long("detach") if !create => o.detach = true,
            Short('t') | Long("tty") => o.tty = true,
            Long("seccomp") => {
                o.seccomp = Some(text(&mut p, "--seccomp", "PROFILE.json or unconfined")?)
            }
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
            Long("net") => match text(&mut p, "--net", "host")?.as_str() {
                "host" => o.net_host = true,
                other => return Err(Error::Net(other.to_string())),
            },
            Long("id") => o.id = Some(text(&mut p, "--id", "ID")?),
            Long("json") => o.json = true,
            Short(c) => return Err(Error::UnknownOption(format!("-{c}"))),
            Long(name) => return Err(Error::UnknownOption(format!("--{name}"))),
            Value(v) if create && positional_id.is_none() => {
                positional_id = Some(utf8("container id", v)?)
            }
            Value(v) => return Err(Error::Positional(v.to_string_lossy().into_owned())),
        }
    }
    if let Some(id) = positional_id {
        if o.id.is_some() {
            return Err(Error::IdTwice);
        }
        o.id = Some(id);
    }
    if let Some(id) = o.id.as_deref().filter(|id| !crate::state::valid_id(id)) {
        let bad = crate::state::Error::InvalidId(id.to_string());
        return Err(Error::Lifecycle(lifecycle::Error::State(bad)));
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
    Ok(if create {
        Action::Create(Box::new(o))
    } else {
        Action::Run(Box::new(o))
    })
}

impl Options {
    /// The container configuration: the rootfs defaults or the bundle's
    /// config.json, with the options on top. `-e KEY` copies `KEY` from this
    /// process's environment (skipped when unset).
    pub fn into_config(self) -> Result<ContainerConfig, Error> {
        let mut cfg = match self.image {
            Image::Rootfs(rootfs) => ContainerConfig::new(rootfs, self.command),
            Image::Bundle(bundle) => {
                // A FIFO (or a device) as config.json would block the read: refuse it first.
                let path = bundle.join("config.json");
                if path.exists() && !path.is_file() {
                    return Err(Error::Bundle(spec::Error::Load {
                        path,
                        reason: "it is not a regular file".to_string(),
                    }));
                }
                spec::load_bundle(&bundle).map_err(Error::Bundle)?
            }
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
        if self.net_host {
            cfg.namespaces
                .retain(|n| *n != crate::namespaces::Namespace::Network);
        }
        cfg.terminal |= self.tty;
        for v in self.volumes {
            if !v.host.exists() {
                return Err(Error::VolumeSource(v.host));
            }
            let mut opts = vec!["rbind".to_string()];
            if v.read_only {
                opts.push("ro".into());
            }
            let m = rootfs::UserMount::bind(v.host, &v.container, &opts).map_err(|e| {
                Error::Bundle(spec::Error::Mount {
                    path: "-v".into(),
                    source: e,
                })
            })?;
            cfg.mounts.push(m);
        }
        if let Some(sock) = self.console_socket {
            if !sock.exists() {
                return Err(Error::ConsoleSocket(sock));
            }
            cfg.console_socket = Some(sock);
        }
        if self.id.is_some() {
            cfg.id = self.id;
        }
        if let Some(v) = self.seccomp {
            cfg.seccomp = crate::seccomp::Policy::from_arg(&v).map_err(Error::Seccomp)?;
        }
        Ok(cfg)
    }
}

fn print_line(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(Error::Report)
}

fn json_line<T: serde::Serialize>(value: &T) -> Result<(), Error> {
    let text = serde_json::to_string(value).map_err(|e| Error::Report(std::io::Error::from(e)))?;
    print_line(&text)
}

/// Parses, runs and reports; returns the exit code. `Ok(code)` also for help
/// and version (0).
fn run(prog: &str, args: impl IntoIterator<Item = OsString>) -> Result<i32, Error> {
    let root = || crate::state::state_root(!nix::unistd::geteuid().is_root());
    let lc = Error::Lifecycle;
    let (opts, create) = match parse(args)? {
        Action::Run(o) => (o, false),
        Action::Create(o) => (o, true),
        Action::Help => {
            print!("{}", usage(prog));
            return Ok(0);
        }
        Action::Version => {
            println!("{prog} {}", env!("CARGO_PKG_VERSION"));
            return Ok(0);
        }
        Action::Start(id) => return lifecycle::start(&root(), &id).map(|()| 0).map_err(lc),
        Action::State(id) => {
            let st = lifecycle::state(&root(), &id).map_err(lc)?;
            let text = serde_json::to_string_pretty(&st)
                .map_err(|e| Error::Report(std::io::Error::from(e)))?;
            print_line(&text)?;
            return Ok(0);
        }
        Action::Kill(id, sig) => return lifecycle::kill(&root(), &id, sig).map(|()| 0).map_err(lc),
        Action::Delete { id, force } => {
            return lifecycle::delete(&root(), &id, force)
                .map(|()| 0)
                .map_err(lc)
        }
        Action::List { json, quiet } => {
            let root = root();
            let states = lifecycle::list(&root);
            if json {
                json_line(&states)?;
            } else if quiet {
                for s in &states {
                    print_line(&s.id)?;
                }
            } else {
                let owners = lifecycle::owners(&root, &states);
                print!("{}", lifecycle::table(&states, &owners));
            }
            return Ok(0);
        }
    };
    // Before anything is made: a stop signal from now on is held pending (see
    // process::block_forwarded), not lost to an inherited SIG_IGN.
    crate::process::block_forwarded().map_err(|e| Error::Run(e.into()))?;
    // CVE-2019-5736: from here on the container could see this binary.
    crate::reexec::ensure_protected().map_err(Error::Reexec)?;
    let (json, detach) = (opts.json, opts.detach);
    let cfg = opts.into_config()?;
    if create || detach {
        let created = crate::create(&cfg).map_err(Error::Run)?;
        let root = root();
        if !create {
            if let Err(e) = lifecycle::start(&root, &created.id) {
                let _ = lifecycle::delete(&root, &created.id, true);
                return Err(lc(e));
            }
        }
        if json {
            json_line(&lifecycle::state(&root, &created.id).map_err(lc)?)?;
        }
        return Ok(0);
    }
    let report = crate::run(&cfg).map_err(Error::Run)?;
    if json {
        json_line(&report)?;
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
                net_host: false,
                id: Some("x1".into()),
                json: true,
                detach: false,
                console_socket: None,
                volumes: Vec::new(),
                tty: false,
                seccomp: None,
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
        assert!(!o.json && !o.init && !o.read_only && !o.net_host);
        let o = opts(&["--net", "host", "--rootfs", "/r", "--", "true"]);
        assert!(o.net_host);
        assert!(matches!(
            parse(args(&["--net", "bridge", "--rootfs", "/r", "--", "true"])),
            Err(Error::Net(_))
        ));
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
            "--seccomp",
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
    fn verbs() {
        use nix::sys::signal::Signal;
        let p = |a: &[&str]| parse(args(a));
        assert_eq!(p(&["start", "c1"]).unwrap(), Action::Start("c1".into()));
        assert_eq!(p(&["state", "c1"]).unwrap(), Action::State("c1".into()));
        assert_eq!(
            p(&["kill", "c1"]).unwrap(),
            Action::Kill("c1".into(), Signal::SIGTERM)
        );
        assert_eq!(
            p(&["kill", "c1", "9"]).unwrap(),
            Action::Kill("c1".into(), Signal::SIGKILL)
        );
        assert_eq!(
            p(&["delete", "-f", "c1"]).unwrap(),
            Action::Delete {
                id: "c1".into(),
                force: true
            }
        );
        assert_eq!(
            p(&["list", "--format", "json"]).unwrap(),
            Action::List {
                json: true,
                quiet: false
            }
        );
        assert!(matches!(p(&["start"]), Err(Error::NoId("start"))));
        assert!(matches!(p(&["state", "a", "b"]), Err(Error::Extra { .. })));
        assert!(matches!(p(&["kill", "a", "NOPE"]), Err(Error::Signal(_))));
        assert!(matches!(p(&["list", "-f", "xml"]), Err(Error::Format(_))));
        assert!(matches!(
            p(&["start", "--force", "a"]),
            Err(Error::UnknownOption(_))
        ));
        // create: the id also last (runc), detached; run -d and the implicit run.
        let Ok(Action::Create(o)) = p(&["create", "-b", "/b", "c9"]) else {
            panic!("create")
        };
        assert_eq!((o.id.as_deref(), o.detach), (Some("c9"), true));
        assert!(matches!(
            p(&["create", "--id", "a", "-b", "/b", "c9"]),
            Err(Error::IdTwice)
        ));
        let Ok(Action::Run(o)) = p(&["run", "-d", "-t", "--rootfs", "/r", "--", "true"]) else {
            panic!("run -d")
        };
        assert!(o.detach && o.tty);
        assert!(matches!(
            p(&["--rootfs", "/r", "c9", "--", "true"]),
            Err(Error::Positional(_))
        ));
    }

    #[test]
    fn volumes_parse() {
        let o = opts(&[
            "-v",
            "/a:/b",
            "--volume=/c:/d:ro",
            "--rootfs",
            "/r",
            "--",
            "true",
        ]);
        assert_eq!(
            o.volumes,
            [
                Volume {
                    host: "/a".into(),
                    container: "/b".into(),
                    read_only: false
                },
                Volume {
                    host: "/c".into(),
                    container: "/d".into(),
                    read_only: true
                }
            ]
        );
        for bad in ["a:/b", "/a:b", "/a", "/a:/b:rx", "/a:/b:ro:x"] {
            let e = err(&["-v", bad, "--rootfs", "/r", "--", "true"]);
            assert!(matches!(e, Error::Volume(_)), "{bad}: {e}");
        }
        let o = opts(&[
            "-v",
            "/nonexistent/vclab-v:/x",
            "--rootfs",
            "/r",
            "--",
            "true",
        ]);
        assert!(matches!(o.into_config(), Err(Error::VolumeSource(_))));
    }

    #[test]
    fn seccomp_option() {
        let o = opts(&["--seccomp", "unconfined", "--rootfs", "/r", "--", "true"]);
        assert_eq!(o.seccomp.as_deref(), Some("unconfined"));
        let cfg = o.into_config().unwrap();
        assert_eq!(cfg.seccomp, crate::seccomp::Policy::Unconfined);
        let cfg = opts(&["--rootfs", "/r", "--", "true"])
            .into_config()
            .unwrap();
        assert_eq!(cfg.seccomp, crate::seccomp::Policy::Default);
        let Ok(Action::Create(o)) = parse(args(&["create", "--seccomp=/p.json", "-b", "/b", "c"]))
        else {
            panic!("create --seccomp")
        };
        assert_eq!(o.seccomp.as_deref(), Some("/p.json"));
        let e = opts(&[
            "--seccomp",
            "/nonexistent/vclab.json",
            "--rootfs",
            "/r",
            "--",
            "true",
        ])
        .into_config()
        .unwrap_err();
        assert!(matches!(e, Error::Seccomp(_)) && e.exit_code() == 1, "{e}");
        assert!(e.to_string().contains("/nonexistent/vclab.json"), "{e}");
        assert!(matches!(
            err(&["--rootfs", "/r", "--seccomp"]),
            Error::MissingValue { .. }
        ));
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
