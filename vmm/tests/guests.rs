//! Tier 2: tiny assembled guests on the real /dev/kvm.

mod common;

use std::path::Path;
use std::time::Duration;

use vclab_vmm::{ExitReason, VmConfig};

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
