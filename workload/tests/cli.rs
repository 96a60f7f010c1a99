//! End-to-end tests of the `vclab-workload` binary as scripts and the container launcher run it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_vclab-workload");

fn workload(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("spawn vclab-workload")
}

/// The value of `"key":` in a flat JSON line (numbers and strings without escapes).
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let tag = format!("\"{key}\":");
    let start = line
        .find(&tag)
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        + tag.len();
    let rest = &line[start..];
    let end = rest.find([',', '}']).unwrap();
    rest[..end].trim_matches('"')
}

fn run_line(args: &[&str]) -> String {
    let out = workload(args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    assert!(
        out.stderr.is_empty(),
        "{args:?}: stderr {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.matches('\n').count(),
        1,
        "exactly one line: {stdout:?}"
    );
    stdout.trim_end().to_owned()
}

#[test]
fn run_prints_one_json_line_with_the_fields_in_order() {
    let line = run_line(&[
        "run",
        "mem-lat",
        "--size",
        "65536",
        "--iterations",
        "2",
        "--seed",
        "7",
    ]);
    let keys: Vec<&str> = line
        .trim_start_matches('{')
        .trim_end_matches('}')
        .split(',')
        .map(|kv| kv.split(':').next().unwrap().trim_matches('"'))
        .collect();
    assert_eq!(
        keys,
        [
            "kernel",
            "size",
            "iterations",
            "seed",
            "checksum",
            "ops",
            "elapsed_ns",
            "start_monotonic_ns",
            "cpu_ns"
        ]
    );
    assert_eq!(field(&line, "kernel"), "mem-lat");
    assert_eq!(field(&line, "size"), "65536");
    assert_eq!(field(&line, "iterations"), "2");
    assert_eq!(field(&line, "seed"), "7");
    assert_eq!(field(&line, "ops"), (65536 / 64 * 2).to_string());
    let checksum = field(&line, "checksum");
    assert_eq!(checksum.len(), 64);
    assert!(checksum
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert!(field(&line, "elapsed_ns").parse::<u64>().unwrap() > 0);
    assert!(field(&line, "start_monotonic_ns").parse::<u64>().unwrap() > 0);
    // CPU time of the kernel: something, and never more than its wall time by much.
    let cpu = field(&line, "cpu_ns").parse::<u64>().unwrap();
    let wall = field(&line, "elapsed_ns").parse::<u64>().unwrap();
    assert!(
        cpu > 0 && cpu <= wall + 1_000_000,
        "cpu {cpu} ns, wall {wall} ns"
    );
}

#[test]
fn two_runs_give_the_same_checksum_and_the_library_agrees() {
    for kernel in vclab_workload::Kernel::ALL {
        let args = [
            "run",
            kernel.name(),
            "--size",
            "131072",
            "--iterations",
            "3",
            "--seed",
            "11",
        ];
        let a = run_line(&args);
        let b = run_line(&args);
        assert_eq!(field(&a, "checksum"), field(&b, "checksum"), "{kernel}");
        assert_eq!(field(&a, "ops"), field(&b, "ops"), "{kernel}");
        let params = vclab_workload::Params {
            kernel,
            size: 131072,
            iterations: 3,
            seed: 11,
        };
        let mut scratch = vec![0u8; params.scratch_len().unwrap()];
        let outcome = vclab_workload::run(&params, &mut scratch).unwrap();
        assert_eq!(
            field(&a, "checksum"),
            outcome.checksum.to_string(),
            "{kernel}"
        );
        let other_seed = run_line(&[
            "run",
            kernel.name(),
            "--size",
            "131072",
            "--iterations",
            "3",
            "--seed",
            "12",
        ]);
        assert_ne!(
            field(&a, "checksum"),
            field(&other_seed, "checksum"),
            "{kernel}"
        );
    }
}

#[test]
fn start_monotonic_ns_is_taken_at_process_entry() {
    let before = monotonic_ns();
    let line = run_line(&["run", "cpu", "--size", "4096", "--iterations", "1"]);
    let after = monotonic_ns();
    let start: u64 = field(&line, "start_monotonic_ns").parse().unwrap();
    assert!(
        before <= start && start <= after,
        "{before} <= {start} <= {after}"
    );
}

#[test]
fn bad_arguments_exit_2_with_one_line_on_stderr() {
    for args in [
        &[][..],
        &["fly"],
        &["run"],
        &["run", "gpu"],
        &["run", "cpu", "--size"],
        &["run", "cpu", "--size", "big"],
        &["run", "cpu", "--size", "1"],
        &["run", "cpu", "--size", "1000000000"],
        &["run", "cpu", "--iterations", "0"],
        &["run", "cpu", "--turbo"],
        &["guest-exit", "300"],
        &["idle", "extra"],
    ] {
        let out = workload(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.matches('\n').count(), 1, "{args:?}: {err:?}");
        assert!(err.starts_with("vclab-workload: "), "{args:?}: {err:?}");
    }
}

/// Kills the child on drop so a failing test leaves no process behind.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn idle_until(signal: libc::c_int) {
    let child = Command::new(BIN)
        .arg("idle")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn idle");
    let mut child = Reaped(child);
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "{\"ready\":true}\n");
    // Still waiting after the ready line.
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "idle exited before any signal"
    );
    let pid = libc::pid_t::try_from(child.0.id()).unwrap();
    // SAFETY: `pid` is our own live child (not yet reaped), so the signal reaches only it.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "idle did not exit on signal {signal}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0), "signal {signal}");
}

#[test]
fn idle_prints_ready_and_exits_0_on_sigterm() {
    idle_until(libc::SIGTERM);
}

#[test]
fn idle_exits_0_on_sigint() {
    idle_until(libc::SIGINT);
}

#[test]
fn idle_as_pid_1_of_a_pid_namespace_exits_0_on_sigterm() {
    // As in a container: init of a PID namespace gets no default-action signals unless it waits
    // for them explicitly.
    let child = Command::new("unshare")
        .args(["--fork", "--pid", "--kill-child", BIN, "idle"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn unshare");
    let mut child = Reaped(child);
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "{\"ready\":true}\n");
    let inner = child_of(child.0.id()).expect("the workload under unshare");
    let status = std::fs::read_to_string(format!("/proc/{inner}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert!(
        nspid.ends_with("\t1"),
        "not PID 1 in its namespace: {nspid}"
    );
    // SAFETY: `inner` is the live child of our own unshare child, which has not been reaped.
    assert_eq!(unsafe { libc::kill(inner, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "PID 1 idle did not exit on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0));
}

/// The process whose parent is `parent` (from /proc/*/stat).
fn child_of(parent: u32) -> Option<libc::pid_t> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: libc::pid_t = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // Fields after the command name (which may hold spaces): state, ppid, ...
            let after = &stat[stat.rfind(')')? + 2..];
            let ppid: u32 = after.split(' ').nth(1)?.parse().ok()?;
            (ppid == parent).then_some(pid)
        })
}

#[test]
fn help_prints_usage_and_exits_0() {
    let out = workload(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let usage = String::from_utf8(out.stdout).unwrap();
    assert!(usage.starts_with("usage: vclab-workload run"), "{usage}");
}

#[test]
fn ready_without_dev_port_is_a_one_line_error() {
    if std::path::Path::new("/dev/port").exists() {
        // On a host with /dev/port a write to 0x3f0 would poke real hardware: run it in a
        // private mount namespace with /dev/port hidden instead.
        let hidden = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(format!("mount -t tmpfs none /dev && exec {BIN} ready"))
            .output()
            .expect("spawn unshare");
        check_port_error(hidden);
    } else {
        check_port_error(workload(&["ready"]));
    }
}

fn check_port_error(out: Output) {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.matches('\n').count(), 1, "{err:?}");
    assert!(err.contains("/dev/port"), "{err:?}");
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `io-image` then `run io` on it twice: one line with the io object, the same checksum, and the
/// library's result on the same bytes. `dir` decides O_DIRECT (a disk-backed directory) or not.
fn io_round_trip(dir: &std::path::Path) -> String {
    let image = dir.join("disk.img");
    let image = image.to_str().unwrap();
    let out = workload(&["io-image", "--size", "262144", "--seed", "3", image]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::metadata(image).unwrap().len(), 262144);
    let args = [
        "run",
        "io",
        "--disk",
        image,
        "--size",
        "262144",
        "--iterations",
        "50",
        "--seed",
        "9",
    ];
    let first = workload(&args);
    let second = workload(&args);
    assert!(
        first.status.success() && second.status.success(),
        "{first:?}"
    );
    let (a, b) = (
        String::from_utf8(first.stdout).unwrap(),
        String::from_utf8(second.stdout).unwrap(),
    );
    assert_eq!(field(&a, "checksum"), field(&b, "checksum"));
    assert_eq!(field(&a, "kernel"), "io");
    assert_eq!(field(&a, "rand_reads"), "50");
    assert_eq!(field(&a, "writes"), "4");
    assert_eq!(field(&a, "seq_bytes"), (60 * 4096).to_string());
    assert!(field(&a, "seq_ns").parse::<u64>().unwrap() > 0);

    let params = vclab_workload::Params {
        kernel: vclab_workload::Kernel::Io,
        size: 262144,
        iterations: 50,
        seed: 9,
    };
    let mut bytes = std::fs::read(image).unwrap();
    let mut scratch = vec![0u8; params.scratch_len().unwrap()];
    let mut disk = vclab_workload::io::SliceDisk::new(&mut bytes);
    let lib = vclab_workload::run_io(&params, &mut scratch, &mut disk, &mut || 0u64).unwrap();
    assert_eq!(field(&a, "checksum"), lib.checksum.to_string());
    assert_eq!(field(&a, "ops"), lib.ops.to_string());
    let stderr = String::from_utf8(first.stderr).unwrap();
    format!("{}|{stderr}", field(&a, "direct"))
}

#[test]
fn io_on_a_disk_backed_file_uses_o_direct() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let fs = fs_type(dir.path());
    let got = io_round_trip(dir.path());
    if fs == "tmpfs" {
        assert!(got.starts_with("false|"), "{got}");
    } else {
        assert_eq!(got, "true|", "filesystem {fs}");
    }
}

/// tmpfs refused O_DIRECT before Linux 6.6 (buffered then, said on stderr and in the line);
/// newer kernels accept it. Either way the line and stderr must agree.
#[test]
fn io_on_tmpfs_says_whether_it_read_direct() {
    let Ok(dir) = tempfile::tempdir_in("/dev/shm") else {
        eprintln!("skipped: no /dev/shm");
        return;
    };
    let got = io_round_trip(dir.path());
    match got.split_once('|') {
        Some(("true", "")) => {}
        Some(("false", note)) => assert!(note.contains("O_DIRECT refused"), "{got}"),
        _ => panic!("{got}"),
    }
}

#[test]
fn io_errors_are_one_line_and_exit_1_or_2() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("small.img");
    let image = image.to_str().unwrap();
    assert!(workload(&["io-image", "--size", "65536", image])
        .status
        .success());
    let out = workload(&["run", "io", "--disk", image, "--size", "1048576"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("the disk has 128 sectors"), "{stderr}");
    let missing = dir.path().join("missing.img");
    let out = workload(&["run", "io", "--disk", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("cannot open the disk"));
    for args in [&["run", "io"][..], &["io-image", "--size", "100", "x"][..]] {
        let out = workload(args);
        assert!(
            matches!(out.status.code(), Some(1 | 2)),
            "{args:?}: {out:?}"
        );
        assert_eq!(String::from_utf8(out.stderr).unwrap().lines().count(), 1);
    }
}

/// The filesystem type of `path` from /proc/self/mounts (longest matching mount point).
fn fs_type(path: &std::path::Path) -> String {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let path = path.canonicalize().unwrap();
    mounts
        .lines()
        .filter_map(|l| {
            let mut w = l.split(' ');
            let (_, point, fs) = (w.next()?, w.next()?, w.next()?);
            path.starts_with(point)
                .then(|| (point.len(), fs.to_owned()))
        })
        .max()
        .map(|(_, fs)| fs)
        .unwrap_or_default()
}
