//! `vclab container run`: a pass-through to the launcher's own command line
//! ([`vclab_container::cli`], the same parser and behaviour as the lean
//! `vclab-container` binary). clap only captures the raw arguments, so
//! `vclab container run --help` prints the launcher's help.

use std::ffi::OsString;

use clap::Args;

/// Container subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum ContainerCommand {
    /// Run one container: a command on a rootfs (overlay, so the image is never
    /// changed), or an OCI runtime bundle. Exits with the container's status
    /// (128+N when killed by signal N). `vclab container run --help` lists the
    /// options.
    #[command(disable_help_flag = true)]
    Run(RunArgs),
}

/// The raw arguments of `vclab container run`, parsed by
/// [`vclab_container::cli`].
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The launcher's options and `-- CMD [ARG...]` (see `vclab container run --help`).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        num_args = 0..,
        value_name = "ARGS"
    )]
    args: Vec<OsString>,
}

/// Runs a `vclab container` subcommand and returns the process exit code.
/// Errors are printed by the launcher's command line itself (one line,
/// `vclab: ...`), so this never returns `Err`.
pub fn run(cmd: ContainerCommand) -> anyhow::Result<i32> {
    match cmd {
        ContainerCommand::Run(a) => Ok(vclab_container::cli::main(
            "vclab container run",
            raw_args(a.args),
        )),
    }
}

/// The arguments after `container run` exactly as given. clap drops a `--`
/// that comes first (`vclab container run -- CMD`), which would change their
/// meaning, so they are taken from this process's argv when it has the plain
/// `vclab container run ...` shape; clap's capture is the fallback.
fn raw_args(captured: Vec<OsString>) -> Vec<OsString> {
    let argv: Vec<OsString> = std::env::args_os().collect();
    match argv.get(1..3) {
        Some([c, r]) if c == "container" && r == "run" => argv[3..].to_vec(),
        _ => captured,
    }
}
