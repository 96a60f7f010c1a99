//! OCI runtime bundles: `config.json` (parsed with oci-spec) mapped onto a
//! [`ContainerConfig`](crate::ContainerConfig).
//!
//! Supported: root (path, readonly), process (args, env, cwd, user,
//! capabilities, noNewPrivileges), hostname, linux.namespaces (pid, mount,
//! uts, ipc, network, cgroup; no paths), linux.resources (memory.limit,
//! cpu.quota/period, pids.limit), maskedPaths, readonlyPaths. The standard
//! /proc, /sys, /dev mounts are always made; other `mounts` entries, hooks,
//! seccomp and terminal mode are not supported.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::caps::CapSet;
use crate::cgroups::Limits;
use crate::namespaces::Namespace;
use crate::size::CPU_PERIOD_US;
use crate::ContainerConfig;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// config.json could not be read or parsed.
    #[error("cannot load the bundle configuration {path}: {reason} (is it valid OCI runtime config JSON?)")]
    Load {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// A field is missing.
    #[error("{path}: missing {field}")]
    Missing {
        /// The file.
        path: PathBuf,
        /// The field.
        field: &'static str,
    },
    /// A feature the launcher does not implement.
    #[error("{path}: {what} is not supported by vclab")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What.
        what: String,
    },
    /// A capability name is invalid.
    #[error("{path}: {source}")]
    Caps {
        /// The file.
        path: PathBuf,
        /// The capability error.
        source: crate::caps::Error,
    },
}

/// Loads `<bundle>/config.json` and maps it.
pub fn load_bundle(bundle: &Path) -> Result<ContainerConfig, Error> {
    let path = bundle.join("config.json");
    let spec = Spec::load(&path).map_err(|e| Error::Load {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    from_spec(&spec, bundle, &path)
}

fn unsupported(path: &Path, what: impl Into<String>) -> Error {
    Error::Unsupported {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// Maps a parsed spec; `bundle` resolves a relative root path, `path` names
/// the file in messages.
pub fn from_spec(spec: &Spec, bundle: &Path, path: &Path) -> Result<ContainerConfig, Error> {
    let missing = |field| Error::Missing {
        path: path.to_path_buf(),
        field,
    };
    let root = spec.root().as_ref().ok_or_else(|| missing("root"))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    let process = spec.process().as_ref().ok_or_else(|| missing("process"))?;
    if process.terminal().unwrap_or(false) {
        return Err(unsupported(
            path,
            "process.terminal = true (set it to false)",
        ));
    }
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err(missing("process.args"));
    }
    let mut cfg = ContainerConfig::new(rootfs, args);
    cfg.read_only = root.readonly().unwrap_or(false);
    cfg.env = process.env().clone().unwrap_or_default();
    cfg.cwd = process.cwd().to_string_lossy().into_owned();
    cfg.uid = process.user().uid();
    cfg.gid = process.user().gid();
    cfg.additional_gids = process.user().additional_gids().clone().unwrap_or_default();
    cfg.no_new_privileges = process.no_new_privileges().unwrap_or(false);
    cfg.hostname = spec.hostname().clone();
    if let Some(caps) = process.capabilities() {
        // oci-spec prints a capability without its `CAP_` prefix, which
        // `from_names` accepts.
        let names = caps.bounding().iter().flatten().map(|c| c.to_string());
        cfg.capabilities = CapSet::from_names(names).map_err(|source| Error::Caps {
            path: path.to_path_buf(),
            source,
        })?;
    } else {
        cfg.capabilities = CapSet(0);
    }
    let Some(linux) = spec.linux() else {
        cfg.namespaces = Vec::new();
        return Ok(cfg);
    };
    if let Some(list) = linux.namespaces() {
        let mut nss = Vec::with_capacity(list.len());
        for ns in list {
            if ns.path().is_some() {
                return Err(unsupported(
                    path,
                    format!("joining an existing {} namespace (path)", ns.typ()),
                ));
            }
            nss.push(match ns.typ() {
                LinuxNamespaceType::Pid => Namespace::Pid,
                LinuxNamespaceType::Mount => Namespace::Mount,
                LinuxNamespaceType::Uts => Namespace::Uts,
                LinuxNamespaceType::Ipc => Namespace::Ipc,
                LinuxNamespaceType::Network => Namespace::Network,
                LinuxNamespaceType::Cgroup => Namespace::Cgroup,
                LinuxNamespaceType::User => {
                    return Err(unsupported(
                        path,
                        "a user namespace in config.json (run vclab as a non-root user for rootless mode)",
                    ))
                }
                LinuxNamespaceType::Time => return Err(unsupported(path, "the time namespace")),
            });
        }
        if !nss.contains(&Namespace::Mount) {
            return Err(unsupported(path, "running without a mount namespace"));
        }
        cfg.namespaces = nss;
    }
    if let Some(res) = linux.resources() {
        let mut limits = Limits {
            cpu_period_us: CPU_PERIOD_US,
            ..Limits::default()
        };
        if let Some(m) = res.memory().as_ref().and_then(|m| m.limit()) {
            limits.memory_bytes = (m > 0).then_some(m as u64);
        }
        if let Some(cpu) = res.cpu() {
            if let Some(q) = cpu.quota() {
                limits.cpu_quota_us = (q > 0).then_some(q as u64);
            }
            if let Some(p) = cpu.period() {
                limits.cpu_period_us = p;
            }
        }
        if let Some(p) = res.pids() {
            limits.pids = (p.limit() > 0).then_some(p.limit() as u64);
        }
        cfg.limits = limits;
    }
    if let Some(m) = linux.masked_paths() {
        cfg.masked_paths = m.clone();
    }
    if let Some(r) = linux.readonly_paths() {
        cfg.readonly_paths = r.clone();
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_bundle(json: &str) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("config.json"), json).unwrap();
        tmp
    }

    /// The default spec oci-spec builds (runc spec's equivalent), tweaked.
    fn default_json(tweak: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut v = serde_json::to_value(Spec::default()).unwrap();
        tweak(&mut v);
        v.to_string()
    }

    #[test]
    fn default_spec_maps() {
        let json = default_json(|v| {
            v["process"]["args"] = serde_json::json!(["/bin/sh", "-c", "echo hi"]);
            v["hostname"] = serde_json::json!("box");
            v["linux"]["resources"] = serde_json::json!({
                "memory": {"limit": 16777216},
                "cpu": {"quota": 50000, "period": 100000},
                "pids": {"limit": 16}
            });
        });
        let b = write_bundle(&json);
        let cfg = load_bundle(b.path()).unwrap();
        assert_eq!(cfg.rootfs, b.path().join("rootfs"));
        assert_eq!(cfg.args, ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(cfg.hostname.as_deref(), Some("box"));
        assert_eq!(cfg.limits.memory_bytes, Some(16 << 20));
        assert_eq!(cfg.limits.cpu_quota_us, Some(50_000));
        assert_eq!(cfg.limits.pids, Some(16));
        assert!(cfg.namespaces.contains(&Namespace::Pid));
        assert!(cfg.masked_paths.iter().any(|p| p == "/proc/kcore"));
        assert!(cfg.readonly_paths.iter().any(|p| p == "/proc/sys"));
        // oci-spec's default capabilities: AUDIT_WRITE, KILL, NET_BIND_SERVICE.
        assert!(cfg.capabilities.contains(5));
        assert!(!cfg.capabilities.contains(21));
    }

    #[test]
    fn invalid_json_is_a_load_error() {
        let b = write_bundle("{ not json");
        let err = load_bundle(b.path()).unwrap_err();
        assert!(matches!(err, Error::Load { .. }), "{err}");
        assert!(err.to_string().contains("config.json"));
    }

    #[test]
    fn time_namespace_rejected() {
        let json = default_json(|v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"type": "time"}));
        });
        let b = write_bundle(&json);
        let err = load_bundle(b.path()).unwrap_err();
        assert!(err.to_string().contains("time namespace"), "{err}");
    }

    #[test]
    fn terminal_rejected() {
        let json = default_json(|v| v["process"]["terminal"] = serde_json::json!(true));
        let b = write_bundle(&json);
        assert!(matches!(
            load_bundle(b.path()),
            Err(Error::Unsupported { .. })
        ));
    }
}
