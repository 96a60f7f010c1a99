//! Tier 2/3: the launcher's seccomp filter, with the real `vclab-container`
//! binary on the lab rootfs (busybox) and a static probe built here that
//! makes raw system calls (needs root): Docker's default profile refuses
//! what Docker's refuses (EPERM; ENOSYS for clone3), `--seccomp unconfined`
//! lets the same calls reach the kernel, a profile file and a bundle's
//! `linux.seccomp` apply (the bundle without no_new_privs, so the filter goes
//! in before the identity changes), `--init` is filtered too, and bad
//! profiles are one-line errors with exit 1 that leave nothing behind.

mod common;
#[path = "fixtures/probe_build.rs"]
mod probe_build;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use common::{assert_nothing_left, busybox_rootfs, manifest_rootfs, need_root, show};

const BIN: &str = env!("CARGO_BIN_EXE_vclab-container");

/// The rootfs and the probe's directory, made once for every test here.
struct Lab {
    _tmp: tempfile::TempDir,
    rootfs: String,
    probe_dir: String,
}

fn lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(|| {
        need_root();
        let tmp = tempfile::tempdir().unwrap();
        let rootfs = manifest_rootfs().unwrap_or_else(|| busybox_rootfs(tmp.path()));
        let probe_dir = tmp.path().join("probe");
        std::fs::create_dir(&probe_dir).unwrap();
        probe_build::build_probe(&probe_dir);
        Lab {
            rootfs: rootfs.to_string_lossy().into_owned(),
            probe_dir: probe_dir.to_string_lossy().into_owned(),
            _tmp: tmp,
        }
    })
}

/// Runs `sh -c SCRIPT` in a container with the probe at /probe/probe.
fn run_sh(id: &str, options: &[&str], script: &str) -> Output {
    let l = lab();
    let volume = format!("{}:/probe:ro", l.probe_dir);
    Command::new(BIN)
        .args(["--id", id, "-v", &volume, "--rootfs", &l.rootfs])
        .args(options)
        .args(["--", "/bin/sh", "-c", script])
        .stdin(Stdio::null())
        .output()
        .expect("spawn vclab-container")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The probe's line for `name` (`name ok N` / `name err E`), or "".
fn probe_line<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or("")
}

/// The probe checks both policy tests run.
const CHECKS: &str = "\
/probe/probe sys keyctl 0 -3 0
/probe/probe sys unshare 0x10000000
/probe/probe sys clone3
/probe/probe sys mount
/probe/probe sys swapon
/probe/probe sys reboot
/probe/probe sys socket 40 1 0
/probe/probe sys personality 0xffffffff
/probe/probe sys getpid
grep Seccomp_filters /proc/self/status
unshare -U true 2>/dev/null; echo busybox-unshare $?
reboot -f 2>/dev/null; echo busybox-reboot $?
";

#[test]
fn default_profile_refuses_what_docker_refuses() {
    let id = format!("sc{}-default", std::process::id());
    let out = run_sh(&id, &[], CHECKS);
    assert!(out.status.success(), "{}", show(&out));
    let text = stdout(&out);
    for (name, want) in [
        ("keyctl", "keyctl err 1"),
        ("unshare", "unshare err 1"),
        ("clone3", "clone3 err 38"),
        ("mount", "mount err 1"),
        ("swapon", "swapon err 1"),
        ("reboot", "reboot err 1"),
        ("socket", "socket err 1"),
        ("personality", "personality ok"),
        ("getpid", "getpid ok"),
    ] {
        let line = probe_line(&text, name);
        assert!(
            line.starts_with(want),
            "{name}: want {want:?}, got {line:?}: {text}"
        );
    }
    // How many programs the profile compiles to depends on the capability set (the filter is
    // split by call number); at least one is installed.
    assert_ne!(filters(&text), 0, "{text}");
    assert!(
        !probe_line(&text, "busybox-unshare").ends_with(" 0"),
        "{text}"
    );
    assert!(
        !probe_line(&text, "busybox-reboot").ends_with(" 0"),
        "{text}"
    );
    assert_nothing_left(&id);
}

#[test]
fn unconfined_lets_the_calls_reach_the_kernel() {
    let id = format!("sc{}-unconfined", std::process::id());
    let out = run_sh(&id, &["--seccomp", "unconfined"], CHECKS);
    assert!(out.status.success(), "{}", show(&out));
    let text = stdout(&out);
    // The kernel's own answers: a user namespace needs no capability, clone3
    // without arguments is EINVAL, keyctl is not refused by a filter.
    for (name, want) in [
        ("unshare", "unshare ok 0"),
        ("clone3", "clone3 err 22"),
        ("Seccomp_filters:", "Seccomp_filters:\t0"),
        ("busybox-unshare", "busybox-unshare 0"),
    ] {
        let line = probe_line(&text, name);
        assert!(
            line.starts_with(want),
            "{name}: want {want:?}, got {line:?}: {text}"
        );
    }
    assert_ne!(probe_line(&text, "keyctl"), "keyctl err 1", "{text}");
    assert_nothing_left(&id);
}

#[test]
fn profile_file_and_init() {
    let tmp = tempfile::tempdir().unwrap();
    let profile = tmp.path().join("getpid.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}"#,
    )
    .unwrap();
    let id = format!("sc{}-file", std::process::id());
    let p = profile.to_str().unwrap();
    let out = run_sh(
        &id,
        &["--seccomp", p],
        "/probe/probe sys getpid; /probe/probe sys getppid; /probe/probe sys keyctl 0 -3 0",
    );
    assert!(out.status.success(), "{}", show(&out));
    let text = stdout(&out);
    assert_eq!(probe_line(&text, "getpid"), "getpid err 38", "{text}");
    assert!(
        probe_line(&text, "getppid").starts_with("getppid ok"),
        "{text}"
    );
    assert_ne!(probe_line(&text, "keyctl"), "keyctl err 1", "{text}");

    // With --init, the init (PID 1, never exec'd) is filtered as well.
    let id = format!("sc{}-init", std::process::id());
    let out = run_sh(
        &id,
        &["--init"],
        "grep Seccomp_filters /proc/1/status; /probe/probe sys keyctl 0 -3 0",
    );
    assert!(out.status.success(), "{}", show(&out));
    let text = stdout(&out);
    assert_ne!(filters(&text), 0, "{text}");
    assert_eq!(probe_line(&text, "keyctl"), "keyctl err 1", "{text}");
    assert_nothing_left(&format!("sc{}-file", std::process::id()));
    assert_nothing_left(&id);
}

/// A bundle running the probe: oci-spec's default spec (no_new_privs off),
/// with `seccomp` as its `linux.seccomp` when given.
fn bundle(dir: &std::path::Path, args: &[&str], seccomp: Option<serde_json::Value>) -> PathBuf {
    let l = lab();
    let mut v = serde_json::to_value(oci_spec::runtime::Spec::default()).unwrap();
    v["root"] = serde_json::json!({"path": l.rootfs, "readonly": true});
    v["process"]["args"] = serde_json::json!(args);
    v["process"]["terminal"] = serde_json::json!(false);
    v["process"]["noNewPrivileges"] = serde_json::json!(false);
    v["mounts"].as_array_mut().unwrap().push(serde_json::json!({
        "destination": "/probe", "type": "bind", "source": l.probe_dir, "options": ["rbind", "ro"]
    }));
    if let Some(s) = seccomp {
        v["linux"]["seccomp"] = s;
    }
    std::fs::write(dir.join("config.json"), v.to_string()).unwrap();
    dir.to_path_buf()
}

#[test]
fn bundle_linux_seccomp_applies() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = format!("sc{}-bundle", std::process::id());
    let seccomp = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
    });
    let b = bundle(
        tmp.path(),
        &["/probe/probe", "sys", "getpid"],
        Some(seccomp),
    );
    let run = |id: &str, b: &std::path::Path| {
        Command::new(BIN)
            .args(["--id", id, "--bundle"])
            .arg(b)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&format!("{prefix}1"), &b);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(stdout(&out).trim(), "getpid err 38", "{}", show(&out));

    // Without linux.seccomp the bundle runs unconfined (runc's rule).
    let tmp2 = tempfile::tempdir().unwrap();
    let b2 = bundle(
        tmp2.path(),
        &["/probe/probe", "sys", "unshare", "0x10000000"],
        None,
    );
    let out = run(&format!("{prefix}2"), &b2);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(stdout(&out).trim(), "unshare ok 0", "{}", show(&out));
    assert_nothing_left(&prefix);
}

#[test]
fn bad_profiles_are_one_line_errors_and_leave_nothing() {
    let l = lab();
    let tmp = tempfile::tempdir().unwrap();
    let prefix = format!("sc{}-bad", std::process::id());
    let cases = [
        (
            "unknown-call",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpidd"], "action": "SCMP_ACT_ERRNO"}]}"#,
            "getpidd",
        ),
        (
            "bad-json",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "#,
            "not valid JSON",
        ),
        (
            "unknown-action",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_EXPLODE"}]}"#,
            "SCMP_ACT_EXPLODE",
        ),
        (
            "notify",
            r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#,
            "SCMP_ACT_NOTIFY",
        ),
    ];
    let check = |out: &Output, needle: &str| {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code() == Some(1)
                && err.starts_with("vclab: ")
                && err.trim_end().lines().count() == 1
                && err.contains(needle)
                && out.stdout.is_empty(),
            "want exit 1 and one line naming {needle:?}: {}",
            show(out)
        );
    };
    for (i, (name, json, needle)) in cases.iter().enumerate() {
        let path = tmp.path().join(format!("{name}.json"));
        std::fs::write(&path, json).unwrap();
        let id = format!("{prefix}{i}");
        let out = Command::new(BIN)
            .args(["--id", &id, "--seccomp"])
            .arg(&path)
            .args(["--rootfs", &l.rootfs, "--", "/bin/true"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        check(&out, needle);
    }
    let missing = tmp.path().join("missing.json");
    let out = Command::new(BIN)
        .args(["--id", &format!("{prefix}m"), "--seccomp"])
        .arg(&missing)
        .args(["--rootfs", &l.rootfs, "--", "/bin/true"])
        .output()
        .unwrap();
    check(&out, "missing.json");
    // The same through a bundle, and through `create`.
    let b = bundle(
        tmp.path(),
        &["/bin/true"],
        Some(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["frobnicate"], "action": "SCMP_ACT_ERRNO"}]})),
    );
    for verb in ["run", "create"] {
        let out = Command::new(BIN)
            .args([verb, "--id", &format!("{prefix}{verb}"), "--bundle"])
            .arg(&b)
            .output()
            .unwrap();
        check(&out, "frobnicate");
    }
    assert_nothing_left(&prefix);
}

/// The `Seccomp_filters:` count of a /proc/PID/status line in `text` (0 when absent).
fn filters(text: &str) -> u32 {
    probe_line(text, "Seccomp_filters:")
        .trim_start_matches("Seccomp_filters:")
        .trim()
        .parse()
        .unwrap_or(0)
}
