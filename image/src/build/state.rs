//! The state of a build between steps: the layers so far and the image
//! configuration being assembled, and the cache key of that state.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use sha2::{Digest, Sha256};

/// One layer of the image being built.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Layer {
    /// `sha256:<hex>` of the uncompressed tar.
    pub diff_id: String,
    /// `sha256:<hex>` of the gzip'd blob.
    pub digest: String,
    /// The blob's size in bytes.
    pub size: u64,
    /// The layer's files, unpacked once (an overlay lower directory).
    pub tree: PathBuf,
    /// The blob.
    pub blob: PathBuf,
    /// The blob's media type (a gzip'd tar unless a base image said otherwise).
    pub media_type: String,
}

/// The media type of a gzip'd tar layer.
pub const GZIP_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// One history entry (a step that made a layer or only changed the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The instruction as shown (`RUN make`).
    pub created_by: String,
    /// True when the step made no layer.
    pub empty_layer: bool,
}

/// Layers and configuration so far.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// The layers, bottom first.
    pub layers: Vec<Layer>,
    /// `ENV`, in order of first definition.
    pub env: Vec<(String, String)>,
    /// `ARG`s declared so far with their values (a `--build-arg` or the default).
    pub args: BTreeMap<String, String>,
    /// `WORKDIR` (empty: none set).
    pub workdir: String,
    /// `USER` (empty: none set).
    pub user: String,
    /// `CMD`.
    pub cmd: Option<Vec<String>>,
    /// `ENTRYPOINT`.
    pub entrypoint: Option<Vec<String>>,
    /// `cmd` came from the base image (an `ENTRYPOINT` here then clears it,
    /// as Docker does).
    pub cmd_from_base: bool,
    /// `LABEL`s.
    pub labels: BTreeMap<String, String>,
    /// `EXPOSE`d ports (`80/tcp`).
    pub exposed: BTreeSet<String>,
    /// The history.
    pub history: Vec<Step>,
}

impl State {
    /// Sets (or replaces) an environment variable.
    pub fn set_env(&mut self, key: &str, value: &str) {
        match self.env.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = value.to_string(),
            None => self.env.push((key.to_string(), value.to_string())),
        }
    }

    /// `KEY=VALUE` entries of the image's environment.
    pub fn env_list(&self) -> Vec<String> {
        self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    /// The variables a step's words are expanded with: ARGs, then ENV on top
    /// (Docker: ENV wins over ARG of the same name).
    pub fn variables(&self) -> BTreeMap<String, String> {
        let mut v = self.args.clone();
        for (k, val) in &self.env {
            v.insert(k.clone(), val.clone());
        }
        v
    }

    /// The environment of a RUN step: the image's ENV plus the ARGs not
    /// overridden by it.
    pub fn run_env(&self) -> Vec<String> {
        let mut env = self.env_list();
        for (k, v) in &self.args {
            if !self.env.iter().any(|(e, _)| e == k) {
                env.push(format!("{k}={v}"));
            }
        }
        env
    }

    /// The layer directories, topmost first (an overlay's `lowerdir` order).
    pub fn lower_dirs(&self) -> Vec<PathBuf> {
        self.layers.iter().rev().map(|l| l.tree.clone()).collect()
    }

    /// The cache key of this state followed by `step`: the diff_ids so far,
    /// the configuration a step sees (env, args, workdir, user) and the
    /// step's own text or content checksum.
    pub fn key(&self, step: &str) -> String {
        let mut h = Sha256::new();
        for l in &self.layers {
            h.update(l.diff_id.as_bytes());
            h.update([0]);
        }
        h.update(b"\x01env");
        for e in self.env_list() {
            h.update(e.as_bytes());
            h.update([0]);
        }
        h.update(b"\x01args");
        for (k, v) in &self.args {
            h.update(format!("{k}={v}\0").as_bytes());
        }
        h.update(format!("\x01{}\0{}\x01", self.workdir, self.user).as_bytes());
        h.update(step.as_bytes());
        super::context::hex(&h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_follows_state_and_step() {
        let mut s = State::default();
        let k0 = s.key("RUN true");
        assert_eq!(k0, s.key("RUN true"));
        assert_ne!(k0, s.key("RUN false"));
        s.set_env("A", "1");
        let k1 = s.key("RUN true");
        assert_ne!(k0, k1);
        s.set_env("A", "2");
        assert_eq!(s.env_list(), ["A=2"]);
        assert_ne!(k1, s.key("RUN true"));
        s.args.insert("A".into(), "arg".into());
        s.args.insert("B".into(), "b".into());
        assert_eq!(s.run_env(), ["A=2", "B=b"]);
        assert_eq!(s.variables()["A"], "2");
    }
}
