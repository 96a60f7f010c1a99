//! Helpers shared by the tier-2 tests.

#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The artifact cache: `$VCLAB_CACHE`, else `$XDG_CACHE_HOME/vclab`, else
/// `~/.cache/vclab` (the rule of DESIGN.md).
pub fn cache_dir() -> PathBuf {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(d) = var("VCLAB_CACHE") {
        return d.into();
    }
    if let Some(d) = var("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("vclab");
    }
    PathBuf::from(var("HOME").unwrap_or_else(|| "/root".into())).join(".cache/vclab")
}

/// The manifest's rootfs if it exists and holds busybox.
pub fn manifest_rootfs() -> Option<PathBuf> {
    let text = std::fs::read_to_string(cache_dir().join("manifest.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let p = PathBuf::from(v["artifacts"]["rootfs"]["path"].as_str()?);
    p.join("bin/busybox").exists().then_some(p)
}

/// A command's exit status and output, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "status {:?}, stdout {:?}, stderr {:?}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A rootfs at `dir`/rootfs holding Debian's busybox-static with every
/// applet and the usual mount points.
pub fn busybox_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox"))
        .expect("copy /bin/busybox (apt-get install busybox-static)");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
    }
    for d in ["proc", "sys", "dev", "tmp", "etc", "root"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    root
}

/// Fails unless the test runs as root.
pub fn need_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests need root (real namespaces, cgroups and mounts)"
    );
}

/// Asserts that no run whose id starts with `prefix` left anything behind: no
/// state under /run/vclab, no mount, no `vclab-<prefix>*` cgroup anywhere
/// under /sys/fs/cgroup (v1 controllers and the cgroup2 mount).
pub fn assert_nothing_left(prefix: &str) {
    let state: Vec<_> = std::fs::read_dir("/run/vclab")
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    assert!(state.is_empty(), "state left: {state:?}");
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains(prefix), "mounts left");
    let cg = Command::new("find")
        .args(["/sys/fs/cgroup", "-maxdepth", "6", "-type", "d", "-name"])
        .arg(format!("vclab-{prefix}*"))
        .output()
        .unwrap();
    assert!(
        cg.stdout.is_empty(),
        "cgroups left: {}",
        String::from_utf8_lossy(&cg.stdout)
    );
}
