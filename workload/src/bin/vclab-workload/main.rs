//! `vclab-workload`: runs one kernel and prints its JSON line, idles until signalled, talks to
//! the VMM's lab control device from inside the Linux guest, or probes its own isolation. Bad arguments: one line on stderr,
//! exit 2. Other failures: one line on stderr, exit 1.

mod args;
mod clock;
mod idle;
mod port;
mod probe;

use std::io::{self, Write};
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
    };
    let mut line = [0u8; MAX_LINE_LEN + 1];
    let n = report.write_json(&mut line).map_err(|e| e.to_string())?;
    line[n] = b'\n';
    let mut out = io::stdout().lock();
    out.write_all(&line[..=n])
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write the result line to stdout: {e}"))
}
