//! Tier 2: tiny assembled guests on the real /dev/kvm.

mod common;

use std::path::Path;
use std::time::Duration;

use vclab_vmm::{cache, ExitReason, VmConfig};

use common::*;

#[test]
fn exit_port_ready_marker_and_line() {
    let (r, _console, lines) = run_guest(READY_LINE_EXIT, |_| {});
    assert_eq!(r.exit_reason, ExitReason::GuestExit);
    assert_eq!(r.guest_exit_code, Some(42));
    assert_eq!(r.guest_lines, vec!["hello".to_string()]);
    assert_eq!(&*lines.lock().unwrap(), b"hello\n");
    let (built, first, ready, exit) = (
        r.vm_built_ns.unwrap(),
        r.first_run_ns.unwrap(),
        r.guest_ready_ns.unwrap(),
        r.exit_ns.unwrap(),
    );
    assert!(built <= first && first <= ready && ready <= exit, "{r:?}");
    assert_eq!(r.vm_exits.get("io-out"), Some(&3));
    assert!(!r.linux);
    assert!(r.cmdline.contains("vclab.tsc_khz="));
    assert!(r.vmm_peak_rss_kib.unwrap() > 0);
    assert!(r.vmm_pss_kib.unwrap() > 0);
    assert!(r.guest_touched_kib.unwrap() < r.guest_ram_kib);
}

#[test]
fn unknown_ports_read_all_ones_and_are_counted() {
    let (r, _, _) = run_guest(PORTS, |_| {});
    assert_eq!(r.exit_reason, ExitReason::GuestExit);
    assert_eq!(r.guest_exit_code, Some(0x56));
    assert_eq!(r.unclaimed_accesses, 3);
}

#[test]
fn triple_fault_ends_the_vm() {
    let (r, _, _) = run_guest(TRIPLE_FAULT, |_| {});
    assert_eq!(r.exit_reason, ExitReason::TripleFault, "{r:?}");
}

#[test]
fn i8042_reset_ends_the_vm() {
    let (r, _, _) = run_guest(RESET, |_| {});
    assert_eq!(r.exit_reason, ExitReason::Reset);
}

#[test]
fn timeout_ends_a_hanging_guest() {
    let (r, _, _) = run_guest(HANG, |cfg| cfg.timeout = Some(Duration::from_millis(500)));
    assert_eq!(r.exit_reason, ExitReason::Timeout);
    let exit = r.exit_ns.unwrap() - r.vm_built_ns.unwrap();
    assert!(exit >= 500_000_000, "{exit}");
}

#[test]
fn uart_flood_ends_cleanly_on_timeout() {
    let (r, console, _) = run_guest(FLOOD, |cfg| cfg.timeout = Some(Duration::from_millis(500)));
    assert_eq!(r.exit_reason, ExitReason::Timeout);
    assert!(r.kernel_start_ns.is_some());
    let bytes = console.lock().unwrap().len() as u64;
    let outs = r.vm_exits["io-out"];
    assert!(outs > 10, "{outs}");
    // No newline: the partial line is written out at the end.
    assert_eq!(bytes, outs);
    assert!(console.lock().unwrap().iter().all(|&b| b == b'A'));
}

#[test]
fn two_and_four_vcpus_boot() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = assemble(dir.path(), "exit", READY_LINE_EXIT);
    for vcpus in [2, 4] {
        let (mut cfg, _, _) = config(&kernel);
        cfg.vcpus = vcpus;
        let r = vclab_vmm::run(&cfg).unwrap();
        assert_eq!(r.exit_reason, ExitReason::GuestExit);
        assert_eq!(r.guest_exit_code, Some(42));
        assert_eq!(r.vcpus, vcpus);
    }
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = assemble(dir.path(), "exit", READY_LINE_EXIT);
    let error = |kernel: &Path, edit: &dyn Fn(&mut VmConfig)| {
        let (mut cfg, _, _) = config(kernel);
        edit(&mut cfg);
        vclab_vmm::run(&cfg).unwrap_err().to_string()
    };
    let e = error(&kernel, &|cfg| cfg.vcpus = 0);
    assert!(e.contains("--vcpus"), "{e}");
    let e = error(&kernel, &|cfg| cfg.mem_mib = 0);
    assert!(e.contains("--mem"), "{e}");
    let big = dir.path().join("big.img");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(40 << 20)
        .unwrap();
    let e = error(&kernel, &|cfg| cfg.initrd = Some(big.clone()));
    assert!(e.contains("does not fit"), "{e}");
    let e = error(&dir.path().join("exit.S"), &|_| {});
    assert!(e.contains("neither an ELF"), "{e}");
}

/// The unikernel's `vclab.fault=mmio` reads and writes a word every 2 MiB of guest-physical
/// space above RAM up to 4 GiB (KVM's in-kernel LAPIC/IOAPIC window read only): every access
/// is an unclaimed MMIO exit the VMM answers with all-ones (reads) or drops (writes), and the
/// guest still ends normally, in bounded time, with its report.
#[test]
fn unclaimed_mmio_above_ram_never_stops_the_vmm() {
    let kernel = cache::artifact(&cache::dir(), "unikernel")
        .expect("the unikernel is in the artifact cache (scripts/guest-images.sh all)");
    for vcpus in [1, 2] {
        let (mut cfg, _, _) = config(&kernel);
        cfg.mem_mib = 64;
        cfg.vcpus = vcpus;
        cfg.cmdline = "vclab.fault=mmio".into();
        cfg.timeout = Some(Duration::from_secs(60));
        let r = vclab_vmm::run(&cfg).unwrap();
        assert_eq!(r.exit_reason, ExitReason::GuestExit, "{r:?}");
        assert_eq!(r.guest_exit_code, Some(0), "{r:?}");
        let line: serde_json::Value =
            serde_json::from_str(r.guest_lines.last().expect("the mmio line")).unwrap();
        assert_eq!(line["fault"], "mmio");
        assert_eq!(line["from"], 64u64 << 20, "from the end of RAM");
        let pages = line["pages"].as_u64().unwrap();
        assert_eq!(pages, ((4u64 << 30) - (64 << 20)) / (2 << 20));
        let (reads, writes) = (r.vm_exits["mmio-read"], r.vm_exits["mmio-write"]);
        assert_eq!(
            line["all_ones"].as_u64(),
            Some(reads),
            "every unclaimed read is all-ones"
        );
        assert_eq!(line["written"].as_u64(), Some(writes));
        // Only KVM's own irqchip window (2 of the pages) stays in the kernel.
        assert!(reads >= pages - 2 && reads <= pages, "{reads} of {pages}");
        assert_eq!(r.unclaimed_accesses, reads + writes, "{r:?}");
    }
}
