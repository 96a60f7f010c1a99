//! Tier 2: snapshot at the ready signal and restore, end to end on the real /dev/kvm with the
//! lab's unikernel (from the cache manifest, as `tests/unikernel.rs` finds it), under the
//! seccomp filters the `vclab-vmm` binary runs with.
//!
//! - a cold boot that snapshots at ready, resumes and prints its result; the snapshot restored
//!   twice (each memory mode) prints the same checksum;
//! - `--cmdline-after-restore` words reach the restored guest through the lab device's params
//!   register: the restored run computes what a cold boot with those words computes;
//! - a truncated, corrupted or foreign snapshot directory is refused before KVM is touched.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use vclab_vmm::config::{RestoreSpec, SnapshotSpec};
use vclab_vmm::snapshot::{uffd, RestoreMode, SaveMode};
use vclab_vmm::{cache, seccomp, ExitReason, VmConfig, VmReport};

const CMDLINE: &str = "vclab.kernel=cpu vclab.size=65536 vclab.iterations=3 vclab.seed=5";
const AFTER: &str = "vclab.kernel=mem-lat vclab.size=262144 vclab.iterations=2";
/// Guest RAM: the image below 16 MiB, the workloads' scratch above.
const MEM_MIB: u64 = 20;

fn unikernel() -> PathBuf {
    if let Some(p) = cache::artifact(&cache::dir(), "unikernel") {
        return p;
    }
    let out = std::env::temp_dir().join("vclab-vmm-test-restore-unikernel.elf");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new(root.join("guest-images/unikernel/build.sh"))
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

/// A run of the unikernel as `edit` says, with the seccomp filters on (a forbidden call kills
/// the test process), on a thread of its own (each thread installs its own filter).
fn run(edit: impl FnOnce(&mut VmConfig) + Send + 'static) -> (Result<VmReport, String>, Vec<u8>) {
    std::thread::spawn(move || {
        let (mut cfg, _console, lines) = common::config(&unikernel());
        cfg.mem_mib = MEM_MIB;
        cfg.seccomp = seccomp::Mode::Kill;
        edit(&mut cfg);
        let r = vclab_vmm::run(&cfg).map_err(|e| e.to_string());
        let lines = lines.lock().unwrap().clone();
        (r, lines)
    })
    .join()
    .expect("the VM thread")
}

fn checksum(lines: &[u8]) -> String {
    let text = String::from_utf8_lossy(lines);
    let line = text
        .lines()
        .find(|l| l.contains("\"checksum\""))
        .unwrap_or_else(|| panic!("no result line in {text:?}"));
    let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
    format!("{} {}", v["kernel"], v["checksum"])
}

fn ok(r: Result<VmReport, String>) -> VmReport {
    let r = r.expect("the VM runs");
    assert_eq!(r.exit_reason, ExitReason::GuestExit, "{:?}", r.exit_detail);
    assert_eq!(r.guest_exit_code, Some(0));
    r
}

fn restore(dir: &Path, mode: RestoreMode, after: Option<&str>) -> (VmReport, String) {
    let spec = RestoreSpec {
        dir: dir.to_path_buf(),
        mode,
        cmdline_after: after.map(str::to_string),
    };
    let (r, lines) = run(move |cfg| {
        cfg.cmdline.clear();
        cfg.restore = Some(spec);
    });
    let r = ok(r);
    let restore = r.restore.as_ref().expect("a restore report");
    assert_eq!(restore.mode, mode.as_str());
    assert!(
        r.guest_params_ns.is_some(),
        "the guest asked for its params"
    );
    assert!(
        r.guest_ready_ns.is_none(),
        "a restored guest is past its ready signal"
    );
    (r, checksum(&lines))
}

#[test]
fn a_snapshot_restored_twice_computes_what_the_cold_boot_did() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("snap");
    let spec = SnapshotSpec {
        dir: dir.clone(),
        save_mode: SaveMode::SkipZero,
    };
    let (cold, cold_lines) = run(move |cfg| {
        cfg.cmdline = CMDLINE.to_string();
        cfg.snapshot = Some(spec);
    });
    let cold = ok(cold);
    let taken = cold.snapshot.as_ref().expect("a snapshot report");
    assert_eq!(taken.memory_bytes, MEM_MIB << 20);
    assert!(taken.memory_written_bytes > 0 && taken.memory_written_bytes < MEM_MIB << 20);
    assert!(taken.paused_ns >= cold.guest_ready_ns.unwrap());
    let cold_sum = checksum(&cold_lines);

    let mut modes = vec![RestoreMode::Mmap, RestoreMode::Eager];
    if uffd::probe().is_ok() {
        modes.push(RestoreMode::Uffd);
    }
    for mode in modes {
        for _ in 0..2 {
            let (r, sum) = restore(&dir, mode, None);
            assert_eq!(
                sum, cold_sum,
                "{mode}: restored run differs from the cold boot"
            );
            assert_eq!(
                r.cmdline, cold.cmdline,
                "the report shows the boot command line"
            );
        }
    }
}

#[test]
fn words_after_restore_reach_the_restored_guest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("snap");
    let spec = SnapshotSpec {
        dir: dir.clone(),
        save_mode: SaveMode::Full,
    };
    ok(run(move |cfg| {
        cfg.cmdline = CMDLINE.to_string();
        cfg.snapshot = Some(spec);
    })
    .0);
    let (fresh, fresh_lines) = run(|cfg| cfg.cmdline = format!("{CMDLINE} {AFTER}"));
    ok(fresh);
    let (_, sum) = restore(&dir, RestoreMode::Mmap, Some(AFTER));
    assert_eq!(sum, checksum(&fresh_lines));
    assert!(sum.contains("mem-lat"), "{sum}");
}

fn refused(dir: &Path) -> String {
    let spec = RestoreSpec {
        dir: dir.to_path_buf(),
        mode: RestoreMode::Mmap,
        cmdline_after: None,
    };
    run(move |cfg| cfg.restore = Some(spec))
        .0
        .expect_err("the snapshot must be refused")
}

#[test]
fn truncated_corrupted_and_foreign_snapshots_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    let spec = SnapshotSpec {
        dir: good.clone(),
        save_mode: SaveMode::SkipZero,
    };
    ok(run(move |cfg| {
        cfg.cmdline = CMDLINE.to_string();
        cfg.snapshot = Some(spec);
    })
    .0);
    let copy = |name: &str| {
        let to = tmp.path().join(name);
        std::fs::create_dir(&to).unwrap();
        for e in std::fs::read_dir(&good).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
        to
    };

    let missing = tmp.path().join("missing");
    assert!(refused(&missing).contains("does not exist"));

    let truncated = copy("truncated");
    let mem = std::fs::OpenOptions::new()
        .write(true)
        .open(truncated.join("memory"))
        .unwrap();
    mem.set_len(1 << 20).unwrap();
    let e = refused(&truncated);
    assert!(e.contains("truncated") && e.contains("memory"), "{e}");

    let corrupt = copy("corrupt");
    let state = corrupt.join("state.json");
    let mut bytes = std::fs::read(&state).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    std::fs::write(&state, bytes).unwrap();
    let e = refused(&corrupt);
    assert!(e.contains("checksum") && e.contains("state.json"), "{e}");

    let foreign = copy("foreign");
    std::fs::write(
        foreign.join("snapshot.json"),
        br#"{"magic":"firecracker","format_version":1}"#,
    )
    .unwrap();
    let e = refused(&foreign);
    assert!(e.contains("not a vclab snapshot"), "{e}");

    let incomplete = copy("incomplete");
    std::fs::remove_file(incomplete.join("snapshot.json")).unwrap();
    assert!(refused(&incomplete).contains("incomplete"));
}

#[test]
fn what_a_snapshot_cannot_hold_is_refused_and_a_guest_never_ready_leaves_none() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("snap");
    let disk = tmp.path().join("disk.img");
    std::fs::write(&disk, [0u8; 4096]).unwrap();
    let with = |edit: fn(&mut VmConfig, &Path), dir: &Path, disk: &Path| {
        let (dir, disk) = (dir.to_path_buf(), disk.to_path_buf());
        run(move |cfg| {
            cfg.snapshot = Some(SnapshotSpec {
                dir: dir.clone(),
                save_mode: SaveMode::SkipZero,
            });
            edit(cfg, &disk);
        })
        .0
    };
    let e = with(|c, _| c.vcpus = 2, &dir, &disk).unwrap_err();
    assert!(e.contains("--vcpus 1"), "{e}");
    let e = with(|c, _| c.lab_device = false, &dir, &disk).unwrap_err();
    assert!(e.contains("--lab-device off"), "{e}");
    let e = with(
        |c, d| {
            c.disks = vec![vclab_vmm::config::DiskSpec {
                path: d.to_path_buf(),
                read_only: true,
                direct: false,
            }]
        },
        &dir,
        &disk,
    )
    .unwrap_err();
    assert!(e.contains("drop --disk"), "{e}");
    assert!(
        !dir.exists(),
        "a refused snapshotting run makes no directory"
    );

    // A guest that resets before any ready signal: the run ends as usual, no snapshot.
    let kernel = common::assemble(tmp.path(), "reset", common::RESET);
    let d = dir.clone();
    let r = std::thread::spawn(move || {
        let (mut cfg, _, _) = common::config(&kernel);
        cfg.snapshot = Some(SnapshotSpec {
            dir: d,
            save_mode: SaveMode::SkipZero,
        });
        vclab_vmm::run(&cfg).unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(r.exit_reason, ExitReason::Reset);
    assert!(r.snapshot.is_none());
    assert!(refused(&dir).contains("incomplete"));
}
