//! `vclab image <verb>`: the daemonless builder and the image store
//! ([`vclab_image`]): `build`, `ls`, `inspect`, `rm`; and the image side of
//! `vclab container run --image` ([`run_image`]).

mod build;
pub mod run_image;
mod store_cmds;

/// Image subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum ImageCommand {
    /// Build an image from a Containerfile into the lab's image store (an OCI
    /// layout per name), daemonless: RUN steps run in the lab's own launcher.
    Build(build::Args),
    /// List the images in the store (name:tag, manifest digest, size).
    Ls,
    /// Print an image's config and its layers with their sizes.
    Inspect {
        /// The image, NAME[:TAG] (default tag latest).
        name: String,
    },
    /// Remove an image (its tag; the name's layout goes with its last tag).
    Rm {
        /// The image, NAME[:TAG] (default tag latest).
        name: String,
    },
}

/// Runs an image subcommand; returns the exit code.
pub fn run(cmd: ImageCommand) -> anyhow::Result<i32> {
    match cmd {
        ImageCommand::Build(a) => build::run(a),
        ImageCommand::Ls => store_cmds::ls(),
        ImageCommand::Inspect { name } => store_cmds::inspect(&name),
        ImageCommand::Rm { name } => store_cmds::rm(&name),
    }
}
