//! Helpers shared by the tier-2 tests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A rootfs under `dir` holding Debian's busybox-static with every applet.
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
    root
}

/// Fails unless the test runs as root.
pub fn need_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests need root (real namespaces, cgroups and mounts)"
    );
}
