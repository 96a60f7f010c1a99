//! report.html rendered in headless Chromium: the screenshot must be a real,
//! non-blank page, and the HTML must hold the tables and inline SVG plots and
//! fetch nothing from the network.

use std::path::Path;
use std::process::Command;

fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    if png.len() < 24 || &png[..8] != b"\x89PNG\r\n\x1a\n" || &png[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&png[16..20]), be(&png[20..24])))
}

#[test]
fn report_html_renders_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/input/results.json"),
        dir.path().join("results.json"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vclab"))
        .arg("report")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html_path = dir.path().join("report.html");
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.contains("<table id=\"results\">"));
    assert!(html.contains("<table id=\"course\">"));
    assert_eq!(html.matches("<svg").count(), 3, "three inline plots");
    assert!(html.contains("microvm-unikernel"));
    assert!(html.contains("VMs boot in minutes"));
    for external in ["src=\"http", "href=\"http", "<script", "<link"] {
        assert!(
            !html.contains(external),
            "report.html must be self-contained: {external}"
        );
    }

    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("chromium is not installed (apt-get install chromium; scripts/setup.sh does it)");
    let profile = tempfile::tempdir().unwrap();
    let shot = dir.path().join("shot.png");
    let status = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1280,2000")
        .arg(format!("file://{}", html_path.display()))
        .output()
        .expect("run chromium");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let png = std::fs::read(&shot).expect("chromium wrote no screenshot");
    assert_eq!(png_size(&png), Some((1280, 2000)));
    // A blank 1280x2000 page compresses to a few KB; tables and plots do not.
    assert!(
        png.len() > 40_000,
        "screenshot is only {} bytes: blank page?",
        png.len()
    );
}
