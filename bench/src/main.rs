//! `vclab`: the lab's command-line interface. Each subcommand lives in its own
//! module; `main` only parses, dispatches, prints the error chain and sets the
//! exit code.

mod container_cmd;
mod host_cmd;
mod report_cmd;
mod vm_cmd;

use vclab_bench::{compare, density, spawn};

use clap::{Parser, Subcommand};

/// vclab: put a KVM micro-VM and a Linux container side by side, run the same
/// workload in both and on the bare host, and measure what each costs.
#[derive(Parser, Debug)]
#[command(name = "vclab", version, about, long_about = None)]
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
        Command::Compare(args) => compare::run(args),
        Command::Density(args) => density::run(args),
        Command::Report(args) => report_cmd::run(args),
        Command::Guard { dir } => Ok(spawn::guard::guard_main(&dir)),
    }
}

fn main() {
    // `vclab vm run` reports its timestamps from here.
    let origin = std::time::Instant::now();
    let cli = Cli::parse();
    match run(cli, origin) {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            let chain: Vec<String> = err.chain().map(|e| e.to_string()).collect();
            eprintln!("vclab: {}", chain.join(": "));
            std::process::exit(1);
        }
    }
}
