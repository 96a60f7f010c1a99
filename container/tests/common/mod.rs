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

/// The directories whose name starts with `prefix`, at most `depth` levels
/// below `dir` (1: its entries). Symbolic links are not followed.
pub fn dirs_named(dir: &Path, prefix: &str, depth: u32) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if depth == 0 {
        return found;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let p = e.path();
        found.extend(dirs_named(&p, prefix, depth - 1));
        if e.file_name().to_string_lossy().starts_with(prefix) {
            found.push(p);
        }
    }
    found
}

/// What runs whose id starts with `prefix` left behind, one entry a thing:
/// state under /run/vclab, launcher markers under /run/vclab-launchers, mounts, `vclab-<prefix>*` cgroups anywhere under
/// /sys/fs/cgroup (v1 controllers and the cgroup2 mount).
pub fn leftovers(prefix: &str) -> Vec<String> {
    let mut left: Vec<String> = std::fs::read_dir("/run/vclab")
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .map(|e| e.path().display().to_string())
                .collect()
        })
        .unwrap_or_default();
    // Launcher markers (vclab_container::state::marks_dir).
    left.extend(
        std::fs::read_dir("/run/vclab-launchers")
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                    .map(|e| e.path().display().to_string())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default(),
    );
    let cgroups = dirs_named(Path::new("/sys/fs/cgroup"), &format!("vclab-{prefix}"), 7);
    left.extend(cgroups.iter().map(|p| p.display().to_string()));
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    left.extend(
        mounts
            .lines()
            .filter(|l| l.contains(prefix))
            .map(|l| format!("mount {l}")),
    );
    left
}

/// Asserts that no run whose id starts with `prefix` left anything behind
/// ([`leftovers`]).
pub fn assert_nothing_left(prefix: &str) {
    let left = leftovers(prefix);
    assert!(left.is_empty(), "left behind: {left:?}");
}
