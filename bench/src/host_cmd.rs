//! `vclab host`: describe this host. (Filled by the compare work.)

/// Arguments of `vclab host`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `vclab host`.
pub fn run(_args: Args) -> anyhow::Result<i32> {
    anyhow::bail!("vclab host is not built yet")
}
