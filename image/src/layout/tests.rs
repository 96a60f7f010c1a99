use std::collections::HashMap;
use std::fs;

use oci_spec::image::{ConfigBuilder, MediaType};

use super::*;

fn runtime_config() -> oci_spec::image::Config {
    ConfigBuilder::default()
        .entrypoint(vec!["/bin/app".to_string()])
        .cmd(vec!["--help".to_string()])
        .env(vec!["PATH=/bin".to_string(), "A=1".to_string()])
        .working_dir("/work".to_string())
        .user("1000".to_string())
        .labels(
            (0..20)
                .map(|i| (format!("label{i}"), i.to_string()))
                .collect::<HashMap<_, _>>(),
        )
        .exposed_ports(
            (0..10)
                .map(|i| format!("{}/tcp", 8000 + i))
                .collect::<Vec<_>>(),
        )
        .build()
        .unwrap()
}

fn image_in(dir: &std::path::Path, tag: &str, layer: &[u8]) -> (Layout, WrittenImage) {
    let layout = Layout::create(dir).unwrap();
    let desc = layout.put_blob(MediaType::ImageLayerGzip, layer).unwrap();
    let diff_id = crate::layer::hash::sha256(b"uncompressed");
    let image = NewImage {
        tag: tag.to_string(),
        created: 0,
        config: Some(runtime_config()),
        layers: vec![(desc, diff_id)],
        history: vec![
            history_entry("COPY a /", false, 0).unwrap(),
            history_entry("ENV A=1", true, 0).unwrap(),
        ],
    };
    let written = layout.write_image(&image).unwrap();
    (layout, written)
}

#[test]
fn create_makes_a_layout_that_open_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lay");
    Layout::create(&root).unwrap();
    let marker = fs::read_to_string(root.join("oci-layout")).unwrap();
    assert_eq!(marker, r#"{"imageLayoutVersion":"1.0.0"}"#);
    assert!(root.join("blobs/sha256").is_dir());
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(root.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["manifests"], serde_json::json!([]));
    Layout::open(&root).unwrap();
    // Creating again keeps what is there.
    Layout::create(&root).unwrap();
}

#[test]
fn open_refuses_what_is_not_a_layout() {
    let dir = tempfile::tempdir().unwrap();
    let e = Layout::open(dir.path()).unwrap_err();
    assert!(matches!(e, LayoutError::NotALayout { .. }), "{e}");
    fs::write(
        dir.path().join("oci-layout"),
        r#"{"imageLayoutVersion":"2.0.0"}"#,
    )
    .unwrap();
    let e = Layout::open(dir.path()).unwrap_err();
    assert!(e.to_string().contains("2.0.0"), "{e}");
}

#[test]
fn blobs_round_trip_and_are_named_by_digest() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path()).unwrap();
    let desc = layout.put_blob(MediaType::ImageConfig, b"hello").unwrap();
    let digest = crate::layer::hash::sha256(b"hello");
    assert_eq!(desc.digest().to_string(), digest);
    assert_eq!(desc.size(), 5);
    assert_eq!(layout.read_blob(&desc).unwrap(), b"hello");
    let path = layout.blob_path(&digest).unwrap();
    assert!(path.ends_with(&digest["sha256:".len()..]));
    // No temporary file left behind.
    let names: Vec<_> = fs::read_dir(dir.path().join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn dropped_blob_writer_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path()).unwrap();
    {
        use std::io::Write;
        let mut w = layout.blob_writer().unwrap();
        w.write_all(b"partial").unwrap();
    }
    assert_eq!(
        fs::read_dir(dir.path().join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn corrupt_missing_and_bad_blobs_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path()).unwrap();
    let desc = layout
        .put_blob(MediaType::ImageLayerGzip, b"layer bytes")
        .unwrap();
    let path = layout.blob_path(desc.digest().as_ref()).unwrap();
    fs::write(&path, b"layer bytez").unwrap();
    for result in [
        layout.read_blob(&desc).map(|_| ()),
        layout.verify_blob(&desc),
    ] {
        let e = result.unwrap_err();
        assert!(
            matches!(&e, LayoutError::DigestMismatch { blob, .. } if *blob == desc.digest().to_string()),
            "{e}"
        );
        assert!(e.to_string().contains(&desc.digest().to_string()));
    }
    fs::remove_file(&path).unwrap();
    assert!(matches!(
        layout.verify_blob(&desc).unwrap_err(),
        LayoutError::MissingBlob { .. }
    ));
    assert!(matches!(
        layout.blob_path("sha256:../../etc").unwrap_err(),
        LayoutError::BadDigest { .. }
    ));
    assert!(layout.blob_path("md5:00").is_err());
}

#[test]
fn same_inputs_give_the_same_manifest_digest() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (_, one) = image_in(a.path(), "v1", b"layer");
    let (_, two) = image_in(b.path(), "v1", b"layer");
    assert_eq!(one, two);
    assert_eq!(
        fs::read(a.path().join("index.json")).unwrap(),
        fs::read(b.path().join("index.json")).unwrap()
    );
    let c = tempfile::tempdir().unwrap();
    let (_, other) = image_in(c.path(), "v1", b"other layer");
    assert_ne!(one.manifest.digest(), other.manifest.digest());
}

#[test]
fn written_image_reads_back_with_media_types_and_created() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, written) = image_in(dir.path(), "v1", b"layer");
    let image = layout.read_image(Some("v1")).unwrap();
    assert_eq!(image.tag, "v1");
    assert_eq!(image.descriptor.digest(), written.manifest.digest());
    assert_eq!(image.manifest.media_type(), &Some(MediaType::ImageManifest));
    assert_eq!(
        image.manifest.config().media_type(),
        &MediaType::ImageConfig
    );
    assert_eq!(image.layers()[0].media_type(), &MediaType::ImageLayerGzip);
    assert_eq!(
        image.config.created().as_deref(),
        Some("1970-01-01T00:00:00Z")
    );
    assert_eq!(image.config.rootfs().diff_ids().len(), 1);
    assert_eq!(image.config.history().as_ref().map(Vec::len), Some(2));
    let c = image.config.config().as_ref().unwrap();
    assert_eq!(
        c.entrypoint().as_deref(),
        Some(&["/bin/app".to_string()][..])
    );
    assert_eq!(c.labels().as_ref().map(HashMap::len), Some(20));
    // Only one image: no tag needed.
    assert_eq!(layout.read_image(None).unwrap().tag, "v1");
}

#[test]
fn tags_latest_replace_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, first) = image_in(dir.path(), "v1", b"one");
    image_in(dir.path(), "v2", b"two");
    assert_eq!(layout.tags().unwrap(), vec!["v1", "v2"]);
    let e = layout.read_image(None).unwrap_err();
    assert!(matches!(e, LayoutError::AmbiguousTag { .. }), "{e}");
    let e = layout.read_image(Some("v3")).unwrap_err();
    assert!(e.to_string().contains("v1, v2"), "{e}");
    image_in(dir.path(), "latest", b"three");
    assert_eq!(layout.read_image(None).unwrap().tag, "latest");
    // Replacing v1 keeps one v1 entry, and gc drops its old blobs.
    let (_, again) = image_in(dir.path(), "v1", b"four");
    assert_ne!(again.manifest.digest(), first.manifest.digest());
    assert_eq!(layout.tags().unwrap(), vec!["latest", "v1", "v2"]);
    // The config is shared (same diff_id in every test image): the old
    // manifest and layer go.
    assert_eq!(layout.gc().unwrap(), 2, "old manifest and layer");
    for tag in ["latest", "v1", "v2"] {
        layout.read_image(Some(tag)).unwrap();
    }
    for bad in ["", "-x", "a b", "a/b", &"x".repeat(129)] {
        assert!(
            matches!(check_tag_of(&layout, bad), LayoutError::BadTag { .. }),
            "{bad:?}"
        );
    }
}

fn check_tag_of(layout: &Layout, tag: &str) -> LayoutError {
    layout
        .write_image(&NewImage {
            tag: tag.to_string(),
            created: 0,
            config: None,
            layers: vec![],
            history: vec![],
        })
        .unwrap_err()
}

#[test]
fn read_image_checks_the_layers() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, _) = image_in(dir.path(), "v1", b"layer");
    let image = layout.read_image(Some("v1")).unwrap();
    let path = layout
        .blob_path(image.layers()[0].digest().as_ref())
        .unwrap();
    fs::write(path, b"tampered").unwrap();
    let e = layout.read_image(Some("v1")).unwrap_err();
    assert!(matches!(e, LayoutError::DigestMismatch { .. }), "{e}");
}

#[test]
fn history_must_match_the_layers() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path()).unwrap();
    let desc = layout.put_blob(MediaType::ImageLayerGzip, b"l").unwrap();
    let e = layout
        .write_image(&NewImage {
            tag: "t".into(),
            created: 0,
            config: None,
            layers: vec![(desc, crate::layer::hash::sha256(b"l"))],
            history: vec![history_entry("ENV A=1", true, 0).unwrap()],
        })
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("0 history entries with a layer for 1 layers"),
        "{e}"
    );
}
