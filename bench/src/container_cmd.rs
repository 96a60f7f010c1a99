//! `vclab container <verb>`: a pass-through to the launcher's own command
//! line ([`vclab_container::cli`], the same parser and behaviour as the lean
//! `vclab-container` binary: `vclab container run ARGS` is
//! `vclab-container ARGS`, `vclab container create ARGS` is
//! `vclab-container create ARGS`, and so on). clap only captures the raw
//! arguments, so `vclab container <verb> --help` prints the launcher's help.

use std::ffi::OsString;

use clap::Args;

/// Container subcommands (runc's verbs and meaning).
#[derive(clap::Subcommand, Debug)]
pub enum ContainerCommand {
    /// Run one container: a command on a rootfs (overlay, so the image is never
    /// changed), or an OCI runtime bundle. Exits with the container's status
    /// (128+N when killed by signal N); with --detach, creates and starts it
    /// and exits. `vclab container run --help` lists the options; `--image
    /// NAME[:TAG]` runs an image of `vclab image build` (its entrypoint, cmd,
    /// env, workdir and user; `-- CMD` replaces its CMD).
    #[command(disable_help_flag = true)]
    Run(RawArgs),
    /// Create a container: set up, its process waits for `start`.
    #[command(disable_help_flag = true)]
    Create(RawArgs),
    /// Start a created container: `start ID`.
    #[command(disable_help_flag = true)]
    Start(RawArgs),
    /// Print a container's OCI state (JSON): `state ID`.
    #[command(disable_help_flag = true)]
    State(RawArgs),
    /// Send a signal to a container: `kill ID [SIGNAL]` (default TERM).
    #[command(disable_help_flag = true)]
    Kill(RawArgs),
    /// Delete a stopped or created container: `delete [--force] ID`.
    #[command(disable_help_flag = true)]
    Delete(RawArgs),
    /// List the containers: `list [--format table|json] [-q]`.
    #[command(disable_help_flag = true)]
    List(RawArgs),
}

/// The raw arguments of a `vclab container` verb, parsed by
/// [`vclab_container::cli`].
#[derive(Args, Debug)]
pub struct RawArgs {
    /// The launcher's arguments (see `vclab container <verb> --help`).
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
/// `vclab: ...`); only `run --image` returns `Err` (an image that is not in
/// the store or cannot be unpacked), before the launcher starts.
pub fn run(cmd: ContainerCommand) -> anyhow::Result<i32> {
    let (verb, a) = match cmd {
        ContainerCommand::Run(a) => ("run", a),
        ContainerCommand::Create(a) => ("create", a),
        ContainerCommand::Start(a) => ("start", a),
        ContainerCommand::State(a) => ("state", a),
        ContainerCommand::Kill(a) => ("kill", a),
        ContainerCommand::Delete(a) => ("delete", a),
        ContainerCommand::List(a) => ("list", a),
    };
    let mut rest = raw_args(verb, a.args);
    // `run --image NAME[:TAG]`: the image's rootfs and config as launcher options.
    if verb == "run" {
        if let Some(translated) = crate::image_cmd::run_image::translate(&rest)? {
            rest = translated;
        }
    }
    let mut args = vec![OsString::from(verb)];
    args.extend(rest);
    Ok(vclab_container::cli::main("vclab container", args))
}

/// The arguments after `container <verb>` exactly as given. clap drops a `--`
/// that comes first (`vclab container run -- CMD`), which would change their
/// meaning, so they are taken from this process's argv when it has the plain
/// `vclab container <verb> ...` shape; clap's capture is the fallback.
fn raw_args(verb: &str, captured: Vec<OsString>) -> Vec<OsString> {
    let argv: Vec<OsString> = std::env::args_os().collect();
    match argv.get(1..3) {
        Some([c, v]) if c == "container" && v == verb => argv[3..].to_vec(),
        _ => captured,
    }
}
