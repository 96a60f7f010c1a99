use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use super::hash::sha256;
use super::*;

fn opts(mtime: u64) -> WriteOptions {
    WriteOptions {
        mtime,
        owner: Owner::Root,
        whiteouts: true,
    }
}

fn sample_tree(root: &Path) {
    fs::create_dir_all(root.join("etc/conf.d")).unwrap();
    fs::create_dir_all(root.join("a-b")).unwrap();
    fs::write(root.join("etc/hosts"), b"127.0.0.1 localhost\n").unwrap();
    fs::write(root.join("etc/conf.d/x"), vec![7u8; 1300]).unwrap();
    fs::write(root.join("a-b/f"), b"").unwrap();
    let tool = root.join("tool");
    fs::write(&tool, b"#!/bin/sh\n").unwrap();
    fs::set_permissions(&tool, fs::Permissions::from_mode(0o4755)).unwrap();
    fs::hard_link(&tool, root.join("tool-link")).unwrap();
    symlink("etc/hosts", root.join("hosts")).unwrap();
    let long = "d".repeat(60);
    fs::create_dir_all(root.join(&long).join(&long)).unwrap();
    fs::write(root.join(&long).join(&long).join("file"), b"deep").unwrap();
    symlink("/".to_string() + &"t".repeat(150), root.join("longlink")).unwrap();
}

fn write_vec(dir: &Path, o: &WriteOptions) -> (Vec<u8>, LayerInfo) {
    let mut out = Vec::new();
    let info = write(dir, &mut out, o).unwrap();
    (out, info)
}

fn gunzip(blob: &[u8]) -> Vec<u8> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(blob)
        .read_to_end(&mut tar)
        .unwrap();
    tar
}

#[test]
fn same_tree_in_two_places_gives_the_same_digests() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    sample_tree(a.path());
    sample_tree(b.path());
    // Different on-disk mtimes must not matter.
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::write(b.path().join("etc/hosts"), b"127.0.0.1 localhost\n").unwrap();
    let (blob_a, info_a) = write_vec(a.path(), &opts(0));
    let (blob_b, info_b) = write_vec(b.path(), &opts(0));
    assert_eq!(info_a, info_b);
    assert_eq!(blob_a, blob_b);
    let (_, later) = write_vec(a.path(), &opts(1_700_000_000));
    assert_ne!(later.diff_id, info_a.diff_id, "mtime must be in the tar");
}

#[test]
fn digests_sizes_and_gzip_header() {
    let dir = tempfile::tempdir().unwrap();
    sample_tree(dir.path());
    let (blob, info) = write_vec(dir.path(), &opts(0));
    assert_eq!(info.digest, sha256(&blob));
    assert_eq!(info.size, blob.len() as u64);
    let tar = gunzip(&blob);
    assert_eq!(info.diff_id, sha256(&tar));
    assert_eq!(info.uncompressed_size, tar.len() as u64);
    assert_eq!(&blob[..3], &[0x1f, 0x8b, 8]);
    assert_eq!(blob[3], 0, "no FNAME/FCOMMENT/FEXTRA flags");
    assert_eq!(&blob[4..8], &[0, 0, 0, 0], "gzip mtime 0");
}

#[test]
fn entries_sorted_owned_by_root_with_fixed_mtime_and_kept_modes() {
    let dir = tempfile::tempdir().unwrap();
    sample_tree(dir.path());
    let (blob, info) = write_vec(dir.path(), &opts(1234));
    let tar = gunzip(&blob);
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut paths = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let h = entry.header();
        let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
        assert_eq!(h.uid().unwrap(), 0, "{path}");
        assert_eq!(h.gid().unwrap(), 0, "{path}");
        assert_eq!(h.mtime().unwrap(), 1234, "{path}");
        let kind = h.entry_type();
        if kind == tar::EntryType::Directory {
            assert!(path.ends_with('/'), "{path}");
        }
        match path.as_str() {
            "tool" => assert_eq!(h.mode().unwrap(), 0o4755),
            "tool-link" => {
                assert_eq!(kind, tar::EntryType::Link);
                assert_eq!(&*entry.link_name_bytes().unwrap(), b"tool");
            }
            "hosts" => {
                assert_eq!(kind, tar::EntryType::Symlink);
                assert_eq!(&*entry.link_name_bytes().unwrap(), b"etc/hosts");
            }
            "longlink" => assert_eq!(entry.link_name_bytes().unwrap().len(), 151),
            _ => {}
        }
        paths.push(path.trim_end_matches('/').to_string());
    }
    assert_eq!(paths.len(), info.entries);
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    assert!(
        paths.iter().any(|p| p.len() > 100),
        "a long name: {paths:?}"
    );
    assert!(paths.contains(&"etc/conf.d/x".to_string()));
}

#[test]
fn owner_keep_and_fixed() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("f"), b"x").unwrap();
    let o = WriteOptions {
        owner: Owner::Fixed { uid: 5, gid: 6 },
        ..opts(0)
    };
    let (blob, _) = write_vec(dir.path(), &o);
    let tar = gunzip(&blob);
    let mut archive = tar::Archive::new(tar.as_slice());
    let entry = archive.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(
        (entry.header().uid().unwrap(), entry.header().gid().unwrap()),
        (5, 6)
    );
}

#[test]
fn reserved_whiteout_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(".wh.evil"), b"").unwrap();
    let err = write(dir.path(), Vec::new(), &opts(0)).unwrap_err();
    assert!(matches!(err, WriteError::ReservedName { .. }), "{err}");
    assert!(err.to_string().contains(".wh.evil"));
}

/// Overlay whiteouts (char device 0:0, opaque xattr) become OCI ones.
/// Needs root (mknod, trusted.* xattrs); says so and returns otherwise.
#[test]
fn overlay_whiteouts_become_oci_whiteouts() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: mknod of a whiteout needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("gone");
    nix::sys::stat::mknod(
        &gone,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        0,
    )
    .unwrap();
    let opaque = dir.path().join("opaque");
    fs::create_dir(&opaque).unwrap();
    fs::write(opaque.join("new"), b"n").unwrap();
    xattr::set(&opaque, "trusted.overlay.opaque", b"y").unwrap();
    let (blob, _) = write_vec(dir.path(), &opts(0));
    let tar = gunzip(&blob);
    let mut archive = tar::Archive::new(tar.as_slice());
    let names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| String::from_utf8(e.unwrap().path_bytes().into_owned()).unwrap())
        .collect();
    assert_eq!(
        names,
        vec![".wh.gone", "opaque/", "opaque/.wh..wh..opq", "opaque/new"]
    );
    // Without whiteout conversion the device stays a device.
    let o = WriteOptions {
        whiteouts: false,
        ..opts(0)
    };
    let (blob, _) = write_vec(dir.path(), &o);
    let tar = gunzip(&blob);
    let mut archive = tar::Archive::new(tar.as_slice());
    let first = archive.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(first.header().entry_type(), tar::EntryType::Char);
}

/// A tar written by hand, so that bad names can be made.
fn raw_tar(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, link, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

fn no_root() -> UnpackOptions {
    UnpackOptions {
        chown: false,
        devices: false,
    }
}

#[test]
fn round_trip_through_unpack() {
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path());
    let (blob, info) = write_vec(src.path(), &opts(0));
    let dst = tempfile::tempdir().unwrap();
    let stats = unpack(blob.as_slice(), dst.path(), &no_root()).unwrap();
    assert!(stats.entries > 5);
    assert_eq!(stats.diff_id, info.diff_id);
    let long = "d".repeat(60);
    assert_eq!(
        fs::read(dst.path().join(&long).join(&long).join("file")).unwrap(),
        b"deep"
    );
    assert_eq!(
        fs::read_link(dst.path().join("hosts")).unwrap(),
        Path::new("etc/hosts")
    );
    let meta = fs::metadata(dst.path().join("tool")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o4755);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.nlink(), 2, "tool and tool-link are one inode");
    assert_eq!(
        fs::read(dst.path().join("etc/conf.d/x")).unwrap().len(),
        1300
    );
}

#[test]
fn whiteouts_remove_lower_files_but_not_this_layers() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("d/sub")).unwrap();
    fs::write(root.path().join("d/old"), b"o").unwrap();
    fs::write(root.path().join("d/sub/x"), b"x").unwrap();
    fs::write(root.path().join("gone"), b"g").unwrap();
    fs::create_dir(root.path().join("gonedir")).unwrap();
    fs::write(root.path().join("gonedir/f"), b"f").unwrap();
    let layer = raw_tar(&[
        (".wh.gone", tar::EntryType::Regular, "", b""),
        (".wh.gonedir", tar::EntryType::Regular, "", b""),
        ("d/", tar::EntryType::Directory, "", b""),
        ("d/-new", tar::EntryType::Regular, "", b"n"),
        ("d/.wh..wh..opq", tar::EntryType::Regular, "", b""),
    ]);
    let stats = unpack(layer.as_slice(), root.path(), &no_root()).unwrap();
    assert_eq!(stats.whiteouts, 3);
    assert!(!root.path().join("gone").exists());
    assert!(!root.path().join("gonedir").exists());
    assert!(!root.path().join("d/old").exists());
    assert!(!root.path().join("d/sub").exists());
    assert_eq!(fs::read(root.path().join("d/-new")).unwrap(), b"n");
}

fn unpack_err(entries: &[(&str, tar::EntryType, &str, &[u8])], root: &Path) -> UnpackError {
    let layer = raw_tar(entries);
    unpack(layer.as_slice(), root, &no_root()).unwrap_err()
}

#[test]
fn entries_outside_the_rootfs_are_refused_by_name() {
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join("root");
    fs::create_dir(&root).unwrap();
    let e = unpack_err(&[("../escape", tar::EntryType::Regular, "", b"x")], &root);
    assert!(matches!(e, UnpackError::Outside { .. }), "{e}");
    assert!(e.to_string().contains("../escape"));
    let e = unpack_err(&[("/abs", tar::EntryType::Regular, "", b"x")], &root);
    assert!(e.to_string().contains("absolute"), "{e}");
    // A symlink made by the layer itself, then an entry through it.
    let e = unpack_err(
        &[
            ("link", tar::EntryType::Symlink, "..", b""),
            ("link/escape", tar::EntryType::Regular, "", b"x"),
        ],
        &root,
    );
    assert!(
        matches!(&e, UnpackError::ThroughSymlink { entry, link } if entry == "link/escape" && link == "link"),
        "{e}"
    );
    let e = unpack_err(
        &[("h", tar::EntryType::Link, "../../etc/passwd", b"")],
        &root,
    );
    assert!(matches!(e, UnpackError::Outside { .. }), "{e}");
    let e = unpack_err(&[(".wh..", tar::EntryType::Regular, "", b"")], &root);
    assert!(matches!(e, UnpackError::BadWhiteout { .. }), "{e}");
    assert_eq!(
        fs::read_dir(parent.path()).unwrap().count(),
        1,
        "nothing escaped"
    );
    assert!(!parent.path().join("escape").exists());
}

#[test]
fn devices_are_skipped_and_counted_without_root() {
    let root = tempfile::tempdir().unwrap();
    let layer = raw_tar(&[
        ("null", tar::EntryType::Char, "", b""),
        ("f", tar::EntryType::Regular, "", b"x"),
    ]);
    let stats = unpack(layer.as_slice(), root.path(), &no_root()).unwrap();
    assert_eq!(stats.skipped_devices, 1);
    assert_eq!(stats.entries, 1);
    assert!(!root.path().join("null").exists());
}

#[test]
fn plain_tar_and_corrupt_gzip() {
    let root = tempfile::tempdir().unwrap();
    let layer = raw_tar(&[("f", tar::EntryType::Regular, "", b"plain")]);
    let stats = unpack(layer.as_slice(), root.path(), &no_root()).unwrap();
    assert_eq!(fs::read(root.path().join("f")).unwrap(), b"plain");
    assert_eq!(stats.diff_id, sha256(&layer));
    let bad = [0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8];
    let e = unpack(&bad[..], root.path(), &no_root()).unwrap_err();
    assert!(matches!(e, UnpackError::Read { .. }), "{e}");
}
