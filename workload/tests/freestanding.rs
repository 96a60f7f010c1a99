//! The core must work in the unikernel guest: `#![no_std]`, no allocator, no libc. Build
//! `tests/fixtures/freestanding.rs` that way, run it as a plain static process, and check that its
//! lines equal the library's results and that the optimised core has no call to a panic function.

use std::path::{Path, PathBuf};
use std::process::Command;

use vclab_workload::{run, Kernel, Params};

#[test]
fn freestanding_build_matches_the_std_results_and_cannot_panic() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("freestanding");
    let exe = build_fixture(&dir);

    let out = Command::new(&exe)
        .output()
        .expect("run the freestanding program");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert_eq!(lines[0], "{\"ready\":true}");
    let expected = [
        (Kernel::Cpu, 65536, 2),
        (Kernel::MemBw, 262144, 3),
        (Kernel::MemLat, 131072, 2),
    ];
    for ((kernel, size, iterations), line) in expected.into_iter().zip(&lines[1..]) {
        let params = Params {
            kernel,
            size,
            iterations,
            seed: 5,
        };
        let mut scratch = vec![0u8; params.scratch_len().unwrap()];
        let outcome = run(&params, &mut scratch).unwrap();
        let want = format!(
            "{{\"kernel\":\"{kernel}\",\"size\":{size},\"iterations\":{iterations},\"seed\":5,\
             \"checksum\":\"{}\",\"ops\":{},\"elapsed_ns\":0,\"start_monotonic_ns\":0,\"cpu_ns\":0}}",
            outcome.checksum, outcome.ops
        );
        assert_eq!(*line, want);
    }
    assert_eq!(lines[4], io_line(), "the io run");

    let disasm = Command::new("objdump")
        .arg("-d")
        .arg(&exe)
        .output()
        .expect("run objdump");
    assert!(disasm.status.success());
    let text = String::from_utf8_lossy(&disasm.stdout);
    let panic_calls: Vec<&str> = text
        .lines()
        .filter(|l| (l.contains("call") || l.contains("jmp")) && l.contains("panic"))
        .collect();
    assert!(
        panic_calls.is_empty(),
        "panicking paths in the core: {panic_calls:#?}"
    );
}

/// The line the fixture's io run must print: the library on the same 16-block image.
fn io_line() -> String {
    use vclab_workload::io::{image_block, SliceDisk, BLOCK_SIZE};
    let params = Params {
        kernel: Kernel::Io,
        size: 65536,
        iterations: 20,
        seed: 5,
    };
    let mut disk = vec![0u8; 16 * BLOCK_SIZE];
    for (b, block) in disk.chunks_exact_mut(BLOCK_SIZE).enumerate() {
        image_block(1, b as u64, block);
    }
    let mut scratch = vec![0u8; params.scratch_len().unwrap()];
    let outcome = vclab_workload::run_io(
        &params,
        &mut scratch,
        &mut SliceDisk::new(&mut disk),
        &mut || 0,
    )
    .unwrap();
    let report = vclab_workload::Report {
        params,
        checksum: outcome.checksum,
        ops: outcome.ops,
        elapsed_ns: 0,
        start_monotonic_ns: 0,
        cpu_ns: 0,
        io: Some(outcome.stats),
    };
    let mut line = [0u8; vclab_workload::MAX_LINE_LEN];
    let n = report.write_json(&mut line).unwrap();
    String::from_utf8(line[..n].to_vec()).unwrap()
}

/// Writes a throwaway package around the fixture and builds it with the guest's flags.
fn build_fixture(dir: &Path) -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::copy(
        manifest_dir.join("tests/fixtures/freestanding.rs"),
        dir.join("src/main.rs"),
    )
    .unwrap();
    // Same dependency versions as the workspace.
    std::fs::copy(manifest_dir.join("../Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let manifest = format!(
        "[package]\nname = \"freestanding-guest\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
         [workspace]\n\n[dependencies]\nvclab-workload = {{ path = {:?} }}\n\n\
         [profile.release]\npanic = \"abort\"\n",
        manifest_dir
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let build = Command::new(cargo)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .args(["rustc", "--release", "--"])
        .args(["-C", "link-arg=-nostartfiles", "-C", "link-arg=-static"])
        .args(["-C", "relocation-model=static"])
        .output()
        .expect("spawn cargo");
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    dir.join("target/release/freestanding-guest")
}
