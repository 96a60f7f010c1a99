//! `vclab-workload`: runs one kernel and prints its JSON line, idles until signalled, talks to
//! the VMM's lab control device from inside the Linux guest, or probes its own isolation. Bad arguments: one line on stderr,
//! exit 2. Other failures: one line on stderr, exit 1.

mod args;
mod clock;
mod disk;
mod idle;
mod port;
mod probe;

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use args::Command;
use vclab_workload::{Params, Report, MAX_LINE_LEN};

fn main() -> ExitCode {
    let start_monotonic_ns = clock::monotonic_ns();
    let command = match args::parse(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vclab-workload: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Command::Help => {
            println!("{}", args::USAGE);
            Ok(())
        }
        Command::Run(params) => run(&params, start_monotonic_ns),
        Command::RunIo { params, disk } => run_io(&params, &disk, start_monotonic_ns),
        Command::IoImage { out, size, seed } => {
            disk::write_image(&out, size, seed).map_err(|e| e.to_string())
        }
        Command::Idle => idle::run().map_err(|e| e.to_string()),
        Command::Ready => {
            port::write_byte(port::READY_PORT, port::READY_VALUE).map_err(|e| e.to_string())
        }
        Command::GuestExit(status) => {
            port::write_byte(port::EXIT_PORT, status).map_err(|e| e.to_string())
        }
        Command::Probe(options) => probe::run(&options).map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vclab-workload: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs the kernel, timed with CLOCK_MONOTONIC, and prints the result line.
fn run(params: &Params, start_monotonic_ns: u64) -> Result<(), String> {
    let len = params.scratch_len().map_err(|e| e.to_string())?;
    // Non-zero fill: every page is faulted in before the clock starts (a zeroed allocation would
    // stay unmapped), so elapsed_ns times the kernel, as in the unikernel whose RAM is pre-mapped.
    let mut scratch = vec![0xa5u8; len];
    let (t0, c0) = (clock::monotonic_ns(), clock::thread_cpu_ns());
    let outcome = vclab_workload::run(params, &mut scratch).map_err(|e| e.to_string())?;
    let elapsed_ns = clock::monotonic_ns().saturating_sub(t0);
    let cpu_ns = clock::thread_cpu_ns().saturating_sub(c0);
    let report = Report {
        params: *params,
        checksum: outcome.checksum,
        ops: outcome.ops,
        elapsed_ns,
        start_monotonic_ns,
        cpu_ns,
        io: None,
    };
    print_line(&report)
}

/// Runs the io kernel on the disk file `path`, timed with CLOCK_MONOTONIC, and prints the line.
fn run_io(params: &Params, path: &Path, start_monotonic_ns: u64) -> Result<(), String> {
    let mut disk = disk::FileDisk::open(path).map_err(|e| e.to_string())?;
    if !disk.direct() {
        eprintln!(
            "vclab-workload: {}: O_DIRECT refused by its filesystem (tmpfs?): reading buffered, through the page cache (\"direct\":false)",
            path.display()
        );
    }
    let len = params.scratch_len().map_err(|e| e.to_string())?;
    let mut scratch = vec![0xa5u8; len];
    let (t0, c0) = (clock::monotonic_ns(), clock::thread_cpu_ns());
    let outcome = vclab_workload::run_io(params, &mut scratch, &mut disk, &mut clock::monotonic_ns)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let elapsed_ns = clock::monotonic_ns().saturating_sub(t0);
    let cpu_ns = clock::thread_cpu_ns().saturating_sub(c0);
    let report = Report {
        params: *params,
        checksum: outcome.checksum,
        ops: outcome.ops,
        elapsed_ns,
        start_monotonic_ns,
        cpu_ns,
        io: Some(vclab_workload::IoStats {
            direct: Some(disk.direct()),
            ..outcome.stats
        }),
    };
    print_line(&report)
}

/// Prints the result line and a newline on stdout.
fn print_line(report: &Report) -> Result<(), String> {
    let mut line = [0u8; MAX_LINE_LEN + 1];
    let n = report.write_json(&mut line).map_err(|e| e.to_string())?;
    line[n] = b'\n';
    let mut out = io::stdout().lock();
    out.write_all(&line[..=n])
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write the result line to stdout: {e}"))
}
