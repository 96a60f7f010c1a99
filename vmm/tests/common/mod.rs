//! Tiny test guests assembled at test time: 64-bit code entered in long mode
//! at ring 0 (kept to a handful of simple instructions: on kvm_pvm ring-0
//! code is emulated).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vclab_vmm::{Output, VmConfig, VmReport};

/// Writes `body` as the code after `_start` and links it at 1 MiB.
pub fn assemble(dir: &Path, name: &str, body: &str) -> PathBuf {
    let src = dir.join(format!("{name}.S"));
    let elf = dir.join(format!("{name}.elf"));
    std::fs::write(&src, format!(".code64\n.globl _start\n_start:\n{body}\n")).unwrap();
    let out = Command::new("cc")
        .args([
            "-nostdlib",
            "-static",
            "-no-pie",
            "-Wl,-Ttext=0x100000",
            "-Wl,--build-id=none",
        ])
        .arg(&src)
        .arg("-o")
        .arg(&elf)
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "cc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    elf
}

/// Signals ready, prints "hello" through the line register, exits with 42.
pub const READY_LINE_EXIT: &str = "
  mov $0x3f0, %dx
  mov $123, %al
  out %al, %dx
  mov $record, %eax
  mov $0x3f4, %dx
  out %eax, %dx
  mov $0x3f1, %dx
  mov $42, %al
  out %al, %dx
  hlt
record:
  .long 5
  .ascii \"hello\"";

/// Reads an unknown port and the lab signature, writes an unknown port,
/// exits with the signature (0x56).
pub const PORTS: &str = "
  mov $0x1234, %dx
  in %dx, %al
  out %al, %dx
  mov $0xd00, %dx
  in %dx, %eax
  mov $0x3f0, %dx
  in %dx, %al
  mov $0x3f1, %dx
  out %al, %dx";

/// Undefined instruction with an empty IDT: #UD → #GP → #DF → triple fault.
pub const TRIPLE_FAULT: &str = "ud2";
/// Never ends.
pub const HANG: &str = "1: jmp 1b";
/// Writes 'A' to the UART forever.
pub const FLOOD: &str = "
1: mov $0x3f8, %dx
  mov $0x41, %al
  out %al, %dx
  jmp 1b";
/// Resets through the i8042.
pub const RESET: &str = "
  mov $0xfe, %al
  out %al, $0x64
1: jmp 1b";

/// A shared capture buffer.
pub type Buffer = Arc<Mutex<Vec<u8>>>;

/// A config for a test guest with console and lines captured in memory.
pub fn config(kernel: &Path) -> (VmConfig, Buffer, Buffer) {
    let console = Arc::new(Mutex::new(Vec::new()));
    let lines = Arc::new(Mutex::new(Vec::new()));
    let mut cfg = VmConfig::new(kernel);
    cfg.mem_mib = 32;
    cfg.console = Output::Memory(console.clone());
    cfg.lines = Output::Memory(lines.clone());
    cfg.timeout = Some(Duration::from_secs(20));
    (cfg, console, lines)
}

/// Assembles `body` in a temporary directory and runs it to its end with the
/// [`config`] defaults as `edit` changes them.
pub fn run_guest(body: &str, edit: impl FnOnce(&mut VmConfig)) -> (VmReport, Buffer, Buffer) {
    let dir = tempfile::tempdir().unwrap();
    let kernel = assemble(dir.path(), "guest", body);
    let (mut cfg, console, lines) = config(&kernel);
    edit(&mut cfg);
    let report = vclab_vmm::run(&cfg).unwrap();
    (report, console, lines)
}
