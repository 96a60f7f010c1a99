//! The image's runtime configuration and history from the build state
//! (helper A's [`crate::layout`] writes the config blob around them, with
//! `created` and canonical JSON).

use oci_spec::image::{Config, ConfigBuilder, History};

use super::state::State;
use crate::layout::{self, LayoutError};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// oci-spec refused a value.
    #[error("cannot assemble the image configuration: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
    /// A history entry could not be made.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// The runtime part of the image config: env, cmd, entrypoint, workdir,
/// user, labels, exposed ports.
pub fn runtime(state: &State) -> Result<Config, Error> {
    let mut c = ConfigBuilder::default();
    if !state.env.is_empty() {
        c = c.env(state.env_list());
    }
    if let Some(cmd) = &state.cmd {
        c = c.cmd(cmd.clone());
    }
    if let Some(ep) = &state.entrypoint {
        c = c.entrypoint(ep.clone());
    }
    if !state.workdir.is_empty() {
        c = c.working_dir(state.workdir.clone());
    }
    if !state.user.is_empty() {
        c = c.user(state.user.clone());
    }
    if !state.labels.is_empty() {
        c = c.labels(
            state
                .labels
                .clone()
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        );
    }
    if !state.exposed.is_empty() {
        c = c.exposed_ports(state.exposed.iter().cloned().collect::<Vec<_>>());
    }
    Ok(c.build()?)
}

/// One history entry per step, dated `epoch`.
pub fn history(state: &State, epoch: u64) -> Result<Vec<History>, Error> {
    Ok(state
        .history
        .iter()
        .map(|h| layout::history_entry(&h.created_by, h.empty_layer, epoch))
        .collect::<Result<Vec<_>, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_fields() {
        let mut s = State::default();
        s.set_env("A", "1");
        s.cmd = Some(vec!["sh".into()]);
        s.workdir = "/w".into();
        s.exposed.insert("80/tcp".into());
        let c = runtime(&s).unwrap();
        assert_eq!(c.env().as_deref(), Some(&["A=1".to_string()][..]));
        assert_eq!(c.working_dir().as_deref(), Some("/w"));
        assert_eq!(
            c.exposed_ports().as_deref(),
            Some(&["80/tcp".to_string()][..])
        );
        assert!(c.entrypoint().is_none());
    }
}
