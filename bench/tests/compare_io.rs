//! The io kernel's disk image outlives no `vclab compare`: removed at the end (see
//! compare_e2e.rs), and by the harness's guard when the harness is killed (SIGKILL) or
//! interrupted (Ctrl-C's SIGINT) while it runs. A few seconds, bare row only.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Waits up to `secs` for `cond`.
fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

fn images(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Starts a long bare-only compare, waits for its image, sends `signal`, and checks the image
/// goes.
fn image_goes_after(signal: nix::sys::signal::Signal) {
    let io_dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vclab"))
        .args([
            "compare",
            "--only",
            "bare",
            "--runs",
            "200",
            "--no-isolation",
        ])
        .arg("--io-dir")
        .arg(io_dir.path())
        .arg("--out")
        .arg(out.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run vclab compare");
    let name = format!("vclab-io-{}.img", child.id());
    let made = wait_for(30, || images(io_dir.path()).contains(&name));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, signal).unwrap();
    let _ = child.wait();
    assert!(
        made,
        "vclab compare made no {name} in {}",
        io_dir.path().display()
    );
    let gone = wait_for(10, || images(io_dir.path()).is_empty());
    assert!(
        gone,
        "after {signal} the io image is still there: {:?}",
        images(io_dir.path())
    );
}

#[test]
fn a_killed_harness_leaves_no_io_image() {
    image_goes_after(nix::sys::signal::Signal::SIGKILL);
}

#[test]
fn an_interrupted_harness_leaves_no_io_image() {
    image_goes_after(nix::sys::signal::Signal::SIGINT);
}
