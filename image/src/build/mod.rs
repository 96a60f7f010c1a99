//! `vclab image build`: a parsed Containerfile executed into an OCI image
//! layout, daemonless (one process tree; `RUN` in the lab's own launcher).
//!
//! Steps: parse ([`crate::containerfile`]) → for each instruction, in order:
//! its cache key from the state so far ([`state`]) → a cache hit reuses the
//! layer ([`cache`]), a miss makes it: `FROM` ([`base`], [`from`]), `COPY`/
//! `ADD` ([`context`] confines and checksums the sources, [`copy`] fills a
//! fresh tree), `RUN` ([`run`]: overlay of the parent layers' trees with a
//! fresh upper directory), sealed into a blob ([`seal`]) → the image
//! configuration ([`config`]) → a temporary layout renamed into the store
//! ([`emit`], [`crate::store`]). A failed step commits nothing: its
//! staging directory is removed, the store is not touched.

pub mod base;
pub mod cache;
pub mod config;
pub mod context;
pub mod copy;
pub mod emit;
pub mod from;
pub mod run;
pub mod seal;
pub mod state;
pub mod steps;
pub mod tree;
pub mod user;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use crate::containerfile::{self, Kind};
use crate::store::{Reference, Store};

/// Errors of a build.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Containerfile could not be parsed.
    #[error(transparent)]
    Parse(#[from] containerfile::ParseError),
    /// The context is not a directory.
    #[error(
        "build context {path} is not a directory: {reason}: give an existing directory as CONTEXT"
    )]
    Context {
        /// The context as given.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// `--build-arg` is not `KEY=VALUE`.
    #[error("--build-arg {0:?} is not KEY=VALUE: write it as --build-arg NAME=value")]
    BuildArg(String),
    /// `SOURCE_DATE_EPOCH` is not a number.
    #[error("SOURCE_DATE_EPOCH={0:?} is not a whole number of seconds: unset it or give e.g. 0")]
    Epoch(String),
    /// One step failed.
    #[error("{file}:{line}: STEP {step}/{total} {instruction}: {source}")]
    Step {
        /// The Containerfile name.
        file: String,
        /// Its line.
        line: usize,
        /// The step number (1-based).
        step: usize,
        /// The number of steps.
        total: usize,
        /// The instruction, shortened.
        instruction: String,
        /// What failed.
        source: Box<steps::Error>,
    },
    /// The image could not be written.
    #[error(transparent)]
    Emit(#[from] emit::Error),
}

/// What to build.
#[derive(Debug, Clone)]
pub struct Options {
    /// The Containerfile.
    pub containerfile: PathBuf,
    /// The build context directory.
    pub context: PathBuf,
    /// The image's name and tag in the store.
    pub reference: Reference,
    /// `--build-arg K=V`, as given.
    pub build_args: Vec<String>,
    /// `--layout DIR`: also write the image to this OCI layout.
    pub layout: Option<PathBuf>,
    /// The image store.
    pub store: Store,
    /// Every timestamp (`SOURCE_DATE_EPOCH`, default 0).
    pub epoch: u64,
}

/// How each step went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// The line shown (`RUN make`).
    pub text: String,
    /// Made a layer (or reused one).
    pub layer: bool,
    /// The layer came from the cache.
    pub cached: bool,
    /// Wall time in ms.
    pub ms: u128,
}

/// A finished build.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `sha256:` of the image manifest.
    pub manifest_digest: String,
    /// The steps.
    pub steps: Vec<StepReport>,
    /// Total wall time in ms.
    pub ms: u128,
}

/// `SOURCE_DATE_EPOCH` from the environment (0 when unset).
pub fn epoch_from_env() -> Result<u64, Error> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Err(_) => Ok(0),
        Ok(v) if v.is_empty() => Ok(0),
        Ok(v) => v.trim().parse().map_err(|_| Error::Epoch(v)),
    }
}

/// Runs the build, printing one line per step (and each `RUN`'s own
/// output) to `out`. On error nothing is added to the store.
pub fn build(opts: &Options, out: &mut dyn Write) -> Result<Outcome, Error> {
    let started = Instant::now();
    let cf = containerfile::parse_file(&opts.containerfile)?;
    let context = opts.context.canonicalize().map_err(|e| Error::Context {
        path: opts.context.clone(),
        reason: e.to_string(),
    })?;
    if !context.is_dir() {
        return Err(Error::Context {
            path: opts.context.clone(),
            reason: "not a directory".into(),
        });
    }
    let mut given = BTreeMap::new();
    for a in &opts.build_args {
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| Error::BuildArg(a.clone()))?;
        given.insert(k.to_string(), v.to_string());
    }
    let cache = cache::Cache::at(opts.store.cache_dir());
    // What builds killed by a signal left (their destructors never ran).
    crate::store::tmp::sweep(&opts.store.tmp_dir());
    crate::store::tmp::sweep(&cache.root().join("tmp"));
    let mut st = state::State::default();
    let mut reports = Vec::new();
    let total = cf.instructions.len();
    for (i, ins) in cf.instructions.iter().enumerate() {
        let text = steps::describe(&ins.kind);
        let t0 = Instant::now();
        let ctx = steps::Ctx {
            cache: &cache,
            context: &context,
            given: &given,
            epoch: opts.epoch,
        };
        let fail = |source| Error::Step {
            file: cf.file.clone(),
            line: ins.line,
            step: i + 1,
            total,
            instruction: short(&text),
            source: Box::new(source),
        };
        let layer = matches!(
            ins.kind,
            Kind::From { .. } | Kind::Copy(_) | Kind::Add(_) | Kind::Run(_) | Kind::Workdir(_)
        );
        // The step line first, so a RUN's output follows it; a cache hit is
        // known before anything runs.
        let hit = steps::probe(&ctx, &st, &ins.kind, ins.line).map_err(fail)?;
        let _ = writeln!(
            out,
            "STEP {}/{total}: {text}{}",
            i + 1,
            if hit.as_ref().is_some_and(steps::Plan::is_hit) {
                " (cached)"
            } else {
                ""
            }
        );
        let _ = out.flush();
        let made = steps::apply(&ctx, &mut st, &ins.kind, ins.line, hit).map_err(fail)?;
        let ms = t0.elapsed().as_millis();
        if made.layer_built {
            let _ = writeln!(out, "--> {} ({ms} ms)", made.note);
        }
        reports.push(StepReport {
            text,
            layer: layer && made.has_layer,
            cached: made.cached,
            ms,
        });
    }
    let digest = emit::emit(opts, &st)?;
    let ms = started.elapsed().as_millis();
    let _ = writeln!(out, "COMMIT {} {digest} ({ms} ms)", opts.reference);
    Ok(Outcome {
        manifest_digest: digest,
        steps: reports,
        ms,
    })
}

fn short(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        format!("{}...", text.chars().take(MAX).collect::<String>())
    }
}
