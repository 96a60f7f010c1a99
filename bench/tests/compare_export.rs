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
    assert!(err.contains("results.json"), "{err}");
}
