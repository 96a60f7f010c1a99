//! The vclab micro-VM monitor: a small KVM VMM built on the rust-vmm crates
//! (kvm-ioctls, vm-memory, linux-loader, vm-superio). It boots the lab's
//! unikernel guest and Linux kernels (ELF vmlinux or bzImage) and reports the
//! phase timestamps and host-side costs of each boot.
#![deny(missing_docs)]

pub mod host;
