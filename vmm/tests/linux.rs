//! Tier 2, slow: the lab's micro-VM Linux (ELF vmlinux and the shared
//! initramfs from the cache manifest) on the real /dev/kvm.
//!
//! Which variant runs is decided by the host probe, and printed:
//! - hardware KVM: the guest boots to userspace, `/init` runs the workload and
//!   its JSON line's checksum must equal the host `vclab-workload`'s;
//! - kvm_pvm (guest ring 0 emulated, guest userspace cannot make system
//!   calls): the boot must reach Linux's init handoff with both CPUs up. Here
//!   the two tests of this file took 181 s and 294 s together in two CI runs
//!   (most of a boot is unpacking the initramfs in emulated ring 0), more
//!   under load.
//!
//! A deliberately broken initramfs must end as a clean `guest-panic` with the
//! panic in the report's last console lines.
//! They need the artifacts (`scripts/guest-images.sh`) and fail with a clear
//! message without them.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vclab_vmm::config::DiskSpec;
use vclab_vmm::{cache, host::KvmKind, ExitReason, Output, StopAt, VmConfig, VmReport};

fn artifact(name: &str) -> PathBuf {
    let dir = cache::dir();
    cache::artifact(&dir, name).unwrap_or_else(|| {
        panic!(
            "no {name} artifact in {}/manifest.json: run scripts/guest-images.sh first",
            dir.display()
        )
    })
}

fn boot(initrd: PathBuf, vcpus: u32, cmdline: &str, stop_at: StopAt) -> (VmReport, String) {
    let mut cfg = VmConfig::new(artifact("vmlinux"));
    cfg.initrd = Some(initrd);
    boot_config(cfg, vcpus, cmdline, stop_at)
}

fn boot_config(
    mut cfg: VmConfig,
    vcpus: u32,
    cmdline: &str,
    stop_at: StopAt,
) -> (VmReport, String) {
    let console = Arc::new(Mutex::new(Vec::new()));
    cfg.vcpus = vcpus;
    cfg.mem_mib = 256;
    cfg.verbose_guest = true;
    cfg.cmdline = cmdline.to_string();
    cfg.stop_at = stop_at;
    cfg.console = Output::Memory(console.clone());
    cfg.lines = Output::Memory(console.clone());
    cfg.timeout = Some(Duration::from_secs(1200));
    let r = vclab_vmm::run(&cfg).expect("the VM runs");
    let text = String::from_utf8_lossy(&console.lock().unwrap()).into_owned();
    (r, text)
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// The checksum field of a workload JSON line.
fn checksum(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
    v.get("checksum")?.as_str().map(str::to_string)
}

#[test]
fn lab_vmlinux_with_the_initramfs_boots_two_vcpus() {
    let kind = KvmKind::detect();
    let (size, iterations, seed) = (65536, 2, 7);
    let params = format!(
        "vclab.kernel=cpu vclab.size={size} vclab.iterations={iterations} vclab.seed={seed}"
    );
    let (r, text) = boot(artifact("initramfs"), 2, &params, StopAt::Auto);
    assert!(r.linux, "{r:?}");
    assert!(
        text.contains("smp: Brought up 1 node, 2 CPUs"),
        "console tail:\n{}",
        tail(&text)
    );
    assert!(
        text.contains("Run /init as init process"),
        "console tail:\n{}",
        tail(&text)
    );
    let (start, handoff) = (r.kernel_start_ns.unwrap(), r.init_handoff_ns.unwrap());
    assert!(r.first_run_ns.unwrap() <= start && start <= handoff);

    if kind.runs_linux_userspace() {
        eprintln!(
            "variant: {} — asserting the workload's JSON line and checksum",
            kind.describe()
        );
        assert_eq!(
            r.exit_reason,
            ExitReason::GuestExit,
            "{r:?}\nconsole tail:\n{}",
            tail(&text)
        );
        assert_eq!(r.guest_exit_code, Some(0));
        assert!(r.guest_ready_ns.is_some(), "no ready marker: {r:?}");
        let guest = text
            .lines()
            .find_map(checksum)
            .unwrap_or_else(|| panic!("no workload line on the console:\n{}", tail(&text)));
        let host = Command::new(artifact("workload"))
            .args([
                "run",
                "cpu",
                "--size",
                &size.to_string(),
                "--iterations",
                &iterations.to_string(),
            ])
            .args(["--seed", &seed.to_string()])
            .output()
            .expect("the host workload runs");
        let host = checksum(&String::from_utf8_lossy(&host.stdout)).expect("a host JSON line");
        assert_eq!(guest, host);
    } else {
        eprintln!(
            "variant: {} — asserting the boot reaches the init handoff (guest userspace cannot run here)",
            kind.describe()
        );
        assert_eq!(
            r.exit_reason,
            ExitReason::InitHandoff,
            "{r:?}\nconsole tail:\n{}",
            tail(&text)
        );
        assert!(r.guest_ready_ns.is_none());
        if kind == KvmKind::Pvm {
            for switch in [
                "noxsave",
                "clearcpuid=",
                "vclab.no_int3_selftest",
                "vclab.no_fwait",
            ] {
                assert!(
                    r.cmdline.contains(switch),
                    "{switch} missing: {}",
                    r.cmdline
                );
            }
        }
    }
}

/// The root file system from a virtio-blk disk: the lab rootfs as an ext4 image
/// (`scripts/guest-images.sh rootdisk`), attached read-only, `root=/dev/vda`, no initramfs.
#[test]
fn lab_vmlinux_mounts_its_root_from_a_virtio_blk_disk() {
    let kind = KvmKind::detect();
    let mut cfg = VmConfig::new(artifact("vmlinux"));
    cfg.disks = vec![DiskSpec {
        path: artifact("rootdisk"),
        read_only: true,
        direct: false,
    }];
    let params = "root=/dev/vda ro rootfstype=ext4 init=/init vclab.kernel=cpu vclab.size=65536 vclab.iterations=1";
    let (r, text) = boot_config(cfg, 1, params, StopAt::Auto);
    assert!(
        r.cmdline.contains("virtio_mmio.device=4K@0xd0000000:5"),
        "{}",
        r.cmdline
    );
    for line in [
        "virtio_blk virtio0: [vda]",
        "VFS: Mounted root (ext4 filesystem) readonly",
    ] {
        assert!(
            text.contains(line),
            "{line:?} missing; console tail:\n{}",
            tail(&text)
        );
    }
    if kind.runs_linux_userspace() {
        assert_eq!(
            r.exit_reason,
            ExitReason::GuestExit,
            "{r:?}\n{}",
            tail(&text)
        );
        assert_eq!(r.guest_exit_code, Some(0));
    } else {
        assert_eq!(
            r.exit_reason,
            ExitReason::InitHandoff,
            "{r:?}\n{}",
            tail(&text)
        );
    }
}

#[test]
fn a_broken_initramfs_ends_as_a_clean_guest_panic() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.cpio.gz");
    // A gzip header followed by garbage: unpacking fails, there is no root
    // file system, and the kernel panics (then reboot=k resets the VM).
    let mut bytes = vec![0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03];
    bytes.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    std::fs::write(&broken, bytes).unwrap();
    let (r, text) = boot(broken, 1, "", StopAt::Never);
    assert_eq!(
        r.exit_reason,
        ExitReason::GuestPanic,
        "{r:?}\nconsole tail:\n{}",
        tail(&text)
    );
    let detail = r.exit_detail.expect("the panic's console lines");
    assert!(detail.contains("Kernel panic"), "{detail}");
    assert!(r.guest_ready_ns.is_none());
}
