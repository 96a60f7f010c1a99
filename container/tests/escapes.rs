//! Escapes that must fail (issue 15), against the real `vclab-container` on the lab rootfs (as
//! root): `/bin/vclab-workload probe --escapes` runs inside and reports each check as `blocked`
//! (with the errno) or `ALLOWED`. With the default profile every check must be blocked; with
//! `--seccomp unconfined` the checks only the profile stops (keyctl, unshare of a user namespace)
//! must change, so a profile that stops blocking them fails these tests; as an unprivileged user
//! the raw socket and the block device node fail for want of CAP_NET_RAW and CAP_MKNOD.
//!
//! The rootfs must hold a workload with the `probe` command: `scripts/guest-images.sh all`.

mod common;

use std::process::{Command, Stdio};

use common::{assert_nothing_left, manifest_rootfs, need_root, show};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_vclab-container");

/// Runs the probe in a container with `extra` launcher options before `--rootfs`, returns its line.
fn probe(tag: &str, extra: &[&str], probe_args: &[&str]) -> Value {
    need_root();
    let rootfs = manifest_rootfs()
        .expect("no lab rootfs in the artifact cache: run scripts/guest-images.sh all");
    let id = format!("esc-{}-{tag}", std::process::id());
    let target = std::process::id().to_string();
    let out = Command::new(BIN)
        .args(["--id", &id])
        .args(extra)
        .arg("--rootfs")
        .arg(&rootfs)
        .args([
            "--",
            "/bin/vclab-workload",
            "probe",
            "--target-pid",
            &target,
        ])
        .args(probe_args)
        .stdin(Stdio::null())
        .output()
        .expect("spawn vclab-container");
    assert_nothing_left(&id);
    assert!(
        out.status.success(),
        "the probe failed in the container (a rootfs without `probe`? run scripts/guest-images.sh all): {}",
        show(&out)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with("{\"probe\":"))
        .unwrap_or_else(|| panic!("no probe line: {}", show(&out)));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("bad probe line {line:?}: {e}"))
}

/// The result of escape check `name` (`blocked`, `ALLOWED`, `skipped`) and the whole entry.
fn check<'a>(line: &'a Value, name: &str) -> (&'a str, &'a Value) {
    let entry = line["escapes"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["check"] == name))
        .unwrap_or_else(|| panic!("no check {name} in {line}"));
    (entry["result"].as_str().unwrap_or(""), entry)
}

fn assert_blocked(line: &Value, name: &str) {
    let (result, entry) = check(line, name);
    assert_eq!(
        result, "blocked",
        "escape check {name} was not blocked: {entry}"
    );
}

/// The names of the blocked syscalls of the line.
fn blocked_syscalls(line: &Value) -> Vec<String> {
    line["syscalls"]["blocked"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|b| b["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn writes_to_proc_sys_sysrq_and_sys_fail() {
    let line = probe("fs", &[], &["--escapes", "--no-syscalls"]);
    for name in ["proc_sys_write", "sysrq_trigger_write", "sys_write"] {
        assert_blocked(&line, name);
    }
}

#[test]
fn mount_ptrace_module_keyctl_and_user_namespaces_fail() {
    let line = probe("calls", &[], &["--escapes", "--no-syscalls"]);
    for name in [
        "mount",
        "ptrace_outside",
        "kernel_module",
        "unshare_user",
        "keyctl",
    ] {
        assert_blocked(&line, name);
    }
    // The filter is installed: the kernel reports mode 2 (filter) for the container's process.
    assert_eq!(line["process"]["seccomp"], 2, "no seccomp filter: {line}");
}

#[test]
fn mknod_of_a_block_device_fails() {
    let line = probe("mknod", &[], &["--escapes", "--no-syscalls"]);
    assert_blocked(&line, "mknod_block");
}

#[test]
fn without_capabilities_raw_sockets_and_device_nodes_fail() {
    // A non-root user keeps no capability: no CAP_NET_RAW, no CAP_MKNOD.
    let line = probe(
        "user",
        &["--user", "1000:1000"],
        &["--escapes", "--no-syscalls"],
    );
    assert_eq!(line["process"]["cap_eff"], "0000000000000000", "{line}");
    for name in [
        "raw_socket",
        "mknod_block",
        "mount",
        "keyctl",
        "unshare_user",
    ] {
        assert_blocked(&line, name);
    }
    let (_, raw) = check(&line, "raw_socket");
    assert_eq!(raw["errno"], "EPERM", "{raw}");
}

/// Whether this kernel lets a process without CAP_SYS_ADMIN create a user namespace (Debian's
/// `kernel.unprivileged_userns_clone`, `user.max_user_namespaces`, Ubuntu's AppArmor switch).
fn kernel_allows_user_namespaces() -> bool {
    let read = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned());
    read("/proc/sys/kernel/unprivileged_userns_clone").is_none_or(|v| v != "0")
        && read("/proc/sys/user/max_user_namespaces").is_none_or(|v| v != "0")
        && read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").is_none_or(|v| v != "1")
}

#[test]
fn unconfined_lifts_what_only_the_profile_blocks() {
    let confined = probe("dflt", &[], &["--escapes"]);
    let unconfined = probe("unconf", &["--seccomp", "unconfined"], &["--escapes"]);
    assert_eq!(unconfined["process"]["seccomp"], 0, "{unconfined}");
    // keyctl is refused by the profile only.
    assert_blocked(&confined, "keyctl");
    let (keyctl, entry) = check(&unconfined, "keyctl");
    assert_eq!(keyctl, "ALLOWED", "keyctl unconfined: {entry}");
    // unshare(CLONE_NEWUSER) follows the profile: blocked by it, else what the kernel says.
    assert_blocked(&confined, "unshare_user");
    let (userns, entry) = check(&unconfined, "unshare_user");
    let want = if kernel_allows_user_namespaces() {
        "ALLOWED"
    } else {
        "blocked"
    };
    assert_eq!(userns, want, "unshare_user unconfined: {entry}");
    // The profile removes reach: fewer syscalls get into the kernel, keyctl's among them.
    let reach = |l: &Value| l["syscalls"]["reachable"].as_u64().unwrap_or(0);
    assert!(
        reach(&confined) < reach(&unconfined),
        "the profile should cut the reachable syscalls: {} with it, {} without",
        reach(&confined),
        reach(&unconfined)
    );
    let (with, without) = (blocked_syscalls(&confined), blocked_syscalls(&unconfined));
    for name in ["keyctl", "add_key", "request_key", "kexec_load", "bpf"] {
        assert!(
            with.iter().any(|b| b == name),
            "{name} reachable under the default profile"
        );
    }
    assert!(
        !without.iter().any(|b| b == "keyctl"),
        "keyctl blocked without a profile: {without:?}"
    );
}

#[test]
fn the_container_sees_no_other_tenants_cgroups() {
    let line = probe("host", &[], &["--no-syscalls"]);
    let host = &line["host"];
    assert_eq!(host["foreign_cgroups"], 0, "{host}");
    assert_eq!(host["own_cgroups"], serde_json::json!(["/"]), "{host}");
    // What it does share with the host, and a VM would not: the kernel.
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    assert_eq!(host["kernel"], release.trim(), "{host}");
    // The escape checks do not run unless asked.
    let (result, _) = check(&line, "mount");
    assert_eq!(result, "skipped");
}
