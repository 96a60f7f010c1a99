//! `vclab compare --quick` end to end, as a user runs it, on this host's real
//! runtimes. Every row of the registry must be present for every kernel.
//! A row the registry says can run here must produce figures: a `failed`
//! case fails this test (a broken container or VM row does not pass CI).
//! Only rows the registry says cannot run here may be skipped, with their
//! reason. Every measured checksum must equal bare's, the io kernel's too
//! (bare, the containers through a bind mount, the unikernel on vclab-vmm's
//! and QEMU's virtio-blk), and its disk image is gone afterwards.

use std::process::Command;

use serde_json::Value;
use vclab_bench::runtime::RuntimeId;
use vclab_vmm::cache::{self, Manifest};

const KERNELS: &[&str] = &["cpu", "mem-bw", "mem-lat", "io"];

/// The artifact names the cache manifest lists (same lookup as vclab's).
fn cached_artifacts() -> Vec<String> {
    Manifest::load(&cache::dir())
        .map(|m| m.artifacts.into_keys().collect())
        .unwrap_or_default()
}

fn installed(program: &str) -> bool {
    ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin", "/sbin"]
        .iter()
        .any(|d| std::path::Path::new(d).join(program).exists())
}

#[test]
fn quick_compare_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    // The io image goes here (disk-backed, like the default /var/tmp), to check it is removed.
    let io_dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vclab"))
        .args(["compare", "--quick", "--out"])
        .arg(dir.path())
        .arg("--io-dir")
        .arg(io_dir.path())
        .output()
        .expect("run vclab compare");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "vclab compare failed:\n{stderr}"
    );
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap())
            .unwrap();
    let cases = results["cases"].as_array().expect("cases");
    let runs = results["config"]["runs"].as_u64().unwrap() as usize;
    for kernel in KERNELS {
        let mut bare_sum = None;
        for row in RuntimeId::ALL.iter().map(|r| r.name()) {
            let case = cases
                .iter()
                .find(|c| c["runtime"] == *row && c["kernel"] == *kernel)
                .unwrap_or_else(|| panic!("row {row} {kernel} is missing"));
            let status = case["status"].as_str().unwrap();
            if row == "bare" {
                assert_eq!(status, "measured", "bare {kernel}: {}", case["reason"]);
            }
            match status {
                "measured" => {
                    let samples = case["samples"].as_array().unwrap();
                    assert_eq!(samples.len(), runs, "{row} {kernel}");
                    assert!(
                        case["summary"]["start_latency_ms"]["median"]
                            .as_f64()
                            .unwrap()
                            > 0.0
                    );
                    for s in samples {
                        let sum = s["checksum"].as_str().expect("checksum").to_string();
                        let want = bare_sum.get_or_insert_with(|| sum.clone());
                        assert_eq!(&sum, want, "{row} {kernel} checksum differs from bare");
                        assert!(s["peak_rss_kib"].as_u64().unwrap() > 0, "{row} {kernel}");
                        if *kernel == "io" {
                            let io = &s["io"];
                            assert!(io["rand_reads"].as_u64().unwrap() > 0, "{row} io: {io}");
                            assert!(io["seq_ns"].as_u64().unwrap() > 0, "{row} io: {io}");
                        }
                        if row == "container" {
                            // The launcher's report says how it placed the container in
                            // its cgroup; the move happens before the exec, so within the start.
                            let placement = s["cgroup_placement"].as_str().unwrap_or("");
                            assert!(
                                ["clone-into", "migrated", "none"].contains(&placement),
                                "{row} {kernel}: cgroup_placement {placement:?}"
                            );
                            let attach = s["cgroup_attach_ms"].as_f64().expect("cgroup_attach_ms");
                            let start = s["start_latency_ms"].as_f64().unwrap();
                            assert!(
                                (0.0..start).contains(&attach),
                                "{row} {kernel}: cgroup attach {attach} ms, start {start} ms"
                            );
                        }
                    }
                }
                "skipped" => {
                    let reason = case["reason"].as_str().unwrap_or("");
                    assert!(!reason.is_empty(), "{row} {kernel} has no reason");
                }
                "failed" => panic!(
                    "{row} {kernel} can run here but failed: {} ({})",
                    case["reason"], case["failure"]["kind"]
                ),
                other => panic!("{row} {kernel}: unknown status {other}"),
            }
        }
    }
    // A row whose prerequisites this host has must have been tried (measured,
    // or failed with a reason), never skipped.
    let have = cached_artifacts();
    let kvm = std::path::Path::new("/dev/kvm").exists();
    let expect_tried = [
        ("container", have.contains(&"rootfs".to_string())),
        (
            "runc",
            installed("runc") && have.contains(&"rootfs".to_string()),
        ),
        (
            "crun",
            installed("crun") && have.contains(&"rootfs".to_string()),
        ),
        (
            "microvm-unikernel",
            kvm && have.contains(&"unikernel".to_string()),
        ),
        (
            "microvm-unikernel-uart",
            kvm && have.contains(&"unikernel".to_string()),
        ),
        (
            "qemu-microvm",
            kvm && installed("qemu-system-x86_64") && have.contains(&"unikernel".to_string()),
        ),
    ];
    for (row, tried) in expect_tried {
        let case = cases
            .iter()
            .find(|c| c["runtime"] == row && c["kernel"] == "cpu")
            .unwrap();
        if tried {
            assert_eq!(case["status"], "measured", "{row}: {}", case["reason"]);
        }
    }
    // Linux rows also have their boot line (skipped in --quick, with the reason).
    for row in ["microvm-linux", "vm-distro"] {
        if let Some(c) = cases
            .iter()
            .find(|c| c["runtime"] == row && c["kernel"] == "boot")
        {
            assert!(
                c["status"] == "measured" || c["reason"].as_str().is_some_and(|r| !r.is_empty())
            );
        }
    }
    // The io image is gone, and the io rows that can run here ran.
    let left: Vec<_> = std::fs::read_dir(io_dir.path()).unwrap().collect();
    assert!(left.is_empty(), "the io image was left behind: {left:?}");
    for (row, tried) in expect_tried {
        let case = cases
            .iter()
            .find(|c| c["runtime"] == row && c["kernel"] == "io")
            .unwrap();
        if tried {
            assert_eq!(case["status"], "measured", "{row} io: {}", case["reason"]);
        }
    }
    let md = std::fs::read_to_string(dir.path().join("results.md")).unwrap();
    assert!(
        md.contains("## The io kernel"),
        "results.md has no io table"
    );
    for f in [
        "results.csv",
        "results.md",
        "report.html",
        "start_latency.svg",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    // The terminal table names every row.
    for row in RuntimeId::ALL {
        assert!(stderr.contains(row.name()), "terminal table lacks {row}");
    }
}

/// `--precision` keeps adding interleaved rounds until the ratios' CIs are
/// narrow enough (never fewer than 5 pairs) and says which rows got there;
/// `--pin` is recorded.
#[test]
fn precision_adds_rounds_and_says_which_rows_reached_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vclab"))
        .args([
            "compare",
            "--quick",
            "--only",
            "bare,container",
            "--runs",
            "2",
            "--precision",
            "40%",
            "--max-time",
            "60",
            "--pin",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .expect("run vclab compare");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results["config"]["precision"].as_f64(), Some(0.4));
    assert_eq!(results["config"]["pinned"], true);
    for c in results["cases"].as_array().unwrap() {
        if c["runtime"] == "container" {
            let n = c["samples"].as_array().unwrap().len();
            assert!(n >= 5, "{} {}: {n} samples", c["runtime"], c["kernel"]);
        }
    }
    assert!(stderr.contains("precision 40.0 %"), "{stderr}");
    let md = std::fs::read_to_string(dir.path().join("results.md")).unwrap();
    assert!(md.contains("--precision ±40.0 %"), "{md}");
}

#[test]
fn bad_precision_is_refused_with_one_line() {
    for bad in ["0%", "150%", "abc"] {
        let out = Command::new(env!("CARGO_BIN_EXE_vclab"))
            .args(["compare", "--precision", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("percentage"), "{bad}: {err}");
    }
}
