//! OCI runtime bundles: `config.json` (parsed with oci-spec) mapped onto a
//! [`ContainerConfig`](crate::ContainerConfig).
//!
//! Supported: root (path, readonly), process (args, env, cwd, user,
//! capabilities, noNewPrivileges, terminal), hostname, annotations,
//! linux.namespaces (pid, mount, uts, ipc, network, cgroup; no paths),
//! linux.resources (memory.limit, cpu.quota/period, pids.limit), maskedPaths,
//! readonlyPaths, `mounts` of type bind (options ro, rbind, nosuid, nodev,
//! noexec, propagation) and tmpfs, hooks (prestart, createRuntime,
//! poststart, poststop), linux.seccomp (defaultAction, defaultErrnoRet,
//! architectures, flags, syscalls with names, action, errnoRet and args; see
//! [`crate::seccomp`]). The standard /proc, /sys, /dev mounts are always
//! made (the bundle's entries for them are not applied again); other mount
//! types, createContainer/startContainer hooks and rlimits are not
//! supported (rlimits are ignored).
//!
//! Seccomp follows runc: a bundle gets the filter its `linux.seccomp` says
//! and none without one (`runc spec` writes none); Docker's default profile
//! is the `--rootfs` default, not the bundle's.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::caps::CapSet;
use crate::cgroups::Limits;
use crate::hooks::{Hook, Hooks};
use crate::namespaces::Namespace;
use crate::rootfs::UserMount;
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
    /// A mount entry is unusable.
    #[error("{path}: {source}")]
    Mount {
        /// The file.
        path: PathBuf,
        /// Why.
        source: crate::rootfs::Error,
    },
    /// A hook's path is not absolute.
    #[error("{path}: hook path {hook} must be absolute")]
    Hook {
        /// The file.
        path: PathBuf,
        /// The hook's path.
        hook: PathBuf,
    },
    /// `linux.seccomp` is unusable.
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::Error),
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
    let load = |reason: String| Error::Load {
        path: path.clone(),
        reason,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| load(e.to_string()))?;
    let mut value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| load(e.to_string()))?;
    // linux.seccomp is read by the launcher's own parser, whose errors name
    // the action, operator or call it refuses (oci-spec's say "serde failed").
    let seccomp = value
        .get_mut("linux")
        .and_then(|l| l.as_object_mut())
        .and_then(|l| l.remove("seccomp"))
        .filter(|v| !v.is_null());
    let spec: Spec = serde_json::from_value(value).map_err(|e| load(e.to_string()))?;
    let mut cfg = from_spec(&spec, bundle, &path)?;
    if let Some(v) = seccomp {
        let source_name = format!("linux.seccomp in {}", path.display());
        let profile = crate::seccomp::Profile::parse(&v.to_string(), &source_name)?;
        cfg.seccomp = crate::seccomp::Policy::Profile {
            source_name,
            profile,
        };
    }
    Ok(cfg)
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
    cfg.terminal = process.terminal().unwrap_or(false);
    cfg.bundle = Some(bundle.to_path_buf());
    if let Some(a) = spec.annotations() {
        cfg.annotations = a.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    }
    cfg.mounts = user_mounts(spec, bundle, path)?;
    cfg.hooks = hooks(spec, path)?;
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
    cfg.seccomp = crate::seccomp::Policy::Unconfined;
    let Some(linux) = spec.linux() else {
        cfg.namespaces = Vec::new();
        return Ok(cfg);
    };
    if let Some(sc) = linux.seccomp() {
        cfg.seccomp = crate::seccomp::Policy::from_oci(sc, path)?;
    }
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

/// The bundle's bind and tmpfs mounts (the standard destinations are made
/// by the launcher itself); a relative bind source is taken from the bundle.
fn user_mounts(spec: &Spec, bundle: &Path, path: &Path) -> Result<Vec<UserMount>, Error> {
    let mut out = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let dest = m.destination().to_string_lossy().into_owned();
        if crate::rootfs::STANDARD_DESTINATIONS.contains(&dest.as_str()) {
            continue;
        }
        let options = m.options().clone().unwrap_or_default();
        let typ = m.typ().as_deref().unwrap_or("");
        let bad = |source| Error::Mount {
            path: path.to_path_buf(),
            source,
        };
        let is_bind = typ == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
        let mount = if is_bind {
            let source = m.source().clone().unwrap_or_default();
            let source = if source.is_absolute() {
                source
            } else {
                bundle.join(source)
            };
            if !source.exists() {
                return Err(bad(crate::rootfs::Error::Source(source)));
            }
            UserMount::bind(source, &dest, &options).map_err(bad)?
        } else if typ == "tmpfs" {
            let source = m
                .source()
                .as_ref()
                .map(|s| s.to_string_lossy().into_owned());
            UserMount::fs(
                "tmpfs",
                source.as_deref().unwrap_or("tmpfs"),
                &dest,
                &options,
            )
            .map_err(bad)?
        } else {
            return Err(unsupported(
                path,
                format!("a mount of type {typ:?} at {dest} (bind and tmpfs are)"),
            ));
        };
        out.push(mount);
    }
    Ok(out)
}

fn hook_list(list: &Option<Vec<oci_spec::runtime::Hook>>) -> Vec<Hook> {
    list.iter()
        .flatten()
        .map(|h| Hook {
            path: h.path().clone(),
            args: h.args().clone().unwrap_or_default(),
            env: h.env().clone().unwrap_or_default(),
            timeout: h.timeout().and_then(|t| u64::try_from(t).ok()),
        })
        .collect()
}

/// The hooks the launcher runs; createContainer and startContainer (which
/// run inside the container) are refused.
fn hooks(spec: &Spec, path: &Path) -> Result<Hooks, Error> {
    let Some(h) = spec.hooks() else {
        return Ok(Hooks::default());
    };
    let has = |l: &Option<Vec<oci_spec::runtime::Hook>>| l.as_ref().is_some_and(|v| !v.is_empty());
    if has(h.create_container()) || has(h.start_container()) {
        return Err(unsupported(
            path,
            "createContainer and startContainer hooks (createRuntime, poststart, poststop are)",
        ));
    }
    let all = hook_list(h.prestart())
        .into_iter()
        .chain(hook_list(h.create_runtime()));
    for hook in hook_list(h.prestart())
        .iter()
        .chain(&hook_list(h.create_runtime()))
        .chain(&hook_list(h.poststart()))
        .chain(&hook_list(h.poststop()))
    {
        if !hook.path.is_absolute() {
            return Err(Error::Hook {
                path: path.to_path_buf(),
                hook: hook.path.clone(),
            });
        }
    }
    Ok(Hooks {
        create_runtime: all.collect(),
        poststart: hook_list(h.poststart()),
        poststop: hook_list(h.poststop()),
    })
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
    fn seccomp_follows_the_bundle() {
        use crate::seccomp::Policy;
        let b = write_bundle(&default_json(|_| {}));
        assert_eq!(load_bundle(b.path()).unwrap().seccomp, Policy::Unconfined);
        let json = default_json(|v| {
            v["linux"]["seccomp"] = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]});
        });
        let b = write_bundle(&json);
        let cfg = load_bundle(b.path()).unwrap();
        assert!(
            matches!(cfg.seccomp, Policy::Profile { .. }),
            "{:?}",
            cfg.seccomp
        );
        let json = default_json(|v| {
            v["linux"]["seccomp"] = serde_json::json!({"defaultAction": "SCMP_ACT_NOPE"});
        });
        let b = write_bundle(&json);
        let e = load_bundle(b.path()).unwrap_err();
        assert!(e.to_string().contains("SCMP_ACT_NOPE"), "{e}");
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
    fn terminal_mounts_hooks_map() {
        let src = tempfile::tempdir().unwrap();
        let json = default_json(|v| {
            v["process"]["terminal"] = serde_json::json!(true);
            v["annotations"] = serde_json::json!({"a": "b"});
            let mounts = v["mounts"].as_array_mut().unwrap();
            mounts.push(serde_json::json!({"destination": "/data", "type": "bind",
                "source": src.path(), "options": ["rbind", "ro"]}));
            mounts.push(
                serde_json::json!({"destination": "/scratch", "type": "tmpfs",
                "source": "tmpfs", "options": ["nosuid", "size=1m"]}),
            );
            v["hooks"] = serde_json::json!({
                "prestart": [{"path": "/bin/p"}],
                "createRuntime": [{"path": "/bin/c", "args": ["c", "1"], "timeout": 3}],
                "poststop": [{"path": "/bin/s", "env": ["A=1"]}]
            });
        });
        let b = write_bundle(&json);
        let cfg = load_bundle(b.path()).unwrap();
        assert!(cfg.terminal);
        assert_eq!(cfg.annotations.get("a").map(String::as_str), Some("b"));
        assert_eq!(cfg.mounts.len(), 2, "standard destinations are skipped");
        assert!(cfg.mounts[0].read_only && cfg.mounts[0].recursive);
        assert_eq!(cfg.mounts[1].fstype.as_deref(), Some("tmpfs"));
        assert_eq!(cfg.mounts[1].data, "size=1m");
        let paths: Vec<_> = cfg
            .hooks
            .create_runtime
            .iter()
            .map(|h| h.path.clone())
            .collect();
        assert_eq!(paths, [PathBuf::from("/bin/p"), PathBuf::from("/bin/c")]);
        assert_eq!(cfg.hooks.create_runtime[1].timeout, Some(3));
        assert_eq!(cfg.hooks.poststop[0].env, ["A=1"]);
    }

    #[test]
    fn bad_mounts_and_hooks_rejected() {
        for tweak in [
            serde_json::json!({"mounts": [{"destination": "/x", "type": "bind",
                "source": "/nonexistent/src", "options": ["bind"]}]}),
            serde_json::json!({"mounts": [{"destination": "/x", "type": "nfs", "source": "h:/"}]}),
            serde_json::json!({"hooks": {"startContainer": [{"path": "/bin/x"}]}}),
            serde_json::json!({"hooks": {"poststart": [{"path": "rel"}]}}),
        ] {
            let json = default_json(|v| {
                for (k, val) in tweak.as_object().unwrap() {
                    v[k] = val.clone();
                }
            });
            let b = write_bundle(&json);
            let e = load_bundle(b.path()).unwrap_err();
            assert!(e.to_string().contains("config.json"), "{e}");
        }
    }
}
