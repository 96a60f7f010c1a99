//! The scripts build the binary with `cargo rustc --release -p vclab-workload --bin vclab-workload
//! -- -C target-feature=+crt-static`: check that this gives a static executable that runs in an
//! empty chroot holding nothing but itself.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `PT_INTERP` in an ELF program header: present only in dynamically linked executables.
const PT_INTERP: u32 = 3;

#[test]
fn static_release_build_runs_in_an_empty_chroot() {
    let target_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("static-build");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let build = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .args([
            "rustc",
            "--release",
            "-p",
            "vclab-workload",
            "--bin",
            "vclab-workload",
        ])
        .args(["--", "-C", "target-feature=+crt-static"])
        .output()
        .expect("spawn cargo");
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let bin = target_dir.join("release/vclab-workload");
    // The check below does see a dynamic executable: the ordinary test build is one.
    let dynamic = std::fs::read(env!("CARGO_BIN_EXE_vclab-workload")).unwrap();
    assert!(has_interpreter(&dynamic), "PT_INTERP check is broken");
    let elf = std::fs::read(&bin).unwrap();
    assert!(
        !has_interpreter(&elf),
        "{} is dynamically linked",
        bin.display()
    );

    let root = tempfile::Builder::new()
        .prefix("vclab-chroot")
        .tempdir()
        .unwrap();
    std::fs::copy(&bin, root.path().join("vclab-workload")).unwrap();
    let out = Command::new("chroot")
        .arg(root.path())
        .args([
            "/vclab-workload",
            "run",
            "cpu",
            "--size",
            "8192",
            "--iterations",
            "2",
        ])
        .output()
        .expect("spawn chroot");
    assert!(out.status.success(), "{out:?}");
    let line = String::from_utf8(out.stdout).unwrap();
    let params = vclab_workload::Params {
        kernel: vclab_workload::Kernel::Cpu,
        size: 8192,
        iterations: 2,
        seed: 1,
    };
    let mut scratch = vec![0u8; params.scratch_len().unwrap()];
    let expected = vclab_workload::run(&params, &mut scratch).unwrap().checksum;
    assert!(
        line.contains(&format!("\"checksum\":\"{expected}\"")),
        "{line}"
    );
    assert_only_binary(root.path());
}

/// Whether a 64-bit little-endian ELF image has a `PT_INTERP` program header.
fn has_interpreter(elf: &[u8]) -> bool {
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(elf[4], 2, "64-bit ELF");
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let at = phoff + i * phentsize;
        u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) == PT_INTERP
    })
}

/// The chroot really was empty apart from the binary.
fn assert_only_binary(root: &Path) {
    let names: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["vclab-workload"]);
}
