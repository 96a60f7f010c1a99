//! `vclab image build -f FILE -t NAME[:TAG] [--layout DIR] [--build-arg K=V]... [CONTEXT]`.

use std::path::PathBuf;

use vclab_image::build::{self, Options};
use vclab_image::store::{Reference, Store};

/// `vclab image build` options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The Containerfile (default: CONTEXT/Containerfile, else CONTEXT/Dockerfile).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// The image's name and tag in the store, NAME[:TAG] (default tag latest).
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    tag: String,
    /// Also write the image to the OCI layout DIR (created if missing).
    #[arg(long, value_name = "DIR")]
    layout: Option<PathBuf>,
    /// A build argument for ARG (repeatable).
    #[arg(long = "build-arg", value_name = "K=V")]
    build_args: Vec<String>,
    /// The build context directory.
    #[arg(default_value = ".", value_name = "CONTEXT")]
    context: PathBuf,
}

/// Builds; prints one line per step and the manifest digest.
pub fn run(a: Args) -> anyhow::Result<i32> {
    let reference = Reference::parse(&a.tag)?;
    let containerfile = match a.file {
        Some(f) => f,
        None => {
            let c = a.context.join("Containerfile");
            if c.exists() {
                c
            } else {
                a.context.join("Dockerfile")
            }
        }
    };
    let epoch = build::epoch_from_env()?;
    // Parse first: a bad file is refused before anything is made.
    vclab_image::containerfile::parse_file(&containerfile)?;
    // CVE-2019-5736: RUN steps start containers from this process.
    vclab_container::reexec::ensure_protected()?;
    let opts = Options {
        containerfile,
        context: a.context,
        reference,
        build_args: a.build_args,
        layout: a.layout,
        store: Store::from_env(),
        epoch,
    };
    let out = build::build(&opts, &mut std::io::stdout())?;
    let built = out.steps.iter().filter(|s| s.layer && !s.cached).count();
    let cached = out.steps.iter().filter(|s| s.layer && s.cached).count();
    println!(
        "{} {} ({} layer steps: {cached} cached, {built} built; {} ms)",
        opts.reference,
        out.manifest_digest,
        cached + built,
        out.ms
    );
    Ok(0)
}
