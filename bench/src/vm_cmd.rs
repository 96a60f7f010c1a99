//! `vclab vm run`: the same parser and runner as the dedicated `vclab-vmm`
//! binary ([`vclab_vmm::cli`]), reached through the lab's CLI.

use std::ffi::OsString;
use std::time::Instant;

/// Micro-VM subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum VmCommand {
    /// Boot one VM and run it until the guest exits, resets, faults or the
    /// timeout ends it (`vclab vm run --help` lists the options; the
    /// `vclab-vmm` binary takes the same ones).
    #[command(disable_help_flag = true)]
    Run {
        /// The options of the VMM (see `vclab vm run --help`).
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<OsString>,
    },
}

/// Runs a `vclab vm` subcommand and returns the process exit code.
pub fn run(cmd: VmCommand, origin: Instant) -> anyhow::Result<i32> {
    match cmd {
        VmCommand::Run { args } => Ok(vclab_vmm::cli::main(args, origin)),
    }
}
