//! Tier 3: `vclab vm run` as a user runs it.

use std::process::{Command, Output};

#[path = "../../vmm/tests/common/mod.rs"]
mod common;
use common::assemble;

const EXIT_7: &str = "
  mov $0x3f0, %dx
  mov $123, %al
  out %al, %dx
  mov $0x3f1, %dx
  mov $7, %al
  out %al, %dx";

fn vclab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vclab"))
        .args(["vm", "run"])
        .args(args)
        .output()
        .unwrap()
}

/// Asserts a clear one-line error mentioning `needle`, a non-zero exit, no panic.
fn assert_clear_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, stderr: {stderr}");
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn guest_exit_code_and_json_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = assemble(dir.path(), "exit7", EXIT_7);
    let out = vclab(&[
        "--kernel",
        kernel.to_str().unwrap(),
        "--json",
        "--mem",
        "16",
    ]);
    let v = exit7_report(out);
    assert!(v["guest_ready_ns"].as_u64().unwrap() >= v["first_run_ns"].as_u64().unwrap());
}

/// Checks a run of the EXIT_7 guest (exit code 7, said on stderr, report
/// last on stdout) and returns the report.
fn exit7_report(out: Output) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("status 7"), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last().unwrap();
    let report: vclab_vmm::VmReport = serde_json::from_str(last).unwrap();
    assert_eq!(report.exit_reason, vclab_vmm::ExitReason::GuestExit);
    assert_eq!(report.guest_exit_code, Some(7));
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    // The wire name, as old results.json files have it.
    assert_eq!(v["exit_reason"], "guest-exit");
    v
}

#[test]
fn timeout_and_triple_fault_codes() {
    let dir = tempfile::tempdir().unwrap();
    let hang = assemble(dir.path(), "hang", "1: jmp 1b");
    let out = vclab(&["--kernel", hang.to_str().unwrap(), "--timeout", "0.3"]);
    assert_eq!(out.status.code(), Some(124));
    assert!(String::from_utf8_lossy(&out.stderr).contains("timeout"));
    let triple = assemble(dir.path(), "triple", "ud2");
    let out = vclab(&["--kernel", triple.to_str().unwrap(), "--timeout", "20"]);
    assert_eq!(out.status.code(), Some(121));
    assert!(String::from_utf8_lossy(&out.stderr).contains("triple"));
}

#[test]
fn console_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = assemble(
        dir.path(),
        "hi",
        "mov $0x3f8, %dx\n mov $0x68, %al\n out %al, %dx\n mov $0x0a, %al\n out %al, %dx\n mov $0x3f1, %dx\n mov $0, %al\n out %al, %dx",
    );
    let log = dir.path().join("console.txt");
    let out = vclab(&[
        "--kernel",
        kernel.to_str().unwrap(),
        "--console",
        log.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "h\n");
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_input_gives_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = assemble(dir.path(), "exit7", EXIT_7);
    let k = kernel.to_str().unwrap();

    assert_clear_error(
        &vclab(&["--kernel", "/nonexistent/vmlinux"]),
        "cannot read kernel /nonexistent/vmlinux",
    );
    // A directory cannot be read as a file, even by root.
    assert_clear_error(
        &vclab(&["--kernel", dir.path().to_str().unwrap()]),
        "cannot read kernel",
    );
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a kernel at all").unwrap();
    assert_clear_error(
        &vclab(&["--kernel", text.to_str().unwrap()]),
        "neither an ELF vmlinux nor a bzImage",
    );
    let big = dir.path().join("big.cpio");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    assert_clear_error(
        &vclab(&[
            "--kernel",
            k,
            "--mem",
            "32",
            "--initrd",
            big.to_str().unwrap(),
        ]),
        "does not fit",
    );
    assert_clear_error(
        &vclab(&["--kernel", k, "--initrd", "/nonexistent/initrd"]),
        "cannot read initrd",
    );
    assert_clear_error(&vclab(&["--kernel", k, "--mem", "0"]), "--mem 0");
    assert_clear_error(&vclab(&["--kernel", k, "--mem", "100000000"]), "MemTotal");
    assert_clear_error(&vclab(&["--kernel", k, "--vcpus", "0"]), "--vcpus");
    assert_clear_error(&vclab(&["--kernel", k, "--vcpus", "1000"]), "--vcpus");
    let long = "x".repeat(3000);
    assert_clear_error(
        &vclab(&["--kernel", k, "--cmdline", &long]),
        "shorten --cmdline",
    );
}

#[test]
fn foreign_bzimage_is_refused_on_kvm_pvm() {
    let dir = tempfile::tempdir().unwrap();
    // A bzImage setup header (boot protocol 2.15) pointing at a distro
    // kernel's version string, without the lab's marker.
    let mut img = vec![0u8; 0x400];
    img[0x1f1] = 4;
    img[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
    img[0x202..0x206].copy_from_slice(b"HdrS");
    img[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    img[0x20e..0x210].copy_from_slice(&0x0200u16.to_le_bytes());
    img[0x211] = 1;
    img[0x214..0x218].copy_from_slice(&0x10_0000u32.to_le_bytes());
    img.extend_from_slice(b"6.1.0-28-cloud-amd64 (debian-kernel@lists.debian.org) #1\0");
    img.resize(0x2000, 0);
    let path = dir.path().join("vmlinuz-distro");
    std::fs::write(&path, img).unwrap();
    let out = vclab(&["--kernel", path.to_str().unwrap(), "--timeout", "5"]);
    if vclab_vmm::host::KvmKind::detect() == vclab_vmm::host::KvmKind::Pvm {
        assert_clear_error(&out, "is not the lab's kernel");
    } else {
        assert!(!out.status.success());
    }
}

/// `vclab-vmm` is the same VMM without the lab's CLI around it: same
/// options, same exit codes, same report, same errors.
#[test]
fn the_small_vmm_binary_behaves_like_vm_run() {
    let vmm = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_vclab-vmm"))
            .args(args)
            .output()
            .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let kernel = assemble(dir.path(), "exit7", EXIT_7);
    let k = kernel.to_str().unwrap();
    let v = exit7_report(vmm(&["--kernel", k, "--json", "--mem", "16"]));
    assert!(v["vmm_pss_kib"].as_u64().unwrap() > 0);

    assert_clear_error(&vmm(&["--kernel", k, "--mem", "0"]), "--mem 0");
    assert_clear_error(&vmm(&["--kernel", k, "--bogus"]), "--bogus");
    assert_clear_error(&vmm(&[]), "--kernel PATH");

    let help = vmm(&["--help"]);
    assert!(help.status.success());
    let via_vclab = vclab(&["--help"]);
    assert!(via_vclab.status.success());
    assert_eq!(help.stdout, via_vclab.stdout, "one help text for both");
    assert!(String::from_utf8_lossy(&help.stdout).contains("--stop-at-console"));
}

/// Runs `vclab-vmm --kernel KERNEL` in a private mount namespace whose /dev
/// is an empty tmpfs plus what `make_dev` (a shell snippet) puts there, then
/// through `setpriv` with `setpriv_args`.
fn vmm_with_private_dev(kernel: &str, make_dev: &str, setpriv_args: &str) -> Output {
    let script = format!(
        "mount -t tmpfs vclab-test-dev /dev && {make_dev} exec setpriv {setpriv_args} \"$0\" --kernel \"$1\""
    );
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .arg(env!("CARGO_BIN_EXE_vclab-vmm"))
        .arg(kernel)
        .output()
        .unwrap()
}

#[test]
fn no_kvm_and_kvm_not_permitted_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = assemble(dir.path(), "exit7", EXIT_7);
    let k = kernel.to_str().unwrap();
    // No /dev/kvm at all.
    assert_clear_error(&vmm_with_private_dev(k, "", "--"), "no /dev/kvm");
    // A /dev/kvm node that this (root) process may not open: mode 000 and
    // no CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH.
    assert_clear_error(
        &vmm_with_private_dev(
            k,
            "mknod -m 000 /dev/kvm c 10 232 &&",
            "--bounding-set=-dac_override,-dac_read_search --inh-caps=-dac_override,-dac_read_search --",
        ),
        "not permitted",
    );
}

/// Signals ready, then idles with interrupts off (no exits).
const READY_IDLE: &str = "
  mov $0x3f0, %dx
  mov $123, %al
  out %al, %dx
  cli
1:
  hlt
  jmp 1b";

/// `vclab-vmm ... &` from a non-interactive shell inherits SIGINT ignored; SIGINT and SIGTERM
/// still end the VM cleanly: report printed, exit code 128 + the signal, for the 1-vCPU VM
/// (vCPU on the main thread) and the threaded one.
#[test]
fn sigint_and_sigterm_stop_a_backgrounded_vm_cleanly() {
    // The premise: an asynchronous list of `sh -c` starts with SIGINT (bit 1 of SigIgn) ignored.
    let premise = Command::new("sh")
        .args(["-c", "grep SigIgn /proc/self/status & wait"])
        .output()
        .unwrap();
    let mask = String::from_utf8_lossy(&premise.stdout);
    let mask = u64::from_str_radix(mask.split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert_ne!(
        mask & 1 << (2 - 1),
        0,
        "SIGINT not ignored in the background"
    );
    let dir = tempfile::tempdir().unwrap();
    let kernel = assemble(dir.path(), "idle", READY_IDLE);
    for (signal, code, vcpus) in [("INT", 130, "1"), ("TERM", 143, "1"), ("INT", 130, "2")] {
        let out = dir.path().join("out.json");
        // The shell starts the VMM as an asynchronous list (SIGINT ignored), prints its pid,
        // and waits for it; the shell's exit status is the VMM's.
        let script = "\"$0\" --kernel \"$1\" --mem 16 --vcpus \"$2\" --timeout 20 --json >\"$3\" 2>&1 & echo $!; wait $!";
        let mut sh = Command::new("sh")
            .args(["-c", script])
            .arg(env!("CARGO_BIN_EXE_vclab-vmm"))
            .arg(&kernel)
            .arg(vcpus)
            .arg(&out)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut pid = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(sh.stdout.take().unwrap()),
            &mut pid,
        )
        .unwrap();
        let pid = pid.trim().to_string();
        std::thread::sleep(std::time::Duration::from_millis(500));
        let started = std::time::Instant::now();
        assert!(Command::new("kill")
            .args([format!("-{signal}"), pid.clone()])
            .status()
            .unwrap()
            .success());
        let status = sh.wait().unwrap();
        let took = started.elapsed();
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(status.code(), Some(code), "SIG{signal} x{vcpus}: {text}");
        assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
        assert!(text.contains(&format!("stopped by SIG{signal}")), "{text}");
        let report: vclab_vmm::VmReport =
            serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(
            report.stop_signal.as_deref(),
            Some(&*format!("SIG{signal}"))
        );
        assert!(report.guest_ready_ns.is_some(), "{text}");
    }
}
