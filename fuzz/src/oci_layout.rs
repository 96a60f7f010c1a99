//! The image crate's OCI layout reader and layer unpacker. The input is four parts split at
//! NUL bytes: index.json, the manifest, the config and one layer blob. The harness stores the
//! last three as blobs and replaces `@MANIFEST@`, `@MANIFEST_SIZE@`, `@CONFIG@`,
//! `@CONFIG_SIZE@`, `@LAYER@`, `@LAYER_SIZE@` in the JSON parts with their digests and sizes, so
//! the fuzzer reaches past digest checks. Then `Layout::open` + `read_image` (no tag, `latest`,
//! `v1`), and each layer read — and the raw layer bytes in any case — unpacked into a fresh
//! rootfs. It must never panic, and nothing may be created beside the rootfs and the layout.

use oci_spec::image::MediaType;
use std::fs;
use std::path::Path;
use vclab_image::layer::{unpack, unpack_file, UnpackOptions};
use vclab_image::layout::Layout;

const OPTS: UnpackOptions = UnpackOptions {
    chown: false,
    devices: false,
};

/// The `oci_layout` target's body.
pub fn oci_layout(data: &[u8]) {
    let mut parts = data.splitn(4, |b| *b == 0);
    let index = parts.next().unwrap_or_default();
    let manifest = parts.next().unwrap_or_default();
    let config = parts.next().unwrap_or_default();
    let layer = parts.next().unwrap_or_default();

    let base = if Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    };
    let tmp = tempfile::tempdir_in(base).expect("a temporary directory");
    let dir = tmp.path().join("layout");
    let layout = Layout::create(&dir).expect("a fresh layout");
    let config_desc = layout
        .put_blob(MediaType::ImageConfig, config)
        .expect("config blob");
    let layer_desc = layout
        .put_blob(MediaType::ImageLayerGzip, layer)
        .expect("layer blob");
    let manifest = fill(
        manifest,
        &[
            ("@CONFIG@", config_desc.digest().to_string()),
            ("@CONFIG_SIZE@", config_desc.size().to_string()),
            ("@LAYER@", layer_desc.digest().to_string()),
            ("@LAYER_SIZE@", layer_desc.size().to_string()),
        ],
    );
    let manifest_desc = layout
        .put_blob(MediaType::ImageManifest, &manifest)
        .expect("manifest blob");
    let index = fill(
        index,
        &[
            ("@MANIFEST@", manifest_desc.digest().to_string()),
            ("@MANIFEST_SIZE@", manifest_desc.size().to_string()),
        ],
    );
    fs::write(dir.join("index.json"), index).expect("index.json");

    if let Ok(layout) = Layout::open(&dir) {
        let _ = layout.tags();
        for tag in [None, Some("latest"), Some("v1")] {
            let Ok(image) = layout.read_image(tag) else {
                continue;
            };
            let rootfs = fresh_rootfs(tmp.path());
            for desc in image.layers() {
                if let Ok(path) = layout.blob_path(desc.digest().as_ref()) {
                    let _ = unpack_file(&path, &rootfs, &OPTS);
                }
            }
            check_contained(tmp.path());
        }
    }
    let rootfs = fresh_rootfs(tmp.path());
    let _ = unpack(layer, &rootfs, &OPTS);
    check_contained(tmp.path());
}

fn fill(text: &[u8], subs: &[(&str, String)]) -> Vec<u8> {
    let mut text = String::from_utf8_lossy(text).into_owned();
    // Longest first, so @CONFIG_SIZE@ is not cut by @CONFIG@.
    let mut subs: Vec<&(&str, String)> = subs.iter().collect();
    subs.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    for (key, value) in subs {
        text = text.replace(key, value);
    }
    text.into_bytes()
}

fn fresh_rootfs(tmp: &Path) -> std::path::PathBuf {
    let rootfs = tmp.join("rootfs");
    if rootfs.exists() {
        fs::remove_dir_all(&rootfs).expect("remove the old rootfs");
    }
    fs::create_dir(&rootfs).expect("a rootfs");
    rootfs
}

/// Only `layout` and `rootfs` sit in the temporary directory: no entry escaped the rootfs.
fn check_contained(tmp: &Path) {
    for entry in fs::read_dir(tmp).expect("list the temporary directory") {
        let name = entry.expect("an entry").file_name();
        assert!(
            name == "layout" || name == "rootfs",
            "an entry escaped the rootfs: {name:?}"
        );
    }
}
