//! The vclab container launcher: a daemonless runtime that starts a process
//! in new namespaces (PID, mount, UTS, IPC, network, cgroup) on an overlay of
//! the shared rootfs, with cgroup v1, v2 or hybrid resource limits and
//! accounting, and OCI bundle support.
#![deny(missing_docs)]

pub mod cgroups;
