//! `vclab vm ...`: run one micro-VM. (Filled by the VMM work.)

/// Micro-VM subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum VmCommand {
    /// Boot one VM.
    Run,
}

/// Runs a `vclab vm` subcommand.
pub fn run(_cmd: VmCommand) -> anyhow::Result<i32> {
    anyhow::bail!("vclab vm run is not built yet")
}
