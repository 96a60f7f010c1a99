//! The formats end to end: a layer written from a temp tree, put in a
//! layout, read back, unpacked into another directory and compared; a
//! corrupted blob detected; and the real peers: `skopeo inspect` reads the
//! layout and `umoci unpack` unpacks it (each check fails when the tool is
//! installed and refuses; skipped with a printed reason only when absent).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use oci_spec::image::{ConfigBuilder, MediaType};
use vclab_image::layer::{self, Owner, UnpackOptions, WriteOptions};
use vclab_image::layout::{history_entry, Layout, LayoutError, NewImage};

fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("etc/app")).unwrap();
    fs::create_dir_all(root.join("var/empty")).unwrap();
    fs::write(
        root.join("bin/app"),
        b"#!/bin/sh\necho hello from the image\n",
    )
    .unwrap();
    fs::set_permissions(root.join("bin/app"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::hard_link(root.join("bin/app"), root.join("bin/app2")).unwrap();
    fs::write(root.join("etc/app/conf"), b"key=value\n").unwrap();
    fs::set_permissions(root.join("etc/app/conf"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(
        root.join("etc/big"),
        (0..200_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    symlink("../bin/app", root.join("etc/app-link")).unwrap();
    symlink("/bin/app", root.join("abs-link")).unwrap();
    let long = "n".repeat(80);
    fs::create_dir_all(root.join(&long)).unwrap();
    fs::write(root.join(&long).join("m".repeat(80)), b"long name").unwrap();
}

/// Every path under `root` with its kind, permission bits and content or
/// link target (what a rootfs consumer sees).
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        let meta = fs::symlink_metadata(&path).unwrap();
        let mode = meta.mode() & 0o7777;
        let value = if meta.file_type().is_symlink() {
            format!("link -> {}", fs::read_link(&path).unwrap().display())
        } else if meta.is_dir() {
            walk(root, &path, out);
            format!("dir {mode:o}")
        } else {
            let data = fs::read(&path).unwrap();
            format!(
                "file {mode:o} {} {}",
                data.len(),
                vclab_image::layer::hash::sha256(&data)
            )
        };
        out.insert(rel, value);
    }
}

struct Built {
    _tmp: tempfile::TempDir,
    tree: PathBuf,
    layout_dir: PathBuf,
    manifest_digest: String,
}

fn build_image() -> Built {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    fs::create_dir(&tree).unwrap();
    make_tree(&tree);
    let layout_dir = tmp.path().join("layout");
    let layout = Layout::create(&layout_dir).unwrap();
    let mut blob = layout.blob_writer().unwrap();
    let opts = WriteOptions {
        mtime: 0,
        owner: Owner::Root,
        whiteouts: false,
    };
    let info = layer::write(&tree, &mut blob, &opts).unwrap();
    let desc = blob.finish(MediaType::ImageLayerGzip).unwrap();
    assert_eq!(desc.digest().to_string(), info.digest);
    assert_eq!(desc.size(), info.size);
    let config = ConfigBuilder::default()
        .entrypoint(vec!["/bin/app".to_string()])
        .env(vec!["PATH=/bin".to_string()])
        .working_dir("/".to_string())
        .build()
        .unwrap();
    let written = layout
        .write_image(&NewImage {
            tag: "v1".into(),
            created: 0,
            config: Some(config),
            layers: vec![(desc, info.diff_id)],
            history: vec![history_entry("COPY tree /", false, 0).unwrap()],
        })
        .unwrap();
    Built {
        _tmp: tmp,
        tree,
        layout_dir,
        manifest_digest: written.manifest.digest().to_string(),
    }
}

#[test]
fn layer_in_layout_round_trips_to_the_same_tree() {
    let built = build_image();
    let layout = Layout::open(&built.layout_dir).unwrap();
    let image = layout.read_image(Some("v1")).unwrap();
    assert_eq!(image.descriptor.digest().to_string(), built.manifest_digest);
    let rootfs = built.layout_dir.parent().unwrap().join("rootfs");
    fs::create_dir(&rootfs).unwrap();
    for (desc, diff_id) in image.layers().iter().zip(image.config.rootfs().diff_ids()) {
        let path = layout.blob_path(desc.digest().as_ref()).unwrap();
        let stats = layer::unpack_file(&path, &rootfs, &UnpackOptions::default()).unwrap();
        assert_eq!(&stats.diff_id, diff_id, "the config's diff_id is the tar's");
    }
    assert_eq!(snapshot(&built.tree), snapshot(&rootfs));
    assert_eq!(
        fs::metadata(rootfs.join("bin/app")).unwrap().ino(),
        fs::metadata(rootfs.join("bin/app2")).unwrap().ino(),
        "the hard link stays a hard link"
    );
}

#[test]
fn two_builds_in_different_directories_have_one_digest() {
    let one = build_image();
    let two = build_image();
    assert_ne!(one.layout_dir, two.layout_dir);
    assert_eq!(one.manifest_digest, two.manifest_digest);
}

#[test]
fn a_corrupted_layer_blob_is_detected() {
    let built = build_image();
    let layout = Layout::open(&built.layout_dir).unwrap();
    let image = layout.read_image(Some("v1")).unwrap();
    let digest = image.layers()[0].digest().to_string();
    let path = layout.blob_path(&digest).unwrap();
    let mut data = fs::read(&path).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    fs::write(&path, data).unwrap();
    match layout.read_image(Some("v1")) {
        Err(LayoutError::DigestMismatch { blob, .. }) => assert_eq!(blob, digest),
        other => panic!("expected a digest mismatch for {digest}, got {other:?}"),
    }
}

fn tool(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

#[test]
fn skopeo_inspect_reads_the_layout() {
    let Some(skopeo) = tool("skopeo") else {
        eprintln!("skipped: skopeo is not installed (apt-get install -y skopeo)");
        return;
    };
    let built = build_image();
    let reference = format!("oci:{}:v1", built.layout_dir.display());
    let out = Command::new(&skopeo)
        .args(["inspect", &reference])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo inspect {reference} refused the layout: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["Digest"], built.manifest_digest.as_str(), "{json}");
    assert_eq!(json["Architecture"], "amd64");
    assert_eq!(json["Os"], "linux");
    assert_eq!(json["Layers"].as_array().map(Vec::len), Some(1));
    let raw = Command::new(&skopeo)
        .args(["inspect", "--config", &reference])
        .output()
        .unwrap();
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    let config: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/bin/app"])
    );
}

#[test]
fn umoci_unpacks_the_layout() {
    let Some(umoci) = tool("umoci") else {
        eprintln!("skipped: umoci is not installed (apt-get install -y umoci)");
        return;
    };
    let built = build_image();
    let bundle = built.layout_dir.parent().unwrap().join("bundle");
    let mut cmd = Command::new(&umoci);
    cmd.arg("unpack");
    if !nix_is_root() {
        cmd.arg("--rootless");
    }
    let out = cmd
        .arg("--image")
        .arg(format!("{}:v1", built.layout_dir.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "umoci unpack refused the layout: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(bundle.join("config.json").is_file());
    assert_eq!(snapshot(&built.tree), snapshot(&bundle.join("rootfs")));
}

fn nix_is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Unmounts on drop, so a failing assertion leaves no mount behind.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Real overlayfs whiteouts (a deleted file, a directory removed and made
/// again, which the kernel marks opaque) → our layer → the same tree as the
/// overlay showed, unpacked by us and by umoci. Needs root for the mount.
#[test]
fn overlay_deletions_survive_as_oci_whiteouts() {
    if !nix_is_root() {
        eprintln!("skipped: mounting an overlay needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let [lower, upper, work, merged] =
        ["lower", "upper", "work", "merged"].map(|n| tmp.path().join(n));
    for d in [&lower, &upper, &work, &merged] {
        fs::create_dir(d).unwrap();
    }
    fs::create_dir_all(lower.join("d/sub")).unwrap();
    fs::write(lower.join("d/old"), b"old").unwrap();
    fs::write(lower.join("d/sub/x"), b"x").unwrap();
    fs::write(lower.join("gone"), b"gone").unwrap();
    fs::write(lower.join("keep"), b"keep").unwrap();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    let status = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &options])
        .arg(&merged)
        .status()
        .unwrap();
    assert!(status.success(), "mount -t overlay failed");
    let expected = {
        let _mounted = Mounted(merged.clone());
        fs::remove_file(merged.join("gone")).unwrap();
        fs::remove_dir_all(merged.join("d")).unwrap();
        fs::create_dir(merged.join("d")).unwrap();
        fs::write(merged.join("d/new"), b"new").unwrap();
        snapshot(&merged)
    };

    let layout_dir = tmp.path().join("layout");
    let layout = Layout::create(&layout_dir).unwrap();
    let mut layers = Vec::new();
    for (dir, whiteouts) in [(&lower, false), (&upper, true)] {
        let mut blob = layout.blob_writer().unwrap();
        let opts = WriteOptions {
            whiteouts,
            ..WriteOptions::default()
        };
        let info = layer::write(dir, &mut blob, &opts).unwrap();
        layers.push((
            blob.finish(MediaType::ImageLayerGzip).unwrap(),
            info.diff_id,
        ));
    }
    layout
        .write_image(&NewImage {
            tag: "v1".into(),
            created: 0,
            config: None,
            layers,
            history: vec![],
        })
        .unwrap();

    let ours = tmp.path().join("ours");
    fs::create_dir(&ours).unwrap();
    let image = layout.read_image(Some("v1")).unwrap();
    let mut whiteouts = 0;
    for desc in image.layers() {
        let path = layout.blob_path(desc.digest().as_ref()).unwrap();
        whiteouts += layer::unpack_file(&path, &ours, &UnpackOptions::default())
            .unwrap()
            .whiteouts;
    }
    assert_eq!(whiteouts, 2, "one file whiteout, one opaque directory");
    assert_eq!(snapshot(&ours), expected);

    let Some(umoci) = tool("umoci") else {
        eprintln!("skipped the umoci half: umoci is not installed");
        return;
    };
    let bundle = tmp.path().join("bundle");
    let out = Command::new(umoci)
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:v1", layout_dir.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "umoci unpack refused the whiteouts: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(snapshot(&bundle.join("rootfs")), expected);
}
