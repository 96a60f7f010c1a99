//! Files the peer runtimes start from: an OCI bundle over the shared rootfs
//! for runc and crun, a config file for Firecracker. Each lives in its own
//! temporary directory that is removed (and its container deleted, its
//! cgroups removed) when the guard drops, also after a failed run.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_json::json;

use std::sync::Arc;

use crate::spawn::guard::{self, Harness};

/// Errors preparing a peer's files.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The rootfs path could not be resolved.
    #[error("cannot resolve the rootfs {path}: {source} (rebuild it: scripts/guest-images.sh)")]
    Rootfs {
        /// The rootfs.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The temporary directory or a file in it could not be written.
    #[error("cannot write {path}: {source} (is the temporary directory writable?)")]
    Write {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Which OCI runtime a bundle is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OciRuntime {
    /// runc.
    Runc,
    /// crun.
    Crun,
}

/// A temporary directory with a peer's files; removed on drop.
#[derive(Debug)]
pub struct Bundle {
    dir: PathBuf,
    file: PathBuf,
    oci: Option<(OciRuntime, PathBuf, String)>,
    harness: Option<Arc<Harness>>,
}

/// A fresh directory for one instance's files: in the harness's state
/// entry (its guard removes it if the harness dies), else in the temp dir.
fn files_dir(harness: Option<&Harness>, tag: &str, seq: u64) -> Result<PathBuf, OciError> {
    let name = format!("vclab-compare-{tag}-{}-{seq}", std::process::id());
    if let Some(h) = harness {
        return h.instance_dir(&name).map_err(|e| OciError::Write {
            path: h.dir().join(&name),
            source: std::io::Error::other(e.to_string()),
        });
    }
    let dir = std::env::temp_dir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|source| OciError::Write {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

fn write(path: &Path, text: &str) -> Result<(), OciError> {
    std::fs::write(path, text).map_err(|source| OciError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The OCI runtime config for `args` over the read-only `rootfs`.
pub fn oci_config(rootfs: &Path, args: &[String], cgroups_path: &str) -> serde_json::Value {
    let mut mounts = Vec::new();
    if rootfs.join("proc").is_dir() {
        mounts.push(json!({"destination": "/proc", "type": "proc", "source": "proc"}));
    }
    if rootfs.join("dev").is_dir() {
        mounts.push(
            json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        );
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin:/sbin:/usr/bin:/usr/sbin"],
            "cwd": "/",
            "noNewPrivileges": true
        },
        "root": {"path": rootfs, "readonly": true},
        "hostname": "vclab",
        "mounts": mounts,
        "linux": {
            "cgroupsPath": cgroups_path,
            "namespaces": [
                {"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                {"type": "mount"}, {"type": "network"}
            ]
        }
    })
}

/// Adds a read-write bind mount of the host file `source` at `destination` to an OCI `config`
/// (after its other mounts, so a destination under the `/dev` tmpfs lands in that tmpfs).
pub fn add_bind(config: &mut serde_json::Value, source: &Path, destination: &str) {
    let bind = json!({"destination": destination, "type": "bind", "source": source,
        "options": ["rbind", "rw", "nosuid", "nodev"]});
    if let Some(mounts) = config["mounts"].as_array_mut() {
        mounts.push(bind);
    }
}

impl Bundle {
    /// Writes a bundle whose process is `args`, over `rootfs` (resolved: runc
    /// refuses a symlinked rootfs). With a `harness`, the container is
    /// recorded in its state entry, for its guard to delete.
    pub fn create(
        runtime: OciRuntime,
        bin: PathBuf,
        rootfs: &Path,
        args: &[String],
        seq: u64,
        harness: Option<Arc<Harness>>,
    ) -> Result<Self, OciError> {
        Self::create_with(runtime, bin, rootfs, args, &[], seq, harness)
    }

    /// [`Bundle::create`] with `binds` (host file, container path) bind-mounted read-write.
    pub fn create_with(
        runtime: OciRuntime,
        bin: PathBuf,
        rootfs: &Path,
        args: &[String],
        binds: &[(&Path, &str)],
        seq: u64,
        harness: Option<Arc<Harness>>,
    ) -> Result<Self, OciError> {
        let rootfs = rootfs.canonicalize().map_err(|source| OciError::Rootfs {
            path: rootfs.to_path_buf(),
            source,
        })?;
        let tag = if runtime == OciRuntime::Runc {
            "runc"
        } else {
            "crun"
        };
        let dir = files_dir(harness.as_deref(), tag, seq)?;
        let id = format!("vclab-compare-{}-{tag}-{seq}", std::process::id());
        let mut config = oci_config(&rootfs, args, &format!("/{id}"));
        for (source, destination) in binds {
            add_bind(&mut config, source, destination);
        }
        let file = dir.join("config.json");
        write(&file, &config.to_string())?;
        if let Some(h) = &harness {
            h.register_oci(tag, &bin, &id)
                .map_err(|e| OciError::Write {
                    path: h.dir().to_path_buf(),
                    source: std::io::Error::other(e.to_string()),
                })?;
        }
        Ok(Bundle {
            dir,
            file,
            oci: Some((runtime, bin, id)),
            harness,
        })
    }

    /// The command that runs the bundle in the foreground.
    pub fn run_argv(&self) -> Vec<OsString> {
        let Some((_, bin, id)) = &self.oci else {
            return Vec::new();
        };
        vec![
            bin.clone().into(),
            "run".into(),
            "--bundle".into(),
            self.dir.clone().into(),
            id.into(),
        ]
    }

    /// The main file (config.json, or Firecracker's config).
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// The directory of the files (removed with the bundle).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        if let Some((runtime, bin, id)) = &self.oci {
            // `run` deletes the container when it exits; this only matters after a failure.
            let name = if *runtime == OciRuntime::Crun {
                "crun"
            } else {
                "runc"
            };
            guard::delete_oci(name, bin, id);
            for dir in guard::cgroup_dirs_named(id) {
                if dir.is_dir() {
                    let _ = std::fs::remove_dir(&dir);
                }
            }
            if let Some(h) = &self.harness {
                h.unregister_oci(id);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Firecracker `--config-file` booting `kernel` with `cmdline`.
pub fn firecracker_config(
    kernel: &Path,
    cmdline: &str,
    mem_mib: u64,
    seq: u64,
    harness: Option<&Harness>,
) -> Result<Bundle, OciError> {
    let dir = files_dir(harness, "firecracker", seq)?;
    let config = json!({
        "boot-source": {"kernel_image_path": kernel, "boot_args": cmdline},
        "drives": [],
        "machine-config": {"vcpu_count": 1, "mem_size_mib": mem_mib},
        "network-interfaces": []
    });
    let file = dir.join("vm.json");
    write(&file, &config.to_string())?;
    Ok(Bundle {
        dir,
        file,
        oci: None,
        harness: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_read_only_and_names_its_cgroup() {
        let c = oci_config(Path::new("/nonexistent"), &["/bin/true".into()], "/vclab-x");
        assert_eq!(c["root"]["readonly"], true);
        assert_eq!(c["linux"]["cgroupsPath"], "/vclab-x");
        assert_eq!(c["process"]["args"][0], "/bin/true");
        assert_eq!(c["mounts"].as_array().map(Vec::len), Some(0));
    }

    #[test]
    fn binds_come_after_the_dev_tmpfs_read_write() {
        let rootfs = tempfile::tempdir().unwrap();
        std::fs::create_dir(rootfs.path().join("dev")).unwrap();
        let mut c = oci_config(rootfs.path(), &["/bin/true".into()], "/vclab-x");
        add_bind(
            &mut c,
            Path::new("/var/tmp/vclab-io-1.img"),
            "/dev/vclab-io.img",
        );
        let mounts = c["mounts"].as_array().unwrap();
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[0]["destination"], "/dev");
        assert_eq!(mounts[1]["destination"], "/dev/vclab-io.img");
        assert_eq!(mounts[1]["source"], "/var/tmp/vclab-io-1.img");
        let options = mounts[1]["options"].as_array().unwrap();
        assert!(options.iter().any(|o| o == "rw") && !options.iter().any(|o| o == "ro"));
    }

    #[test]
    fn firecracker_config_is_removed_on_drop() {
        let b = firecracker_config(Path::new("/k"), "vclab.kernel=cpu", 128, 424242, None).unwrap();
        let dir = b.path().parent().unwrap().to_path_buf();
        let text = std::fs::read_to_string(b.path()).unwrap();
        assert!(text.contains("vclab.kernel=cpu"));
        drop(b);
        assert!(!dir.exists());
    }
}
