//! Tier 3: `--jail` as a user runs it, as root, on the real /dev/kvm with the lab's unikernel:
//! the jailed VM computes the same checksum as an unjailed one, runs as the given uid/gid in
//! its own pid, mount and net namespaces and cgroup with only its device nodes and kernel in
//! its root, and leaves nothing behind: not after a normal end, not after SIGTERM, and after a
//! SIGKILL of the jailing VMM not once the next `--jail` run has swept.
//!
//! Each VM runs in a child process on its main thread (`cli_child`).

mod cli_child;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use cli_child::{checksum, command, report, run, start_idle};
use vclab_vmm::jail::{cgroup, state};
use vclab_vmm::ExitReason;

/// The tests of this file (see `cli_child::main`).
fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("jail tests need root (namespaces, device nodes, cgroups): not run");
        std::process::exit(1);
    }
    let tests: [(&str, fn()); 3] = [
        (
            "a_jailed_vm_computes_the_same_checksum_and_leaves_nothing",
            a_jailed_vm_computes_the_same_checksum_and_leaves_nothing,
        ),
        (
            "a_jailed_vmm_runs_as_the_given_ids_in_its_own_namespaces",
            a_jailed_vmm_runs_as_the_given_ids_in_its_own_namespaces,
        ),
        (
            "a_killed_jailing_vmm_is_swept_by_the_next_run",
            a_killed_jailing_vmm_is_swept_by_the_next_run,
        ),
    ];
    cli_child::main(&tests);
}

/// The host-side traces of jail `pid`: its entry and its cgroup directories.
fn traces(pid: u32) -> Vec<PathBuf> {
    let mut out = vec![Path::new(state::RUN_DIR).join(format!("{}{pid}", state::PREFIX))];
    out.extend(cgroup::dirs(&format!("vclab-{}{pid}", state::PREFIX)).unwrap());
    out
}

fn assert_gone(pid: u32) {
    for t in traces(pid) {
        assert!(!t.exists(), "{} left behind", t.display());
    }
}

const CPU: &str = "vclab.kernel=cpu vclab.size=16384 vclab.iterations=2";

fn a_jailed_vm_computes_the_same_checksum_and_leaves_nothing() {
    let child = command(&["--jail", "--cmdline", CPU, "--timeout", "60"], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let jailed = report(&out.stdout).expect("a report");
    assert!(jailed.jailed, "{jailed:?}");
    assert_eq!(jailed.exit_reason, ExitReason::GuestExit);
    assert_eq!(jailed.seccomp, "on");
    let (_, plain) = run(&["--cmdline", CPU, "--timeout", "60"]);
    assert!(!plain.jailed);
    assert_eq!(checksum(&jailed), checksum(&plain));
    assert_gone(pid);
}

/// The first child of `pid` (the jailed VMM), waiting for it to appear.
fn jailed_child(pid: u32) -> u32 {
    let path = format!("/proc/{pid}/task/{pid}/children");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(c) = text.split_whitespace().next() {
            return c.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "no jailed child of {pid}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn status_field(pid: u32, key: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn ns(pid: &str, kind: &str) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap()
}

fn a_jailed_vmm_runs_as_the_given_ids_in_its_own_namespaces() {
    let (mut child, mut stdout) =
        start_idle(&["--jail", "--jail-uid", "4242", "--jail-gid", "4243"]);
    let pid = child.id();
    let vmm = jailed_child(pid);
    assert_eq!(status_field(vmm, "Uid:"), "4242 4242 4242 4242");
    assert_eq!(status_field(vmm, "Gid:"), "4243 4243 4243 4243");
    assert_eq!(status_field(vmm, "Groups:"), "");
    assert_eq!(status_field(vmm, "CapEff:"), "0000000000000000");
    assert_eq!(status_field(vmm, "NoNewPrivs:"), "1");
    assert_eq!(status_field(vmm, "Seccomp:"), "2", "filtered");
    assert_eq!(
        status_field(vmm, "NSpid:"),
        format!("{vmm} 1"),
        "pid 1 of its own"
    );
    for kind in ["pid_for_children", "mnt", "net"] {
        let mine = ns(
            "self",
            if kind == "pid_for_children" {
                "pid"
            } else {
                kind
            },
        );
        let theirs = ns(
            &vmm.to_string(),
            if kind == "pid_for_children" {
                "pid"
            } else {
                kind
            },
        );
        assert_ne!(mine, theirs, "{kind} namespace shared");
    }
    let root = PathBuf::from(format!("/proc/{vmm}/root"));
    assert_eq!(
        names(&root),
        BTreeSet::from(["dev".into(), "kernel".into()])
    );
    assert_eq!(
        names(&root.join("dev")),
        BTreeSet::from(["kvm".into(), "null".into()])
    );
    let cgroups = std::fs::read_to_string(format!("/proc/{vmm}/cgroup")).unwrap();
    let name = format!("vclab-{}{pid}", state::PREFIX);
    assert!(cgroups.contains(&name), "{cgroups}");
    for t in traces(pid) {
        assert!(t.exists(), "{} missing while the jail runs", t.display());
    }
    // SAFETY: kill with our child's pid and a valid signal.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{status:?}");
    let r = report(&rest).expect("a report after SIGTERM");
    assert!(r.jailed && r.exit_reason == ExitReason::Signal, "{r:?}");
    assert_gone(pid);
}

/// Whether `pid` is gone or a zombie (PID 1 of this host reaps late).
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => state::start_time(&stat).is_none() || stat.contains(") Z "),
    }
}

fn a_killed_jailing_vmm_is_swept_by_the_next_run() {
    let (mut child, _stdout) = start_idle(&["--jail"]);
    let pid = child.id();
    let vmm = jailed_child(pid);
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dead(vmm) {
        assert!(
            Instant::now() < deadline,
            "the jailed VMM outlived its parent"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // What a SIGKILL leaves: the entry and the cgroups, no process.
    assert!(traces(pid)[0].exists(), "the entry is left for the sweep");
    let (out, r) = run(&["--jail", "--cmdline", CPU, "--timeout", "60"]);
    assert!(out.status.success() && r.jailed, "{r:?}");
    assert_gone(pid);
}
