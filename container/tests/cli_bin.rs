//! Tier 3: the lean `vclab-container` binary as a user runs it (needs root):
//! a real run of `/bin/true` in the cache rootfs (or a busybox rootfs built
//! here when the cache has none), exit codes, the JSON report, bad input as
//! one `vclab: ...` line, then a leak check, in one test so it runs last.

mod common;

use common::{busybox_rootfs, manifest_rootfs, need_root, show};

use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_vclab-container");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("spawn vclab-container")
}

/// One `vclab: ...` line on stderr naming `needle`, nothing on stdout.
fn assert_one_line_error(out: &Output, code: i32, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(code)
            && err.starts_with("vclab: ")
            && err.trim_end().lines().count() == 1
            && err.contains(needle)
            && out.stdout.is_empty(),
        "want exit {code} and one line naming {needle:?}: {}",
        show(out)
    );
}

#[test]
fn lean_binary_runs_and_rejects_bad_input() {
    need_root();
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = manifest_rootfs().unwrap_or_else(|| busybox_rootfs(tmp.path()));
    let rootfs = rootfs.to_str().unwrap();
    let prefix = format!("bin{}-", std::process::id());
    let id = |name: &str| format!("{prefix}{name}");

    // A real run: /bin/true, exit 0, the JSON report as the only stdout line.
    let out = run(&[
        "--json",
        "--id",
        &id("true"),
        "--rootfs",
        rootfs,
        "--",
        "/bin/true",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r: serde_json::Value = serde_json::from_str(stdout.trim_end())
        .unwrap_or_else(|e| panic!("not one JSON line ({e}): {}", show(&out)));
    assert_eq!(r["id"], id("true").as_str());
    assert_eq!(r["exit_code"], 0);
    assert!(r["launcher_peak_rss_kib"].as_u64().unwrap_or(0) > 0, "{r}");
    assert!(
        r["cgroup_attach_ns"].is_u64()
            && ["clone-into", "migrated", "none"]
                .contains(&r["cgroup_placement"].as_str().unwrap_or("")),
        "cgroup placement reported: {r}"
    );

    // The container's status is the launcher's.
    let out = run(&[
        "--rootfs",
        rootfs,
        "--id",
        &id("exit7"),
        "--",
        "/bin/sh",
        "-c",
        "exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", show(&out));

    // Help and version go to stdout with status 0.
    let out = run(&["--help"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: vclab-container"));
    let out = run(&["--version"]);
    assert!(out.status.success() && out.stdout.starts_with(b"vclab-container "));

    // Bad input: one line, exit 1 for usage, 125/127 as Docker.
    assert_one_line_error(
        &run(&["--rootfs", rootfs, "--memory", "12q", "--", "true"]),
        1,
        "12q",
    );
    assert_one_line_error(
        &run(&["--rootfs", rootfs, "--frobnicate", "--", "true"]),
        1,
        "--frobnicate",
    );
    assert_one_line_error(&run(&["--rootfs", rootfs]), 1, "-- CMD");
    assert_one_line_error(&run(&["--bundle", rootfs, "--", "true"]), 1, "config.json");
    assert_one_line_error(
        &run(&["--rootfs", "/nonexistent/rootfs", "--", "true"]),
        125,
        "/nonexistent/rootfs",
    );
    assert_one_line_error(
        &run(&[
            "--rootfs",
            rootfs,
            "--id",
            &id("nocmd"),
            "--",
            "no-such-xyz",
        ]),
        127,
        "no-such-xyz",
    );

    common::assert_nothing_left(&prefix);
}
