//! What the VMM's command-line tests share (`tests/seccomp.rs`, `tests/jail.rs`): each VM runs
//! in a child process, the test binary re-executed with the VMM's arguments in [`CHILD_ARGS`],
//! which runs the command line on its main thread as `vclab-vmm` does (a seccomp filter stays
//! on its thread for the rest of the process, and SIGINT/SIGTERM must reach a 1-vCPU VM's only
//! thread). The test files have no libtest harness (`harness = false`): [`main`] runs them.

#![allow(dead_code)]

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::Instant;

use vclab_vmm::{cache, VmReport};

/// The entry of a test file: a re-executed child runs the VMM's command line with the
/// arguments in [`CHILD_ARGS`] and exits with its code; otherwise `tests` run one after the
/// other (each starts VMs), the first non-option argument, if any, filtering them by name.
pub fn main(tests: &[(&str, fn())]) -> ! {
    if let Some(args) = std::env::var_os(CHILD_ARGS) {
        let args: Vec<OsString> = args
            .to_string_lossy()
            .split(SEP)
            .map(OsString::from)
            .collect();
        std::process::exit(vclab_vmm::cli::main(args, Instant::now()));
    }
    if std::env::args().any(|a| a == "--list") {
        for (name, _) in tests {
            println!("{name}: test");
        }
        std::process::exit(0);
    }
    std::process::exit(run_tests(tests))
}

/// Set in a re-executed child: the VMM's arguments, separated by the unit separator.
pub const CHILD_ARGS: &str = "VCLAB_VMM_TEST_CLI_ARGS";
pub const SEP: char = '\u{1f}';

/// The first argument that is not an option or an option's value (libtest's options that take
/// one: `--test-threads 2`, `--skip NAME`, ...).
fn name_filter(args: impl Iterator<Item = String>) -> Option<String> {
    const TAKE_VALUE: [&str; 6] = [
        "--test-threads",
        "--skip",
        "--format",
        "--logfile",
        "--color",
        "-Z",
    ];
    let mut args = args;
    while let Some(a) = args.next() {
        if TAKE_VALUE.contains(&a.as_str()) {
            args.next();
        } else if !a.starts_with('-') {
            return Some(a);
        }
    }
    None
}

/// Runs the tests whose name contains the first non-option argument; prints libtest's lines.
pub fn run_tests(tests: &[(&str, fn())]) -> i32 {
    let filter = name_filter(std::env::args().skip(1));
    let chosen: Vec<_> = tests
        .iter()
        .filter(|(name, _)| filter.as_deref().is_none_or(|f| name.contains(f)))
        .collect();
    let started = Instant::now();
    println!("\nrunning {} tests", chosen.len());
    let mut failed = Vec::new();
    for (name, test) in &chosen {
        let ok = std::panic::catch_unwind(test).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failed.push(*name);
        }
    }
    let passed = chosen.len() - failed.len();
    println!(
        "\ntest result: {}. {passed} passed; {} failed; 0 ignored; 0 measured; {} filtered out; finished in {:.2}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len(),
        tests.len() - chosen.len(),
        started.elapsed().as_secs_f64()
    );
    i32::from(!failed.is_empty())
}

pub fn unikernel() -> PathBuf {
    cache::artifact(&cache::dir(), "unikernel")
        .expect("the unikernel is in the artifact cache (scripts/guest-images.sh all)")
}

/// The VMM's command line in a child process, with `env` set.
pub fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let kernel = unikernel();
    let mut all = vec![
        "--kernel",
        kernel.to_str().unwrap(),
        "--mem",
        "64",
        "--json",
    ];
    all.extend_from_slice(args);
    let joined = all.join(&SEP.to_string());
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(CHILD_ARGS, joined)
        .env_remove("VCLAB_VMM_SECCOMP_SELFTEST");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// The report on the last line of `stdout`, if there is one.
pub fn report(stdout: &[u8]) -> Option<VmReport> {
    let text = String::from_utf8_lossy(stdout);
    serde_json::from_str(text.lines().last()?).ok()
}

pub fn run(args: &[&str]) -> (Output, VmReport) {
    run_env(args, &[])
}

pub fn run_env(args: &[&str], env: &[(&str, &str)]) -> (Output, VmReport) {
    let out = command(args, env).output().unwrap();
    let r = report(&out.stdout).unwrap_or_else(|| {
        panic!(
            "no report from {args:?}: {:?}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, r)
}

pub fn checksum(r: &VmReport) -> String {
    let line = r.guest_lines.last().expect("a result line");
    let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
    v["checksum"].as_str().expect("a checksum").to_string()
}

/// Starts an idle guest, waits for its ready line on stdout, and returns the child.
pub fn start_idle(extra: &[&str]) -> (Child, BufReader<ChildStdout>) {
    let mut args = vec!["--cmdline", "vclab.kernel=idle", "--timeout", "60"];
    args.extend_from_slice(extra);
    let mut child = command(&args, &[]).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let ready = loop {
        line.clear();
        if stdout.read_line(&mut line).unwrap_or(0) == 0 {
            break false;
        }
        if line.contains("\"ready\"") {
            break true;
        }
    };
    if ready {
        return (child, stdout);
    }
    let status = child.wait();
    panic!("the VMM ended before its guest was ready: {status:?}");
}
