//! `vclab container run --image NAME[:TAG] [OPTIONS] [-- CMD...]`: the
//! image unpacked once into a rootfs keyed by its manifest digest
//! ([`vclab_image::rootfs`]), then the launcher's own `run --rootfs DIR`
//! with the image config's entrypoint, cmd, env, workdir and user, under
//! Docker's rules: a CMD on the command line replaces the image's CMD (not
//! its ENTRYPOINT); `-e`, `-w` and `--user` win over the image's values.

use std::ffi::OsString;

use vclab_container::cli::{self, Action};
use vclab_image::store::{Reference, Store};

/// Errors of `--image`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--image` came last.
    #[error("--image needs a value: give NAME[:TAG] (see vclab image ls)")]
    NoValue,
    /// `--image` with `--rootfs` or `--bundle`.
    #[error("--image excludes --rootfs and --bundle: give one of them")]
    Both,
    /// Neither the image nor the command line names a program.
    #[error("image {0} has no ENTRYPOINT or CMD: give the command after `--`")]
    NoCommand(Reference),
    /// An argument is not UTF-8.
    #[error("argument {0:?} is not valid UTF-8: give it as UTF-8 text")]
    NotUtf8(String),
}

/// The launcher arguments for a `run` command line that names `--image`;
/// `None` when it does not (the arguments are used as they are).
pub fn translate(args: &[OsString]) -> anyhow::Result<Option<Vec<OsString>>> {
    let split = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let (opts, cmd) = (&args[..split], args.get(split + 1..));
    let mut rest = Vec::new();
    let mut image = None;
    let mut other_image = false;
    let mut it = opts.iter();
    while let Some(a) = it.next() {
        let s = a
            .to_str()
            .ok_or_else(|| Error::NotUtf8(a.to_string_lossy().into_owned()))?;
        if s == "--image" {
            image = Some(
                it.next()
                    .ok_or(Error::NoValue)?
                    .to_string_lossy()
                    .into_owned(),
            );
        } else if let Some(v) = s.strip_prefix("--image=") {
            image = Some(v.to_string());
        } else {
            other_image |=
                s == "--rootfs" || s.starts_with("--rootfs=") || s == "--bundle" || s == "-b";
            rest.push(a.clone());
        }
    }
    let Some(image) = image else {
        return Ok(None);
    };
    if other_image {
        return Err(Error::Both.into());
    }
    let r = Reference::parse(&image)?;
    let prepared = vclab_image::rootfs::prepare(&Store::from_env(), &r)?;
    let rootfs = prepared.rootfs.display().to_string();
    let config = prepared.config.config().clone().unwrap_or_default();

    // What the user set: parsed by the launcher's own (pure) parser.
    let mut probe: Vec<OsString> = rest.clone();
    probe.extend([
        "--rootfs".into(),
        rootfs.clone().into(),
        "--".into(),
        "true".into(),
    ]);
    let given = match cli::parse(probe) {
        Ok(Action::Run(o)) | Ok(Action::Create(o)) => Some(o),
        _ => None,
    };
    let user_cmd: Vec<String> = cmd
        .unwrap_or_default()
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut command = config.entrypoint().clone().unwrap_or_default();
    if cmd.is_some() && !user_cmd.is_empty() {
        command.extend(user_cmd);
    } else {
        command.extend(config.cmd().clone().unwrap_or_default());
    }
    if command.is_empty() {
        return Err(Error::NoCommand(r).into());
    }

    let mut out: Vec<OsString> = vec!["--rootfs".into(), rootfs.into()];
    let user_keys: Vec<String> = given
        .as_ref()
        .map(|o| {
            o.env
                .iter()
                .map(|e| e.split('=').next().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    for e in config.env().clone().unwrap_or_default() {
        let key = e.split('=').next().unwrap_or_default();
        if !user_keys.iter().any(|k| k == key) {
            out.extend(["-e".into(), e.into()]);
        }
    }
    let workdir_given = given.as_ref().is_some_and(|o| o.workdir.is_some());
    if let Some(w) = config
        .working_dir()
        .clone()
        .filter(|w| !w.is_empty() && !workdir_given)
    {
        out.extend(["-w".into(), w.into()]);
    }
    let user_given = given.as_ref().is_some_and(|o| o.user.is_some());
    if let Some(u) = config
        .user()
        .clone()
        .filter(|u| !u.is_empty() && !user_given)
    {
        let (uid, gid) =
            vclab_image::build::user::resolve(std::slice::from_ref(&prepared.rootfs), &u)?;
        out.extend(["--user".into(), format!("{uid}:{gid}").into()]);
    }
    out.extend(rest);
    out.push("--".into());
    out.extend(command.into_iter().map(OsString::from));
    Ok(Some(out))
}
