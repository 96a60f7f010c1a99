//! The vclab micro-VM monitor: a small KVM VMM built on the rust-vmm crates
//! (kvm-ioctls, vm-memory, linux-loader, vm-superio). It boots the lab's
//! unikernel guest and Linux kernels (ELF vmlinux or bzImage) and reports the
//! phase timestamps and host-side costs of each boot.
//!
//! Entry point: [`run`] with a [`VmConfig`]: a VM is built (`boot.rs` for a boot,
//! `vm/restore.rs` from a snapshot), run (`runner.rs`) and reported (`report.rs`).
//! The command line (`vclab-vmm`, `vclab vm run`) is in [`cli`].
#![deny(missing_docs)]

pub mod attach;
pub mod boot;
pub mod bus;
pub mod cache;
pub mod cli;
pub mod cmdline;
pub mod config;
pub mod console_file;
pub mod cpuid;
pub mod devices;
pub mod exit;
pub mod host;
pub mod jail;
pub mod kvm;
pub mod layout;
pub mod loader;
pub mod memory;
pub mod mptable;
pub mod procstat;
pub mod regs;
pub mod report;
pub mod runner;
pub mod seccomp;
pub mod signals;
pub mod snapshot;
pub mod vcpu;
pub mod virtio;
pub mod vm;

pub use boot::{run, Error};
pub use config::{Output, ProcFiles, StopAt, VmConfig, VmReport, DEFAULT_MEM_MIB};
pub use exit::EndReason;
/// The report's exit reasons and kernel formats (defined in `vclab-contract`).
pub use vclab_contract::{ExitReason, KernelFormat};
