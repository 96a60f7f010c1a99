//! `vclab`: the lab's command-line interface. Each subcommand lives in its own
//! module; `main` only parses, dispatches, prints the error chain and sets the
//! exit code.

mod container_cmd;
mod host_cmd;
mod image_cmd;
mod report_cmd;
mod vm_cmd;

use vclab_bench::{compare, density, spawn};

use clap::{Parser, Subcommand};

/// vclab: put a KVM micro-VM and a Linux container side by side, run the same
/// workload in both and on the bare host, and measure what each costs.
#[derive(Parser, Debug)]
#[command(name = "vclab", version, about, long_about = None, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Describe this host: KVM kind, cgroup mode, installed peers.
    Host(host_cmd::Args),
    /// Micro-VM commands.
    #[command(subcommand)]
    Vm(vm_cmd::VmCommand),
    /// Container commands.
    #[command(subcommand)]
    Container(container_cmd::ContainerCommand),
    /// Image commands: build (daemonless, from a Containerfile), ls, inspect, rm.
    #[command(subcommand)]
    Image(image_cmd::ImageCommand),
    /// Run the side-by-side comparison and write its report.
    Compare(compare::Args),
    /// How many idle VMs, containers and processes fit on this host, what one more costs,
    /// how fast they launch, and the course's projection from it.
    Density(density::Args),
    /// Rebuild the report of a saved results directory, or compare several (e.g. one per
    /// host) in one report, without measuring.
    Report(report_cmd::Args),
    /// The harness's guard (started by `vclab compare` itself): waits for the
    /// harness to end, then removes what it left in DIR.
    #[command(hide = true)]
    Guard {
        /// The harness's state entry, `/run/vclab/harness-<pid>`.
        dir: std::path::PathBuf,
    },
}

fn run(cli: Cli, origin: std::time::Instant) -> anyhow::Result<i32> {
    match cli.command {
        Command::Host(args) => host_cmd::run(args),
        Command::Vm(cmd) => vm_cmd::run(cmd, origin),
        Command::Container(cmd) => container_cmd::run(cmd),
        Command::Image(cmd) => image_cmd::run(cmd),
        Command::Compare(args) => compare::run(args),
        Command::Density(args) => density::run(args),
        Command::Report(args) => report_cmd::run(args),
        Command::Guard { dir } => Ok(spawn::guard::guard_main(&dir)),
    }
}

/// What `vclab --help` says of exit codes.
const EXIT_CODES: &str = "\
Exit codes: 0 done; 1 the command failed or its input is unusable (one line on stderr, \
`vclab: ...`, says what and what to do); 2 bad usage of vclab's own options (an unknown \
subcommand or option, a value that does not parse; also one line); 3 `compare` found a \
checksum mismatch. `vclab vm run` and `vclab container ...` end with the codes of vclab-vmm \
and vclab-container (see their --help).";

/// The exit code of a command line vclab's own parser refuses.
const EXIT_USAGE: i32 = 2;

fn main() {
    // `vclab vm run` reports its timestamps from here.
    let origin = std::time::Instant::now();
    let cli = Cli::try_parse().unwrap_or_else(|e| usage_error(e));
    match run(cli, origin) {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("vclab: {}", one_line(&err));
            std::process::exit(1);
        }
    }
}

/// The error and its causes on one line, each cause once: a message that already quotes
/// its source (`cannot read X: <io error>`) is not followed by that source again.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain().map(|e| e.to_string()) {
        if line.contains(&cause) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&cause);
    }
    line.replace('\n', " ")
}

/// Help and version are printed as clap prints them (exit 0; a bare `vclab` prints its help
/// and exits 2); any other refusal becomes one line with clap's tips and where the help is,
/// exit code [`EXIT_USAGE`].
fn usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let text = e.render().to_string();
    // clap's message (its first line and the indented lines under it, e.g. the missing
    // arguments), its tips, then its usage lines, which the pointer to --help replaces.
    let mut line = String::new();
    let lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    for l in lines.take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more")) {
        let (sep, l) = match l.strip_prefix("tip: ") {
            Some(tip) => ("; ", tip),
            None => (" ", l.strip_prefix("error: ").unwrap_or(l)),
        };
        if !line.is_empty() {
            line.push_str(sep);
        }
        line.push_str(l);
    }
    eprintln!("vclab: {line}; see `{} --help`", command_path());
    std::process::exit(EXIT_USAGE);
}

/// `vclab` and the subcommands named at the start of this process's arguments, e.g.
/// `vclab compare`, for the pointer to the right `--help`.
fn command_path() -> String {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut path = vec!["vclab".to_string()];
    for arg in std::env::args().skip(1) {
        let Some(sub) = cmd.find_subcommand(&arg).cloned() else {
            break;
        };
        path.push(sub.get_name().to_string());
        cmd = sub;
    }
    path.join(" ")
}
