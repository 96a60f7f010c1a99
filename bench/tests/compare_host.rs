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
