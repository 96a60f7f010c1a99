//! Tier 2: the lab's unikernel on the real /dev/kvm computes, for every
//! workload kernel, the same checksum as `vclab-workload` on the host.
//! Artifacts come from the cache manifest (DESIGN.md); when an entry is
//! missing the test builds it (slow once).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use vclab_vmm::{cache, ExitReason};

fn from_manifest(name: &str) -> Option<PathBuf> {
    cache::artifact(&cache::dir(), name)
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn unikernel() -> PathBuf {
    if let Some(p) = from_manifest("unikernel") {
        return p;
    }
    let out = std::env::temp_dir().join("vclab-vmm-test-unikernel.elf");
    let status = Command::new(workspace().join("guest-images/unikernel/build.sh"))
        .arg(&out)
        .env(
            "CARGO_TARGET_DIR",
            std::env::temp_dir().join("vclab-vmm-test-unikernel-target"),
        )
        .status()
        .expect("run guest-images/unikernel/build.sh");
    assert!(status.success(), "unikernel build failed");
    out
}

fn host_workload() -> PathBuf {
    if let Some(p) = from_manifest("workload") {
        return p;
    }
    let target = std::env::temp_dir().join("vclab-vmm-test-workload-target");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "-p", "vclab-workload"])
        .current_dir(workspace())
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("run cargo build -p vclab-workload");
    assert!(status.success(), "workload build failed");
    target.join("release/vclab-workload")
}

fn checksum(json_line: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json_line).expect("a JSON line");
    v["checksum"].as_str().expect("a checksum").to_string()
}

#[test]
fn unikernel_checksums_match_the_host() {
    let kernel = unikernel();
    let host = host_workload();
    for (name, size, iterations) in [
        ("cpu", 65536, 4),
        ("mem-bw", 1 << 20, 2),
        ("mem-lat", 1 << 20, 2),
    ] {
        let out = Command::new(&host)
            .args(["run", name, "--size", &size.to_string()])
            .args(["--iterations", &iterations.to_string(), "--seed", "7"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let host_line = String::from_utf8(out.stdout).unwrap();
        let host_sum = checksum(host_line.trim());

        let (mut cfg, _, _) = common::config(&kernel);
        cfg.mem_mib = 64;
        cfg.cmdline = format!(
            "vclab.kernel={name} vclab.size={size} vclab.iterations={iterations} vclab.seed=7"
        );
        let r = vclab_vmm::run(&cfg).unwrap();
        assert_eq!(r.exit_reason, ExitReason::GuestExit, "{name}: {r:?}");
        assert_eq!(r.guest_exit_code, Some(0), "{name}: {r:?}");
        assert!(r.guest_ready_ns.is_some());
        let line = r.guest_lines.last().expect("a result line");
        assert_eq!(checksum(line), host_sum, "{name}");
    }
}

/// `--lab-device off`: the unikernel finds no lab device (0x3f0 reads all-ones), so it prints
/// its ready and result lines on the serial console, as under Firecracker or Cloud Hypervisor,
/// and ends through the i8042 reset: exit reason `reset`, exit code 0.
#[test]
fn hidden_lab_device_sends_the_unikernel_to_the_uart() {
    let kernel = unikernel();
    let dir = tempfile::tempdir().unwrap();
    let console = dir.path().join("console.txt");
    let args = [
        "--kernel".into(),
        kernel.into_os_string(),
        "--cmdline".into(),
        "vclab.kernel=cpu vclab.size=4096 vclab.iterations=1".into(),
        "--mem".into(),
        "64".into(),
        "--timeout".into(),
        "20".into(),
        "--console".into(),
        console.clone().into_os_string(),
        "--lab-device".into(),
        "off".into(),
    ];
    let cfg = match vclab_vmm::cli::parse(args, std::time::Instant::now()).unwrap() {
        vclab_vmm::cli::Request::Run(cfg, _) => cfg,
        other => panic!("expected a run, got {other:?}"),
    };
    assert!(!cfg.lab_device);
    let r = vclab_vmm::run(&cfg).unwrap();
    assert_eq!(r.exit_reason, ExitReason::Reset, "{r:?}");
    assert_eq!(vclab_vmm::cli::outcome(&r).0, 0, "{r:?}");
    assert_eq!(r.guest_exit_code, None, "{r:?}");
    assert_eq!(
        r.guest_ready_ns, None,
        "the ready write must not reach a device: {r:?}"
    );
    assert!(r.guest_lines.is_empty(), "{r:?}");
    // The 0x3f0 ready write and probe, QEMU's 0x501 and Cloud Hypervisor's 0x600 are unclaimed
    // (the guest skips 0x3f1 when it found no device).
    assert_eq!(r.unclaimed_accesses, 4, "{r:?}");
    let text = std::fs::read_to_string(&console).unwrap();
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert_eq!(lines.first(), Some(&r#"{"ready":true}"#), "{text}");
    let result = lines
        .iter()
        .find(|l| l.starts_with(r#"{"kernel":"cpu""#))
        .unwrap_or_else(|| panic!("no result line on the console: {text}"));
    assert!(!checksum(result).is_empty());
}
