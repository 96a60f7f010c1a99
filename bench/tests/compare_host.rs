//! `vclab host` as a user runs it: the JSON agrees with what this host shows.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn vclab(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_vclab"))
        .args(args)
        .output()
        .expect("run vclab");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn host_json_matches_this_machine() {
    let text = vclab(&["host", "--json"]);
    let h: Value = serde_json::from_str(text.trim()).expect("one JSON object");
    assert_eq!(h["kvm_present"], Path::new("/dev/kvm").exists());
    if Path::new("/sys/module/kvm_pvm").exists() && Path::new("/dev/kvm").exists() {
        assert_eq!(h["kvm_kind"], "pvm");
        assert!(h["kvm_explanation"]
            .as_str()
            .unwrap()
            .contains("system calls"));
    }
    let mode = h["cgroup_mode"].as_str().unwrap();
    assert!(["v1", "v2", "hybrid", "none"].contains(&mode), "{mode}");
    let peers = h["peers"].as_array().unwrap();
    let names: Vec<&str> = peers.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "qemu-system-x86_64",
            "runc",
            "crun",
            "firecracker",
            "cloud-hypervisor",
            "hyperfine"
        ]
    );
    for p in peers {
        let name = p["name"].as_str().unwrap();
        let on_path = ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin", "/sbin"]
            .iter()
            .any(|d| Path::new(d).join(name).exists());
        assert_eq!(p["path"].is_string(), on_path, "{name}");
        if on_path {
            assert!(p["version"].is_string(), "{name} has no version");
        }
    }
    assert!(h["cores"].as_u64().unwrap() >= 1);
}

#[test]
fn host_text_names_every_part() {
    let text = vclab(&["host"]);
    for word in [
        "kvm",
        "cgroups",
        "peers",
        "qemu-system-x86_64",
        "crun",
        "hyperfine",
    ] {
        assert!(text.contains(word), "no '{word}' in:\n{text}");
    }
}

#[test]
fn a_firecracker_path_that_does_not_exist_is_not_installed() {
    let text = vclab(&[
        "host",
        "--json",
        "--firecracker",
        "/nonexistent/firecracker",
    ]);
    let h: Value = serde_json::from_str(text.trim()).unwrap();
    let fc = h["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "firecracker")
        .unwrap();
    assert!(fc["path"].is_null());
}

/// Two results directories in a temp dir: `pvm-host` (the golden fixture, this
/// lab's kvm_pvm host) and `vmx-host` (the same file with a hardware-KVM host
/// record, noise, rounds on every sample and half the start latencies).
fn two_hosts() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let fixture = std::fs::read_to_string(golden.join("input/results.json")).unwrap();
    let pvm = root.path().join("pvm-host");
    std::fs::create_dir(&pvm).unwrap();
    std::fs::write(pvm.join("results.json"), &fixture).unwrap();

    let mut r: Value = serde_json::from_str(&fixture).unwrap();
    r["host"]["cpu_model"] = "Example hardware-KVM CPU".into();
    r["host"]["cores"] = 8.into();
    r["host"]["kvm_kind"] = "hardware-vmx".into();
    r["host"]["noise"] = serde_json::json!({
        "seconds": 61.0, "cpus": 8, "steal_pct": 0.0, "iowait_pct": 0.1, "busy_pct": 30.0,
        "loadavg_1m_start": 0.2, "loadavg_1m_end": 1.1,
        "cpu_mhz_start": 3000.0, "cpu_mhz_end": 3400.0, "cpu_mhz_source": "cpufreq scaling_cur_freq"
    });
    for case in r["cases"].as_array_mut().unwrap() {
        for (i, s) in case["samples"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .enumerate()
        {
            s["round"] = i.into();
            if let Some(ms) = s["start_latency_ms"].as_f64() {
                s["start_latency_ms"] = (ms / 2.0).into();
            }
        }
    }
    let vmx = root.path().join("vmx-host");
    std::fs::create_dir(&vmx).unwrap();
    std::fs::write(vmx.join("results.json"), r.to_string()).unwrap();
    root
}

fn report_in(root: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vclab"))
        .arg("report")
        .args(args)
        .current_dir(root)
        .output()
        .expect("run vclab report")
}

#[test]
fn report_compares_the_same_rows_across_hosts() {
    let root = two_hosts();
    let out = report_in(root.path(), &["pvm-host", "vmx-host", "--out", "cmp"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cmp = root.path().join("cmp");
    let md = std::fs::read_to_string(cmp.join("hosts.md")).unwrap();
    // Regenerate after an intended change with VCLAB_UPDATE_GOLDEN=1.
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/hosts.md");
    if std::env::var_os("VCLAB_UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &md).unwrap();
    }
    assert_eq!(md, std::fs::read_to_string(&golden).unwrap());
    for want in [
        "| pvm-host | pvm-host |",
        "Example hardware-KVM CPU | 8 |",
        "hardware-vmx",
        "not recorded",
        "steal 0.0 %, iowait 0.1 %, busy 30.0 % of 8 CPUs' time",
        "pvm-host: start ms: median [95 % CI]",
        "vmx-host: score vs bare [95 % CI]",
        "| container | cpu | 25.56 [20.14, 28.19] |",
        "paired",
    ] {
        assert!(md.contains(want), "no '{want}' in:\n{md}");
    }
    let csv = std::fs::read_to_string(cmp.join("hosts.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 32, "a line per host × case");
    assert!(csv.contains(
        "vmx-host,vmx-host,Example hardware-KVM CPU,8,hardware-vmx,0.00,bare,cpu,measured,3,"
    ));
    let html = std::fs::read_to_string(cmp.join("report.html")).unwrap();
    assert!(html.contains("<table id=\"hosts\">") && html.contains("<table id=\"rows\">"));
    // The inputs are left as they were.
    assert!(!root.path().join("pvm-host/report.html").exists());
}

#[test]
fn report_of_several_hosts_defaults_beside_the_first() {
    let root = two_hosts();
    let out = report_in(root.path(), &["pvm-host", "vmx-host"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = root.path().join("hosts-pvm-host-vs-vmx-host");
    assert!(dir.join("hosts.md").is_file());
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed
            .trim()
            .ends_with("hosts-pvm-host-vs-vmx-host/report.html"),
        "{printed}"
    );
    // --out with one directory is a usage error, said plainly.
    let out = report_in(root.path(), &["pvm-host", "--out", "x"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("two or more"));
}
