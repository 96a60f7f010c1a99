//! `vclab container run`: run one container with the vclab launcher and exit
//! with its status.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use vclab_container::{run as run_container, size, spec, ContainerConfig};

/// Container subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum ContainerCommand {
    /// Run one container: a command on a rootfs (overlay, so the image is never
    /// changed), or an OCI runtime bundle. Exits with the container's status
    /// (128+N when killed by signal N).
    Run(RunArgs),
}

/// Options of `vclab container run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The root file system directory (read-only lower layer of an overlay).
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "bundle",
        conflicts_with = "bundle"
    )]
    rootfs: Option<PathBuf>,
    /// An OCI runtime bundle directory (holding config.json).
    #[arg(long, value_name = "DIR")]
    bundle: Option<PathBuf>,
    /// Memory limit, Docker spelling: b, k, m or g (e.g. 256m).
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    memory: Option<String>,
    /// CPU limit as a fractional number of CPUs (e.g. 0.5).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    cpus: Option<String>,
    /// Maximum number of processes and threads.
    #[arg(long, value_name = "N")]
    pids: Option<u64>,
    /// Host name inside the container.
    #[arg(long)]
    hostname: Option<String>,
    /// Set an environment variable (KEY=VAL; KEY alone copies it from here).
    #[arg(short = 'e', long = "env", value_name = "KEY=VAL")]
    env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    workdir: Option<String>,
    /// User and optional group inside the container, as numbers.
    #[arg(long, value_name = "UID[:GID]")]
    user: Option<String>,
    /// Mount the container's root file system read-only.
    #[arg(long)]
    read_only: bool,
    /// Run a tiny init as PID 1 that reaps zombies and forwards signals.
    #[arg(long)]
    init: bool,
    /// Container id (default: generated).
    #[arg(long)]
    id: Option<String>,
    /// Print a JSON report as the last line on stdout.
    #[arg(long)]
    json: bool,
    /// The command and its arguments.
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

fn parse_user(text: &str) -> anyhow::Result<(u32, Option<u32>)> {
    let (u, g) = match text.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (text, None),
    };
    let uid = u
        .parse()
        .with_context(|| format!("invalid --user {text:?}: give a numeric UID[:GID]"))?;
    let gid = g
        .map(|g| g.parse())
        .transpose()
        .with_context(|| format!("invalid --user {text:?}: give a numeric UID[:GID]"))?;
    Ok((uid, gid))
}

fn config(args: RunArgs) -> anyhow::Result<(ContainerConfig, bool)> {
    let mut cfg = match (&args.bundle, &args.rootfs) {
        (Some(bundle), _) => {
            if !args.command.is_empty() {
                anyhow::bail!("--bundle takes the command from config.json: drop the CMD after --");
            }
            spec::load_bundle(bundle)?
        }
        (None, Some(rootfs)) => {
            if args.command.is_empty() {
                anyhow::bail!("no command given: add `-- CMD [ARG...]`");
            }
            ContainerConfig::new(rootfs, args.command.clone())
        }
        (None, None) => anyhow::bail!("give --rootfs DIR or --bundle DIR"),
    };
    if let Some(m) = &args.memory {
        cfg.limits.memory_bytes = Some(size::parse_size(m).context("--memory")?);
    }
    if let Some(c) = &args.cpus {
        cfg.limits.cpu_quota_us = Some(size::parse_cpus(c).context("--cpus")?);
        cfg.limits.cpu_period_us = size::CPU_PERIOD_US;
    }
    if let Some(p) = args.pids {
        anyhow::ensure!(p > 0, "--pids must be at least 1");
        cfg.limits.pids = Some(p);
    }
    if args.hostname.is_some() {
        cfg.hostname = args.hostname;
    }
    for e in args.env {
        if e.contains('=') {
            cfg.env.push(e);
        } else if let Ok(v) = std::env::var(&e) {
            cfg.env.push(format!("{e}={v}"));
        }
    }
    if let Some(w) = args.workdir {
        anyhow::ensure!(
            w.starts_with('/'),
            "-w {w:?}: the working directory must be absolute"
        );
        cfg.cwd = w;
    }
    if let Some(u) = &args.user {
        let (uid, gid) = parse_user(u)?;
        cfg.uid = uid;
        cfg.gid = gid.unwrap_or(uid);
    }
    cfg.read_only |= args.read_only;
    cfg.init |= args.init;
    if args.id.is_some() {
        cfg.id = args.id;
    }
    Ok((cfg, args.json))
}

/// Runs a `vclab container` subcommand and returns the process exit code.
pub fn run(cmd: ContainerCommand) -> anyhow::Result<i32> {
    match cmd {
        ContainerCommand::Run(args) => {
            let (cfg, json) = config(args)?;
            let report = match run_container(&cfg) {
                Ok(r) => r,
                Err(e) if matches!(e.exit_code(), 126 | 127) => {
                    eprintln!("vclab: {e}");
                    return Ok(e.exit_code());
                }
                Err(e) => return Err(e.into()),
            };
            if json {
                println!("{}", serde_json::to_string(&report)?);
            }
            Ok(report.exit_code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_spec() {
        assert_eq!(parse_user("1000").unwrap(), (1000, None));
        assert_eq!(parse_user("1000:100").unwrap(), (1000, Some(100)));
        assert!(parse_user("bob").is_err());
    }
}
