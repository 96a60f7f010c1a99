//! The exporters against golden files: `vclab report` on a fixed results.json
//! must write byte-identical results.json, results.csv and results.md.
//! Regenerate after an intended format change with
//! `VCLAB_UPDATE_GOLDEN=1 cargo test -p vclab-bench --test compare_export`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Runs `vclab report` on a copy of the fixture and returns the directory.
fn report_of_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        golden().join("input/results.json"),
        dir.path().join("results.json"),
    )
    .expect("copy the fixture");
    let out = Command::new(env!("CARGO_BIN_EXE_vclab"))
        .arg("report")
        .arg(dir.path())
        .output()
        .expect("run vclab report");
    assert!(
        out.status.success(),
        "vclab report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

#[test]
fn exports_match_golden_files() {
    let dir = report_of_fixture();
    let update = std::env::var_os("VCLAB_UPDATE_GOLDEN").is_some();
    for name in ["results.json", "results.csv", "results.md"] {
        let got = std::fs::read_to_string(dir.path().join(name)).expect(name);
        let path = golden().join(name);
        if update {
            std::fs::write(&path, &got).expect("write golden");
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (create with VCLAB_UPDATE_GOLDEN=1)",
                path.display()
            )
        });
        assert!(got == want, "{name} differs from {}", path.display());
    }
}

#[test]
fn report_is_repeatable_and_draws_plots() {
    let dir = report_of_fixture();
    let first = std::fs::read(dir.path().join("results.csv")).unwrap();
    // A second report over its own output gives the same files.
    let out = Command::new(env!("CARGO_BIN_EXE_vclab"))
        .arg("report")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        first,
        std::fs::read(dir.path().join("results.csv")).unwrap()
    );
    for svg in [
        "start_latency.svg",
        "memory_overhead.svg",
        "cpu_overhead.svg",
    ] {
        let text = std::fs::read_to_string(dir.path().join(svg)).expect(svg);
        assert!(text.contains("<svg"), "{svg} is not an SVG");
        // One bar per measured runtime and kernel at least: more than a frame.
        assert!(text.matches("<rect").count() > 5, "{svg} has no bars");
        assert!(
            text.contains("microvm-unikernel"),
            "{svg} lacks the x labels"
        );
    }
}

#[test]
fn report_of_a_missing_directory_fails_clearly() {
    let out = Command::new(env!("CARGO_BIN_EXE_vclab"))
        .args(["report", "/nonexistent/vclab-results"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/vclab-results") && err.contains("does not exist"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// `vclab report` on a copy of `fixture` (a file under golden/input); returns the directory.
fn report_of(fixture: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        golden().join("input").join(fixture),
        dir.path().join("results.json"),
    )
    .expect("copy the fixture");
    let out = Command::new(env!("CARGO_BIN_EXE_vclab"))
        .arg("report")
        .arg(dir.path())
        .output()
        .expect("run vclab report");
    assert!(
        out.status.success(),
        "vclab report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

#[test]
fn a_version_1_file_with_summaries_loads_and_is_written_back_as_version_2() {
    // v1-summarised.json is the golden results.json of format version 1: its
    // ratios carry the old propagated `error`.
    let v1 = std::fs::read_to_string(golden().join("input/v1-summarised.json")).unwrap();
    assert!(v1.contains("\"version\": 1") && v1.contains("\"error\""));
    let dir = report_of("v1-summarised.json");
    let json = std::fs::read_to_string(dir.path().join("results.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["version"], 2);
    assert!(!json.contains("\"error\"") && !json.contains("v1_error"));
    // The same samples give the same figures as the golden (version 2) output.
    let md = std::fs::read_to_string(dir.path().join("results.md")).unwrap();
    let want = std::fs::read_to_string(golden().join("results.md")).unwrap();
    assert_eq!(md, want);
}

#[test]
fn every_export_says_what_its_figures_are() {
    let dir = report_of_fixture();
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).expect(name);
    let csv = read("results.csv");
    let header = csv.lines().next().unwrap();
    for col in [
        "start_latency_median_ci95_low_ms",
        "score_median_ci95_high_ops_per_s",
        "score_vs_bare_ci95_low",
        "score_vs_bare_method",
        "start_vs_peer_ci95_high",
    ] {
        assert!(header.split(',').any(|h| h == col), "no {col} in {header}");
    }
    assert!(!header.contains("error"), "{header}");
    for name in ["results.md", "report.html"] {
        let text = read(name);
        for label in [
            "median [95 % CI]",
            "(min–max)",
            "score vs bare [95 % CI]",
            "start vs peer [95 % CI]",
            "percentile-bootstrap 95 % CI",
            "paired per round",
            "unpaired",
            "host noise during the run",
        ] {
            assert!(
                text.to_lowercase().contains(&label.to_lowercase()),
                "{name} lacks '{label}'"
            );
        }
        assert!(!text.contains('±'), "{name} still shows a ±");
    }
}
