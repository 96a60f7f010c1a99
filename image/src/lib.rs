//! vclab images: the formats a daemonless `vclab image build` reads and
//! writes.
//!
//! - [`containerfile`]: a Containerfile/Dockerfile parsed into typed
//!   instructions with their line numbers, and Docker's word expansion.
//! - [`layer`]: a deterministic gzip'd tar of a directory tree (overlay
//!   whiteouts become OCI whiteouts) and its unpacking into a rootfs.
//! - [`layout`]: an OCI image layout on disk (blobs, config, manifest,
//!   index), with every blob's digest verified on read.
#![deny(missing_docs)]

pub mod build;
pub mod containerfile;
pub mod layer;
pub mod layout;
pub mod rootfs;
pub mod store;
