//! Tier 2/3: the VMM's command line with its per-thread seccomp filters on (the default,
//! `SECCOMP_RET_KILL_PROCESS`), on the real /dev/kvm with the lab's unikernel: every workload
//! kernel, an idle guest stopped by SIGTERM, `--timeout`, and the fault modes end as they do
//! without the filter, on 1 vCPU (the vCPU on the main thread) and 2 (vCPU threads and a
//! waiting main thread). A filter that is too tight kills the VMM with SIGSYS, which these
//! tests see as the exit status. The self-test hook shows that a forbidden call does kill it.
//!
//! Each VM runs in a child process on its main thread (`cli_child`).

mod cli_child;

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use cli_child::{checksum, command, report, run, run_env, start_idle};
use vclab_vmm::{ExitReason, VmReport};

/// The tests of this file (see `cli_child::main`).
fn main() {
    let tests: [(&str, fn()); 4] = [
        (
            "every_kernel_computes_the_same_checksum_under_the_filters",
            every_kernel_computes_the_same_checksum_under_the_filters,
        ),
        (
            "sigterm_stops_an_idle_guest_under_the_filters",
            sigterm_stops_an_idle_guest_under_the_filters,
        ),
        (
            "timeout_and_fault_modes_end_with_their_reason_under_the_filters",
            timeout_and_fault_modes_end_with_their_reason_under_the_filters,
        ),
        (
            "a_forbidden_syscall_kills_the_vmm_with_sigsys",
            a_forbidden_syscall_kills_the_vmm_with_sigsys,
        ),
    ];
    cli_child::main(&tests);
}

fn assert_filtered(r: &VmReport, vcpus: u32) {
    assert_eq!(r.seccomp, "on", "{r:?}");
    assert!(r.seccomp_vcpu_syscalls.is_some_and(|n| n > 0), "{r:?}");
    assert_eq!(r.seccomp_main_syscalls.is_some(), vcpus > 1, "{r:?}");
}

fn every_kernel_computes_the_same_checksum_under_the_filters() {
    for vcpus in ["1", "2"] {
        for (kernel, size) in [("cpu", 16384), ("mem-bw", 1 << 20), ("mem-lat", 1 << 20)] {
            let cmdline = format!("vclab.kernel={kernel} vclab.size={size} vclab.iterations=2");
            let args = ["--vcpus", vcpus, "--cmdline", &cmdline, "--timeout", "60"];
            let (out, on) = run(&args);
            assert!(
                out.status.success(),
                "{kernel} on {vcpus}: {:?} {on:?}",
                out.status
            );
            assert_eq!(on.exit_reason, ExitReason::GuestExit);
            assert_filtered(&on, vcpus.parse().unwrap());
            let mut unfiltered = args.to_vec();
            unfiltered.push("--no-seccomp");
            let (_, off) = run(&unfiltered);
            assert_eq!(off.seccomp, "off");
            assert_eq!(off.seccomp_vcpu_syscalls, None);
            assert_eq!(checksum(&on), checksum(&off), "{kernel} on {vcpus} vCPUs");
        }
    }
}

fn sigterm_stops_an_idle_guest_under_the_filters() {
    for vcpus in ["1", "2"] {
        let (mut child, mut stdout) = start_idle(&["--vcpus", vcpus]);
        // SAFETY: kill with our child's pid and a valid signal.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut rest).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(143), "{vcpus} vCPUs: {status:?}");
        let r = report(&rest).expect("a report after SIGTERM");
        assert_eq!(r.exit_reason, ExitReason::Signal);
        assert_eq!(r.stop_signal.as_deref(), Some("SIGTERM"));
        assert_filtered(&r, vcpus.parse().unwrap());
    }
}

fn timeout_and_fault_modes_end_with_their_reason_under_the_filters() {
    for vcpus in ["1", "2"] {
        let cases: [(&str, &str, ExitReason, i32); 5] = [
            ("vclab.fault=hang", "1", ExitReason::Timeout, 124),
            ("vclab.fault=triple", "20", ExitReason::TripleFault, 121),
            ("vclab.fault=ports", "20", ExitReason::GuestExit, 0),
            ("vclab.fault=flood", "1", ExitReason::Timeout, 124),
            ("vclab.fault=mmio", "60", ExitReason::GuestExit, 0),
        ];
        for (cmdline, timeout, reason, code) in cases {
            let args = [
                "--vcpus",
                vcpus,
                "--cmdline",
                cmdline,
                "--timeout",
                timeout,
                "--console",
                "off",
            ];
            let started = Instant::now();
            let (out, r) = run(&args);
            assert_eq!(out.status.code(), Some(code), "{cmdline}, {vcpus}: {r:?}");
            assert_eq!(r.exit_reason, reason, "{cmdline}, {vcpus}");
            assert_filtered(&r, vcpus.parse().unwrap());
            assert!(started.elapsed() < Duration::from_secs(30), "{cmdline}");
            if cmdline.ends_with("flood") {
                assert!(r.vm_exits["io-out"] > 100, "the flood ran: {r:?}");
            }
        }
    }
}

fn a_forbidden_syscall_kills_the_vmm_with_sigsys() {
    let selftest = [("VCLAB_VMM_SECCOMP_SELFTEST", "1")];
    let cmdline = [
        "--cmdline",
        "vclab.kernel=cpu vclab.size=4096 vclab.iterations=1",
    ];
    for vcpus in ["1", "2"] {
        let mut args = cmdline.to_vec();
        args.extend(["--vcpus", vcpus, "--timeout", "20"]);
        let out = command(&args, &selftest).output().unwrap();
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGSYS),
            "{vcpus} vCPUs: {:?}",
            out.status
        );
        assert!(report(&out.stdout).is_none(), "killed before any report");
        // Under --seccomp-log the same call is allowed (and logged): the run ends normally.
        args.push("--seccomp-log");
        let (out, r) = run_env(&args, &selftest);
        assert!(out.status.success(), "{:?}", out.status);
        assert_eq!(r.seccomp, "log");
        // Without the hook nothing forbidden happens.
        args.pop();
        let (out, _) = run(&args);
        assert!(out.status.success(), "{:?}", out.status);
    }
}
