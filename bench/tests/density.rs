//! `vclab density` end to end, as a user runs it, on this host's real
//! runtimes: a quick ramp to 50 of bare, container, crun and
//! microvm-unikernel (each reaches 50 or names the host limit that stopped
//! it; the fitted cost per instance is positive; nothing is left), Ctrl-C
//! in the middle of a ramp (everything torn down, density.json still
//! written), and bad input (a one-line error, exit 1, nothing started).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const RUNTIMES: &[&str] = &["bare", "container", "crun", "microvm-unikernel"];

fn vclab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vclab"))
}

/// Directories below `dir` (up to `depth` levels) whose name contains `needle`.
fn named(dir: &Path, needle: &str, depth: u32, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(t) = e.file_type() else { continue };
        if !t.is_dir() || t.is_symlink() {
            continue;
        }
        if e.file_name().to_string_lossy().contains(needle) {
            out.push(e.path().display().to_string());
        }
        if depth > 0 {
            named(&e.path(), needle, depth - 1, out);
        }
    }
}

/// What a `vclab density` run with pid `pid` may have left on the host.
fn left_by(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    let entry = format!("/run/vclab/harness-{pid}");
    if Path::new(&entry).exists() {
        out.push(entry);
    }
    for needle in [format!("density-{pid}-"), format!("vclab-compare-{pid}-")] {
        named(Path::new("/sys/fs/cgroup"), &needle, 5, &mut out);
        for root in ["/run/vclab", "/run/runc", "/run/crun"] {
            named(Path::new(root), &needle, 0, &mut out);
        }
        if let Ok(m) = std::fs::read_to_string("/proc/self/mountinfo") {
            out.extend(
                m.lines()
                    .filter(|l| l.contains(&needle))
                    .map(str::to_string),
            );
        }
    }
    // Processes of the run: children of the harness, or named after it
    // (a container launcher's --id, an OCI runtime's container id).
    let names = [format!("density-{pid}-"), format!("vclab-compare-{pid}-")];
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for p in procs.flatten() {
            let Ok(stat) = std::fs::read_to_string(p.path().join("stat")) else {
                continue;
            };
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
                continue;
            };
            let f: Vec<&str> = rest.split(' ').collect();
            if f.first() == Some(&"Z") {
                continue;
            }
            let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if f.get(1) == Some(&pid.to_string().as_str())
                || names.iter().any(|n| cmdline.contains(n))
            {
                out.push(format!(
                    "process {} ({cmdline})",
                    p.file_name().to_string_lossy()
                ));
            }
        }
    }
    out
}

fn load(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("density.json")).expect("density.json written");
    serde_json::from_str(&text).expect("density.json parses")
}

/// The `fits.csv` slope of `runtime` for `measure`, KiB per instance.
fn slope(dir: &Path, runtime: &str, measure: &str) -> Option<f64> {
    let csv = std::fs::read_to_string(dir.join("fits.csv")).ok()?;
    csv.lines().find_map(|l| {
        let f: Vec<&str> = l.split(',').collect();
        (f.first() == Some(&runtime) && f.get(1) == Some(&"false") && f.get(2) == Some(&measure))
            .then(|| f.get(4)?.parse().ok())
            .flatten()
    })
}

/// Stop reasons that are the host's limits, not a broken runtime.
const HOST_LIMITS: &[&str] = &[
    "memory-budget",
    "host-memory-guard",
    "emfile",
    "enomem",
    "eagain",
    "pid-max",
    "threads-max",
    "pids-max",
];

#[test]
fn quick_ramp_to_50_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let child = vclab()
        .args(["density", "--quick", "--max", "50", "--runtimes"])
        .arg(RUNTIMES.join(","))
        .arg("--out")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vclab density");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        t.elapsed() < Duration::from_secs(150),
        "took {:?}",
        t.elapsed()
    );
    let r = load(dir.path());
    assert_eq!(r["kind"], "vclab-density");
    let runs = r["runtimes"].as_array().unwrap();
    assert_eq!(runs.len(), RUNTIMES.len(), "{stderr}");
    for (run, name) in runs.iter().zip(RUNTIMES) {
        assert_eq!(run["runtime"], *name);
        if let Some(why) = run["skipped"].as_str() {
            assert!(!why.is_empty());
            eprintln!("{name}: skipped here: {why}");
            continue;
        }
        let ramp = &run["ramps"][0];
        let stop = ramp["stop"].as_str().unwrap_or("none");
        let n = ramp["max_n"].as_u64().unwrap();
        assert!(
            n == 50 && stop == "reached-max" || HOST_LIMITS.contains(&stop),
            "{name}: held {n}, stopped by {stop}: {}",
            ramp["stop_detail"]
        );
        assert!(!ramp["stop_detail"].as_str().unwrap_or("").is_empty());
        // Every step after the first launched instances and timed them.
        let steps = ramp["steps"].as_array().unwrap();
        assert_eq!(steps[0]["n"], 0);
        assert!(steps.len() >= 3, "{name}: {} steps", steps.len());
        assert!(steps[1..]
            .iter()
            .all(|s| !s["latencies_ms"].as_array().unwrap().is_empty()));
        assert!(steps.last().unwrap()["alive"] == steps.last().unwrap()["sampled"]);
        // One more instance costs memory. PSS and kernel memory are this
        // runtime's own; MemAvailable also moves with the rest of the host,
        // too much to be sure of its sign over 50 small instances.
        for m in ["pss", "kernel"] {
            let s = slope(dir.path(), name, m).unwrap_or_else(|| panic!("{name}: no {m} fit"));
            assert!(s > 0.0, "{name}: {m} slope {s} KiB");
        }
        assert_eq!(
            ramp["teardown"]["leftovers"],
            Value::Array(vec![]),
            "{name}"
        );
        let rates = run["rates"].as_array().unwrap();
        let levels: Vec<u64> = rates
            .iter()
            .map(|x| x["concurrency"].as_u64().unwrap())
            .collect();
        assert_eq!(levels, [1, 2, 8], "{name}");
        for x in rates {
            assert_eq!(x["launches"], 100, "{name}: {x}");
            assert!(x["per_s"].as_f64().unwrap() > 0.0, "{name}: {x}");
            assert_eq!(x["leftovers"], Value::Array(vec![]), "{name}");
        }
    }
    assert_eq!(left_by(pid), Vec::<String>::new());
    for f in [
        "report.html",
        "density.csv",
        "fits.csv",
        "rates.csv",
        "memory_pss.svg",
        "latency_vs_n.svg",
        "rate_vs_concurrency.svg",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("id=\"cost\"") && html.contains("id=\"projection-server\""));
    // `vclab report DIR` re-renders it.
    std::fs::remove_file(dir.path().join("report.html")).unwrap();
    let rep = vclab().arg("report").arg(dir.path()).output().unwrap();
    assert_eq!(
        rep.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&rep.stderr)
    );
    assert!(dir.path().join("report.html").is_file());
}

#[test]
fn ctrl_c_mid_ramp_tears_down_and_writes_what_was_measured() {
    let dir = tempfile::tempdir().unwrap();
    let child = vclab()
        .args([
            "density",
            "--runtimes",
            "container,bare",
            "--max",
            "3000",
            "--step",
            "10",
            "--out",
        ])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vclab density");
    let pid = child.id();
    // Wait for a few steps of the container ramp to be saved.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut n = 0;
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(dir.path().join("density.json")) {
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                n = v["runtimes"][0]["ramps"][0]["max_n"].as_u64().unwrap_or(0);
                if n >= 30 || v["runtimes"][0]["skipped"].is_string() {
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::SIGINT,
    )
    .unwrap();
    let t = Instant::now();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "{:?} to stop",
        t.elapsed()
    );
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let r = load(dir.path());
    assert_eq!(r["interrupted"], true);
    let run = &r["runtimes"][0];
    if run["skipped"].is_string() {
        eprintln!("container skipped here: {}", run["skipped"]);
    } else {
        assert!(n >= 30, "the ramp got to {n} only: {stderr}");
        let ramp = &run["ramps"][0];
        assert_eq!(ramp["stop"], "interrupted");
        assert!(ramp["max_n"].as_u64().unwrap() >= 30);
        assert_eq!(ramp["teardown"]["leftovers"], Value::Array(vec![]));
        // The next runtime was not started.
        assert!(r["runtimes"].as_array().unwrap().len() == 1, "{stderr}");
    }
    assert!(dir.path().join("report.html").is_file());
    assert_eq!(left_by(pid), Vec::<String>::new());
}

#[test]
fn bad_input_is_one_line_exit_1_and_starts_nothing() {
    for args in [
        &["--max", "0"][..],
        &["--memory-budget", "150%"],
        &["--memory-budget", "1k"],
        &["--runtimes", "bare,no-such-runtime"],
        &["--concurrency", "0"],
        &["--concurrency", "1,0,8"],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out_dir = dir.path().join("out");
        let child = vclab()
            .arg("density")
            .args(args)
            .arg("--out")
            .arg(&out_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("vclab: "), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(
            !out_dir.exists(),
            "{args:?}: the results directory was created"
        );
        assert!(!Path::new(&format!("/run/vclab/harness-{pid}")).exists());
    }
}
