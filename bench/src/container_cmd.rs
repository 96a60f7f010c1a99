//! `vclab container ...`: run one container. (Filled by the container work.)

/// Container subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum ContainerCommand {
    /// Run one container.
    Run,
}

/// Runs a `vclab container` subcommand.
pub fn run(_cmd: ContainerCommand) -> anyhow::Result<i32> {
    anyhow::bail!("vclab container run is not built yet")
}
