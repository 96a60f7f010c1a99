//! Checks the guest artifacts that `scripts/guest-images.sh` leaves in the cache: the manifest
//! against the files on disk, the initramfs against the rootfs, a warm rebuild being a cache hit,
//! and the workload giving the same checksums on the host and inside the rootfs.
//!
//! The cache is found like the script finds it: `$VCLAB_CACHE`, else `$XDG_CACHE_HOME/vclab`,
//! else `~/.cache/vclab`. Build it first with `scripts/guest-images.sh all` (`scripts/test.sh`
//! does).

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use vclab_vmm::cache::{self, Artifact, Manifest};

/// Every artifact DESIGN.md names, except the unikernel (see [`expected_artifacts`]).
const ARTIFACTS: [&str; 7] = [
    "vmlinux",
    "bzimage",
    "distro-kernel",
    "rootfs",
    "initramfs",
    "rootdisk",
    "workload",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent directory")
        .to_path_buf()
}

fn cache_dir() -> PathBuf {
    cache::dir()
}

/// The names the manifest must hold: all of DESIGN.md's, the unikernel only once its build script
/// exists (guest-images.sh skips it with a warning before that).
fn expected_artifacts() -> Vec<&'static str> {
    let mut names = ARTIFACTS.to_vec();
    if repo_root().join("guest-images/unikernel/build.sh").exists() {
        names.push("unikernel");
    }
    names
}

fn manifest_path() -> PathBuf {
    cache::manifest_path(&cache_dir())
}

fn load_manifest() -> Manifest {
    Manifest::load(&cache_dir()).unwrap_or_else(|e| {
        panic!("{e} (for the guest images: scripts/guest-images.sh all, or run scripts/test.sh)")
    })
}

fn artifact<'m>(manifest: &'m Manifest, name: &str) -> &'m Artifact {
    manifest.artifacts.get(name).unwrap_or_else(|| {
        panic!(
            "{} has no '{name}' artifact (rebuild: scripts/guest-images.sh all)",
            manifest_path().display()
        )
    })
}

/// Runs a command, panicking with its stderr if it cannot start or fails.
fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// sha256 (hex) of `input`, computed by coreutils' sha256sum.
fn sha256sum_of(input: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("cannot run sha256sum (coreutils)");
    let mut stdin = child.stdin.take().expect("sha256sum has a stdin pipe");
    let data = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("sha256sum ran");
    writer
        .join()
        .expect("the writer thread ended")
        .expect("sha256sum read all input");
    assert!(out.status.success(), "sha256sum failed");
    hex_field(&out.stdout)
}

fn hex_field(line: &[u8]) -> String {
    String::from_utf8_lossy(line)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Regular files under `dir`, as sorted (bytewise) relative paths; symlinks and device nodes are
/// not followed or listed.
fn regular_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let entries =
            fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
            let path = entry.path();
            let meta = fs::symlink_metadata(&path)
                .unwrap_or_else(|e| panic!("cannot stat {}: {e}", path.display()));
            if meta.is_dir() {
                walk(root, &path, out);
            } else if meta.is_file() {
                let rel = path.strip_prefix(root).expect("walked below the root");
                out.push(rel.to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    out
}

/// (size, sha256) of an artifact, recomputed the way DESIGN.md defines them.
fn measure(path: &Path, kind: &str) -> (u64, String) {
    match kind {
        "file" => {
            let bytes =
                fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            (bytes.len() as u64, sha256sum_of(&bytes))
        }
        "dir" => {
            let files = regular_files(path);
            let mut size = 0;
            for f in &files {
                size += fs::metadata(path.join(f))
                    .expect("listed file exists")
                    .len();
            }
            // The sorted `sha256sum` listing ("<hex>  <relative path>" lines), then its sha256.
            let out = run_ok(
                Command::new("sha256sum")
                    .arg("--")
                    .args(files.iter().map(|f| f.as_os_str()))
                    .current_dir(path),
            );
            (size, sha256sum_of(&out.stdout))
        }
        other => panic!("unknown artifact kind '{other}' for {}", path.display()),
    }
}

#[test]
fn manifest_lists_every_artifact_and_matches_the_files() {
    let manifest = load_manifest();
    assert_eq!(manifest.version, 1, "manifest version");
    for name in expected_artifacts() {
        let a = artifact(&manifest, name);
        assert!(
            a.path.is_absolute(),
            "{name}: path {:?} is not absolute",
            a.path
        );
        assert!(
            a.path.exists(),
            "{name}: {} does not exist",
            a.path.display()
        );
        let want_kind = if name == "rootfs" { "dir" } else { "file" };
        assert_eq!(a.kind, want_kind, "{name}: kind");
        assert!(a.size > 0, "{name}: size 0");
        let (size, sha256) = measure(&a.path, &a.kind);
        assert_eq!(a.size, size, "{name}: size in the manifest vs on disk");
        assert_eq!(
            a.sha256, sha256,
            "{name}: sha256 in the manifest vs on disk"
        );
    }
    for name in manifest.artifacts.keys() {
        assert!(
            ARTIFACTS.contains(&name.as_str()) || name == "unikernel",
            "unexpected artifact '{name}' in the manifest"
        );
    }
}

#[test]
fn rootdisk_is_an_ext4_image_of_whole_sectors() {
    let manifest = load_manifest();
    let disk = fs::read(&artifact(&manifest, "rootdisk").path).expect("read the root disk");
    assert_eq!(disk.len() % 512, 0, "a virtio-blk disk is whole sectors");
    // The ext2/3/4 superblock starts at byte 1024; its magic 0xEF53 is at offset 56 in it.
    assert_eq!(
        disk.get(1024 + 56..1024 + 58),
        Some(&[0x53, 0xef][..]),
        "no ext4 superblock"
    );
    // The volume label (offset 120 in the superblock) is the one guest-images.sh gives.
    assert_eq!(disk.get(1024 + 120..1024 + 130), Some(&b"vclab-root"[..]));
}

#[test]
fn vmlinux_is_an_elf_and_bzimage_has_the_boot_signature() {
    let manifest = load_manifest();
    let vmlinux = fs::read(&artifact(&manifest, "vmlinux").path).expect("read vmlinux");
    assert_eq!(
        vmlinux.get(..4),
        Some(&b"\x7fELF"[..]),
        "vmlinux is not an ELF file"
    );
    for name in ["bzimage", "distro-kernel"] {
        let image = fs::read(&artifact(&manifest, name).path).expect("read the bzImage");
        // Linux boot protocol: "HdrS" at offset 0x202 of the setup header.
        assert_eq!(
            image.get(0x202..0x206),
            Some(&b"HdrS"[..]),
            "{name} has no x86 boot-protocol header"
        );
    }
}

/// Entry names in the rootfs tree (files, links, directories, device nodes), sorted.
fn tree_entries(root: &Path) -> Vec<String> {
    let out = run_ok(
        Command::new("find")
            .args([".", "-mindepth", "1", "-printf", "%P\\n"])
            .current_dir(root),
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

#[test]
fn initramfs_holds_the_rootfs_tree() {
    let manifest = load_manifest();
    let initramfs = &artifact(&manifest, "initramfs").path;
    let rootfs = &artifact(&manifest, "rootfs").path;
    let out = run_ok(
        Command::new("bash")
            .arg("-c")
            // A corrupt gzip or cpio fails the pipeline.
            .arg("set -eu -o pipefail; gzip -dc -- \"$1\" | cpio -t --quiet")
            .arg("bash")
            .arg(initramfs),
    );
    let mut listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    for want in ["init", "bin/busybox", "bin/vclab-workload", "dev/console"] {
        assert!(
            listed.iter().any(|l| l == want),
            "{} lacks {want}",
            initramfs.display()
        );
    }
    listed.sort();
    assert_eq!(
        listed,
        tree_entries(rootfs),
        "the initramfs and the rootfs tree hold different entries"
    );
}

#[test]
fn second_build_is_a_cache_hit() {
    let before = fs::read(manifest_path()).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e} (build the guest images first: scripts/guest-images.sh all)",
            manifest_path().display()
        )
    });
    let script = repo_root().join("scripts/guest-images.sh");
    let started = std::time::Instant::now();
    let out = run_ok(Command::new(&script).arg("all").stdin(Stdio::null()));
    let took = started.elapsed();
    let log = String::from_utf8_lossy(&out.stderr);
    eprintln!("{log}warm run took {took:?}");
    assert!(
        log.contains("nothing rebuilt: all artifacts were cache hits"),
        "the warm run does not say it was a cache hit:\n{log}"
    );
    assert!(
        !log.contains("building into"),
        "the warm run rebuilt something (were the inputs changed after the last \
         `scripts/guest-images.sh all`? scripts/test.sh runs it first):\n{log}"
    );
    let after = fs::read(manifest_path()).expect("the warm run left a manifest");
    assert_eq!(
        String::from_utf8_lossy(&before),
        String::from_utf8_lossy(&after),
        "the warm run changed the manifest"
    );
}

/// The `checksum` of one `vclab-workload run` JSON line.
fn checksum(out: &Output, what: &str) -> String {
    let line = String::from_utf8_lossy(&out.stdout);
    let line = line.lines().last().unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{what}: not a JSON line ({e}): {line:?}"));
    let sum = json["checksum"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no checksum in {line:?}"));
    assert_eq!(
        sum.len(),
        64,
        "{what}: checksum {sum:?} is not 64 hex digits"
    );
    sum.to_string()
}

#[test]
fn workload_checksums_match_on_the_host_and_in_the_rootfs() {
    let manifest = load_manifest();
    let host_bin = &artifact(&manifest, "workload").path;
    let rootfs = &artifact(&manifest, "rootfs").path;
    assert_eq!(
        fs::read(host_bin).expect("read the workload artifact"),
        fs::read(rootfs.join("bin/vclab-workload")).expect("read rootfs/bin/vclab-workload"),
        "the rootfs holds another vclab-workload than the workload artifact"
    );
    let mut seen = Vec::new();
    for (kernel, seed) in [
        ("cpu", "7"),
        ("mem-bw", "7"),
        ("mem-lat", "7"),
        ("cpu", "8"),
    ] {
        let args = [
            "run",
            kernel,
            "--size",
            "65536",
            "--iterations",
            "2",
            "--seed",
            seed,
        ];
        let host = run_ok(Command::new(host_bin).args(args));
        let guest = run_ok(
            Command::new("chroot")
                .arg(rootfs)
                .arg("/bin/vclab-workload")
                .args(args),
        );
        let what = format!("{kernel} seed {seed}");
        let host_sum = checksum(&host, &format!("host {what}"));
        let guest_sum = checksum(&guest, &format!("chroot {what}"));
        assert_eq!(
            host_sum, guest_sum,
            "{what}: host and chroot checksums differ"
        );
        seen.push(host_sum);
    }
    // Different inputs give different checksums, so equality above means something.
    assert_ne!(
        seen[0], seen[3],
        "cpu: seeds 7 and 8 gave the same checksum"
    );
}

#[test]
fn rootfs_init_is_a_busybox_script_with_its_interpreter() {
    let manifest = load_manifest();
    let rootfs = &artifact(&manifest, "rootfs").path;
    let init = fs::read(rootfs.join("init")).expect("read rootfs/init");
    assert!(
        init.starts_with(b"#!/bin/sh\n"),
        "rootfs/init is not a /bin/sh script"
    );
    let sh = fs::read_link(rootfs.join("bin/sh")).expect("rootfs/bin/sh is a link");
    assert_eq!(
        sh.as_os_str(),
        OsStr::new("busybox"),
        "bin/sh points elsewhere"
    );
    let passwd = fs::read_to_string(rootfs.join("etc/passwd")).expect("read rootfs/etc/passwd");
    assert!(passwd.starts_with("root:x:0:0:"), "etc/passwd has no root");
    assert!(
        passwd.contains("\nnobody:x:65534:"),
        "etc/passwd has no nobody"
    );
}

#[test]
fn init_without_vclab_parameters_runs_the_cpu_kernel() {
    let manifest = load_manifest();
    let rootfs = &artifact(&manifest, "rootfs").path;
    // A private mount namespace: the /proc and /sys that /init mounts vanish with it.
    let out = run_ok(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "chroot"])
            .arg(rootfs)
            .arg("/init")
            .stdin(Stdio::null()),
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let line = line.lines().last().unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("/init printed no JSON line ({e}): {line:?}"));
    assert_eq!(json["kernel"], "cpu", "/init without parameters: {line}");
    checksum(&out, "/init");
}
