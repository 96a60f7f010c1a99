//! Input decoders and target bodies for vclab's fuzz targets (fuzz/README.md). Each
//! `fuzz_targets/<name>.rs` calls [`targets`]`::<name>`, so the regression inputs under
//! `regressions/<name>/` replay through the same code in `cargo +nightly test`.

pub mod argv;
pub mod containerfile;
pub mod exits;
pub mod model;
pub mod oci_layout;
pub mod seeds;
pub mod targets;
pub mod virtio_blk;
