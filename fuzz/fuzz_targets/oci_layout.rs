//! The image crate's OCI layout reader and layer unpacker. The input is four parts split at
//! NUL bytes: index.json, the manifest, the config and one layer blob. The harness stores the
//! last three as blobs and replaces `@MANIFEST@`, `@MANIFEST_SIZE@`, `@CONFIG@`,
//! `@CONFIG_SIZE@`, `@LAYER@`, `@LAYER_SIZE@` in the JSON parts with their digests and sizes, so
//! the fuzzer reaches past digest checks. Then `Layout::open` + `read_image` (no tag, `latest`,
//! `v1`), and each layer read — and the raw layer bytes in any case — unpacked into a fresh
//! rootfs. It must never panic, and nothing may be created beside the rootfs and the layout.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vclab_fuzz::oci_layout::oci_layout(data));
