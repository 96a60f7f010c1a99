//! `vclab compare` and `vclab report`. (Filled by the compare work.)

/// Arguments of `vclab compare`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A short run.
    #[arg(long)]
    pub quick: bool,
}

/// Arguments of `vclab report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// A results directory written by `vclab compare`.
    pub dir: std::path::PathBuf,
}

/// Runs `vclab compare`.
pub fn run(_args: Args) -> anyhow::Result<i32> {
    anyhow::bail!("vclab compare is not built yet")
}

/// Runs `vclab report`.
pub fn report(_args: ReportArgs) -> anyhow::Result<i32> {
    anyhow::bail!("vclab report is not built yet")
}
