//! One instruction at a time: [`probe`] works out a layer step's cache key
//! and whether the cache has it (before anything runs, so the step line can
//! say so); [`apply`] then reuses or makes the layer, or changes the image
//! configuration.

use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use super::cache::Cache;
use super::context::{self, Source};
use super::state::{Layer, State, Step};
use super::{base, copy, from, run, seal, user};
use crate::containerfile::{expand, Base, Command, CopyArgs, ExpandError, Kind};

/// Errors of one step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A word could not be expanded.
    #[error(transparent)]
    Expand(#[from] ExpandError),
    /// A source is outside the context or missing.
    #[error(transparent)]
    Context(#[from] context::Error),
    /// The files could not be copied.
    #[error(transparent)]
    Copy(#[from] copy::Error),
    /// A user or group is unknown.
    #[error(transparent)]
    User(#[from] user::Error),
    /// The RUN command failed.
    #[error(transparent)]
    Run(#[from] run::Error),
    /// A layer could not be sealed.
    #[error(transparent)]
    Seal(#[from] seal::Error),
    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] super::cache::Error),
    /// `FROM vclab/base` failed.
    #[error(transparent)]
    Base(#[from] base::Error),
    /// `FROM oci:` failed.
    #[error(transparent)]
    From(#[from] from::Error),
    /// A directory of the layer could not be made.
    #[error("cannot create {path} in the layer: {source}")]
    Mkdir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What every step needs.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The layer cache.
    pub cache: &'a Cache,
    /// The build context (canonical).
    pub context: &'a Path,
    /// `--build-arg`s.
    pub given: &'a BTreeMap<String, String>,
    /// SOURCE_DATE_EPOCH.
    pub epoch: u64,
}

/// A layer step's plan, from [`probe`].
#[derive(Debug, Clone, Default)]
pub struct Plan {
    key: String,
    hit: Option<Layer>,
    sources: Vec<Source>,
    dest: String,
    owner: (u32, u32),
    /// A WORKDIR whose directory exists already: no layer.
    nothing: bool,
    /// `FROM oci:` whose layers are all in the cache.
    base_cached: bool,
}

impl Plan {
    /// True when the cache holds the step's layer (or layers).
    pub fn is_hit(&self) -> bool {
        self.hit.is_some() || self.base_cached
    }
}

/// How a step went.
#[derive(Debug, Clone, Default)]
pub struct Made {
    /// The image has a layer from this step.
    pub has_layer: bool,
    /// It came from the cache.
    pub cached: bool,
    /// It was made now.
    pub layer_built: bool,
    /// What was made (`layer sha256:…`).
    pub note: String,
}

/// The instruction as the step line shows it.
pub fn describe(kind: &Kind) -> String {
    let cmd = |c: &Command| match c {
        Command::Exec(a) => serde_json::to_string(a).unwrap_or_default(),
        Command::Shell(s) => s.clone(),
    };
    let kv = |l: &[(String, String)]| {
        l.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let copy = |a: &CopyArgs| {
        let chown = a
            .chown
            .as_ref()
            .map(|c| format!("--chown={c} "))
            .unwrap_or_default();
        format!("{chown}{} {}", a.sources.join(" "), a.dest)
    };
    let rest = match kind {
        Kind::From { base, .. } => match base {
            Base::Scratch => "scratch".to_string(),
            Base::VclabBase => "vclab/base".to_string(),
            Base::Oci { dir, tag } => match tag {
                Some(t) => format!("oci:{dir}:{t}"),
                None => format!("oci:{dir}"),
            },
        },
        Kind::Copy(a) | Kind::Add(a) => copy(a),
        Kind::Run(c) | Kind::Cmd(c) | Kind::Entrypoint(c) => cmd(c),
        Kind::Env(l) | Kind::Label(l) => kv(l),
        Kind::Arg(l) => l
            .iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => k.clone(),
            })
            .collect::<Vec<_>>()
            .join(" "),
        Kind::Workdir(s) | Kind::User(s) => s.clone(),
        Kind::Expose(p) => p.join(" "),
    };
    format!("{} {rest}", kind.keyword())
}

/// The cache plan of a layer step (`None` for the others).
pub fn probe(ctx: &Ctx<'_>, st: &State, kind: &Kind, line: usize) -> Result<Option<Plan>, Error> {
    let vars = st.variables();
    Ok(Some(match kind {
        Kind::From {
            base: Base::VclabBase,
            ..
        } => {
            let rootfs = base::rootfs_dir()?;
            let key = base::key(&rootfs, ctx.epoch)?;
            Plan {
                hit: ctx.cache.step(&key),
                key,
                sources: vec![Source {
                    written: ".".into(),
                    path: rootfs,
                }],
                ..Plan::default()
            }
        }
        Kind::From {
            base: Base::Oci { dir, tag },
            ..
        } => Plan {
            base_cached: from::all_cached(ctx.cache, Path::new(dir), tag.as_deref())?,
            ..Plan::default()
        },
        Kind::Copy(a) | Kind::Add(a) => {
            let what = kind.keyword();
            let what: &'static str = if what == "ADD" { "ADD" } else { "COPY" };
            let mut sources = Vec::new();
            for s in &a.sources {
                sources.push(context::resolve(
                    ctx.context,
                    &expand(s, &vars)?,
                    line,
                    what,
                )?);
            }
            let dest = absolute(&st.workdir, &expand(&a.dest, &vars)?);
            let owner = match &a.chown {
                Some(c) => user::resolve(&st.lower_dirs(), &expand(c, &vars)?)?,
                None => (0, 0),
            };
            let sum = context::checksum(&sources)?;
            let key = st.key(&format!("{what} {owner:?} {dest} {sum}"));
            Plan {
                hit: ctx.cache.step(&key),
                key,
                sources,
                dest,
                owner,
                ..Plan::default()
            }
        }
        Kind::Run(c) => {
            let argv = run::argv(c);
            let key = st.key(&format!(
                "RUN {}",
                serde_json::to_string(&argv).unwrap_or_default()
            ));
            Plan {
                hit: ctx.cache.step(&key),
                key,
                ..Plan::default()
            }
        }
        Kind::Workdir(w) => {
            let dir = absolute(&st.workdir, &expand(w, &vars)?);
            let nothing = dir == "/" || exists_in(&st.lower_dirs(), &dir);
            let key = st.key(&format!("WORKDIR {dir}"));
            Plan {
                hit: if nothing { None } else { ctx.cache.step(&key) },
                key,
                dest: dir,
                nothing,
                ..Plan::default()
            }
        }
        _ => return Ok(None),
    }))
}

/// Applies one instruction to the state.
pub fn apply(
    ctx: &Ctx<'_>,
    st: &mut State,
    kind: &Kind,
    _line: usize,
    plan: Option<Plan>,
) -> Result<Made, Error> {
    let vars = st.variables();
    let text = describe(kind);
    let config_only = |st: &mut State| {
        st.history.push(Step {
            created_by: text.clone(),
            empty_layer: true,
        });
        Made::default()
    };
    let plan = plan.unwrap_or_default();
    if let Some(layer) = plan.hit.clone() {
        if let Kind::Workdir(_) = kind {
            st.workdir = plan.dest.clone();
        }
        return Ok(push(st, layer, &text, true));
    }
    Ok(match kind {
        Kind::Arg(list) => {
            for (k, default) in list {
                let v = match (ctx.given.get(k), default) {
                    (Some(v), _) => Some(v.clone()),
                    (None, Some(d)) => Some(expand(d, &vars)?),
                    (None, None) => None,
                };
                st.args.insert(k.clone(), v.unwrap_or_default());
            }
            config_only(st)
        }
        Kind::From {
            base: Base::Scratch,
            ..
        } => Made::default(),
        Kind::From {
            base: Base::VclabBase,
            ..
        } => {
            let rootfs = &plan.sources[0].path;
            let staged = ctx.cache.stage()?;
            let layer = seal::import(ctx.cache, staged, rootfs, ctx.epoch, Some(&plan.key))?;
            let mut m = push(st, layer, &text, false);
            m.note = format!("base layer {}", st.layers[0].diff_id);
            m
        }
        Kind::From {
            base: Base::Oci { dir, tag },
            ..
        } => {
            let (cached, built) = from::apply(ctx.cache, st, Path::new(dir), tag.as_deref())?;
            Made {
                has_layer: !st.layers.is_empty(),
                cached: built == 0,
                layer_built: built > 0,
                note: format!(
                    "{} base layers ({cached} cached, {built} unpacked)",
                    cached + built
                ),
            }
        }
        Kind::Copy(_) | Kind::Add(_) => {
            let staged = ctx.cache.stage()?;
            copy::copy_into(
                &staged.tree(),
                &copy::Copy {
                    sources: &plan.sources,
                    dest: &plan.dest,
                    owner: plan.owner,
                    extract: matches!(kind, Kind::Add(_)),
                },
            )?;
            let layer = seal::seal(ctx.cache, staged, ctx.epoch, false, Some(&plan.key))?;
            push(st, layer, &text, false)
        }
        Kind::Run(c) => {
            let staged = ctx.cache.stage()?;
            let mut lower = st.lower_dirs();
            if lower.is_empty() {
                lower.push(ctx.cache.empty_dir()?);
            }
            let owner = if st.user.is_empty() {
                (0, 0)
            } else {
                user::resolve(&lower, &st.user)?
            };
            let cwd = if st.workdir.is_empty() {
                "/".to_string()
            } else {
                st.workdir.clone()
            };
            if !exists_in(&lower, &cwd) {
                mkdir(&staged.tree().join(cwd.trim_start_matches('/')))?;
            }
            let (upper, work) = (staged.tree(), staged.scratch());
            run::run(&run::RunStep {
                args: run::argv(c),
                env: st.run_env(),
                cwd,
                user: owner,
                lower,
                upper: &upper,
                work: &work,
            })?;
            let layer = seal::seal(ctx.cache, staged, ctx.epoch, true, Some(&plan.key))?;
            push(st, layer, &text, false)
        }
        Kind::Workdir(_) => {
            st.workdir = plan.dest.clone();
            if plan.nothing {
                return Ok(config_only(st));
            }
            let staged = ctx.cache.stage()?;
            mkdir(&staged.tree().join(plan.dest.trim_start_matches('/')))?;
            let layer = seal::seal(ctx.cache, staged, ctx.epoch, false, Some(&plan.key))?;
            push(st, layer, &text, false)
        }
        Kind::Env(list) => {
            for (k, v) in list {
                let v = expand(v, &st.variables())?;
                st.set_env(k, &v);
            }
            config_only(st)
        }
        Kind::User(u) => {
            st.user = expand(u, &vars)?;
            config_only(st)
        }
        Kind::Cmd(c) => {
            st.cmd = Some(run::argv(c));
            st.cmd_from_base = false;
            config_only(st)
        }
        Kind::Entrypoint(c) => {
            st.entrypoint = Some(run::argv(c));
            if st.cmd_from_base {
                // Docker: an ENTRYPOINT resets the CMD the base image set.
                st.cmd = None;
                st.cmd_from_base = false;
            }
            config_only(st)
        }
        Kind::Label(list) => {
            for (k, v) in list {
                st.labels.insert(expand(k, &vars)?, expand(v, &vars)?);
            }
            config_only(st)
        }
        Kind::Expose(ports) => {
            for p in ports {
                let p = expand(p, &vars)?;
                let p = if p.contains('/') {
                    p
                } else {
                    format!("{p}/tcp")
                };
                st.exposed.insert(p);
            }
            config_only(st)
        }
    })
}

fn push(st: &mut State, layer: Layer, text: &str, cached: bool) -> Made {
    let note = format!("layer {}", layer.diff_id);
    st.layers.push(layer);
    st.history.push(Step {
        created_by: text.to_string(),
        empty_layer: false,
    });
    Made {
        has_layer: true,
        cached,
        layer_built: !cached,
        note,
    }
}

fn mkdir(p: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(p).map_err(|source| Error::Mkdir {
        path: p.to_path_buf(),
        source,
    })
}

/// `dest` made absolute against the working directory (a trailing '/' kept).
fn absolute(workdir: &str, dest: &str) -> String {
    if dest.starts_with('/') {
        return dest.to_string();
    }
    let base = if workdir.is_empty() { "/" } else { workdir };
    let joined = format!("{}/{}", base.trim_end_matches('/'), dest);
    let trailing = dest.ends_with('/') || dest == ".";
    let mut parts: Vec<&str> = Vec::new();
    for c in joined.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut s = format!("/{}", parts.join("/"));
    if trailing && s != "/" {
        s.push('/');
    }
    s
}

/// Whether `path` exists in the stacked layer directories (topmost first),
/// a whiteout hiding it.
fn exists_in(lower: &[PathBuf], path: &str) -> bool {
    let rel = path.trim_start_matches('/').trim_end_matches('/');
    for l in lower {
        if let Ok(m) = std::fs::symlink_metadata(l.join(rel)) {
            return !(m.file_type().is_char_device() && m.len() == 0 && {
                use std::os::unix::fs::MetadataExt;
                m.rdev() == 0
            });
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entrypoint_resets_only_the_base_cmd() {
        let cache = Cache::at("/nonexistent/vclab-cache");
        let given = BTreeMap::new();
        let ctx = Ctx {
            cache: &cache,
            context: Path::new("/"),
            given: &given,
            epoch: 0,
        };
        let mut st = State {
            cmd: Some(vec!["base".into()]),
            cmd_from_base: true,
            ..State::default()
        };
        let ep = Kind::Entrypoint(Command::Exec(vec!["/e".into()]));
        apply(&ctx, &mut st, &ep, 1, None).unwrap();
        assert_eq!(st.cmd, None);
        apply(
            &ctx,
            &mut st,
            &Kind::Cmd(Command::Shell("x".into())),
            2,
            None,
        )
        .unwrap();
        apply(&ctx, &mut st, &ep, 3, None).unwrap();
        assert_eq!(
            st.cmd.as_deref(),
            Some(&["/bin/sh".to_string(), "-c".into(), "x".into()][..])
        );
        assert_eq!(st.history.len(), 3);
        assert!(st.history.iter().all(|h| h.empty_layer));
    }

    #[test]
    fn destinations() {
        assert_eq!(absolute("", "app/"), "/app/");
        assert_eq!(absolute("/w", "."), "/w/");
        assert_eq!(absolute("/w", "x"), "/w/x");
        assert_eq!(absolute("/w", "../y"), "/y");
        assert_eq!(absolute("/w", "/abs"), "/abs");
    }
}
