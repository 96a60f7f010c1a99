//! Tests of [`Spawned`] on real process trees.

use super::child::try_reap;
use super::*;

fn spec(args: &[&str]) -> SpawnSpec {
    SpawnSpec {
        argv: args.iter().map(OsString::from).collect(),
        ..SpawnSpec::default()
    }
}

fn run(args: &[&str], timeout: Duration, policy: Policy) -> Result<Observed, SpawnError> {
    Spawned::spawn(&spec(args))?.run(policy, timeout)
}

#[test]
fn observes_a_real_process_tree() {
    // A shell that allocates ~32 MiB in a child and prints two lines.
    let o = run(
        &[
            "/bin/sh",
            "-c",
            "echo first; head -c 33554432 /dev/zero | (x=$(cat | tr -d '\\000'); echo done); exit 3",
        ],
        Duration::from_secs(30),
        Policy::RunToExit,
    )
    .unwrap();
    assert_eq!(o.exit_code, 3);
    assert_eq!(o.lines.first().map(|(_, l)| l.as_str()), Some("first"));
    assert_eq!(o.last_line(), Some("done"));
    assert!(o.line_time("first") <= o.line_time("done"));
    assert!(o.total >= o.line_time("done").unwrap());
    assert!(o.launch_monotonic_ns > 0);
    assert!(o.peak_rss_kib.unwrap() > 1024, "{:?}", o.peak_rss_kib);
    assert!(o.cpu_user + o.cpu_sys > Duration::ZERO);
    assert_eq!(o.leftover, 0);
}

#[test]
fn private_mount_ns_hides_the_cgroup2_mount_from_the_child_only() {
    let mut s = spec(&["/bin/cat", "/proc/self/mounts"]);
    s.private_mount_ns = true;
    let o = Spawned::spawn(&s)
        .unwrap()
        .run(Policy::RunToExit, Duration::from_secs(10))
        .unwrap();
    assert_eq!(o.exit_code, 0, "{}", o.stderr);
    let unified = " /sys/fs/cgroup/unified ";
    assert!(!o.lines.iter().any(|(_, l)| l.contains(unified)));
    let ours = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let plain = run(
        &["/bin/cat", "/proc/self/mounts"],
        Duration::from_secs(10),
        Policy::RunToExit,
    )
    .unwrap();
    assert_eq!(
        plain.lines.iter().any(|(_, l)| l.contains(unified)),
        ours.contains(unified)
    );
}

#[test]
fn pins_the_instance_to_one_cpu() {
    let mut s = spec(&["/bin/sh", "-c", "grep Cpus_allowed_list /proc/self/status"]);
    s.cpu = Some(0);
    let o = Spawned::spawn(&s)
        .unwrap()
        .run(Policy::RunToExit, Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        o.last_line().map(|l| l.split_whitespace().last()),
        Some(Some("0"))
    );
}

#[test]
fn counts_and_kills_a_leftover_daemon() {
    // The shell starts a background sleeper and exits at once: a process
    // that outlives its launcher, as a daemon would.
    let o = run(
        &["/bin/sh", "-c", "sleep 30 & sleep 0.1; exit 0"],
        Duration::from_secs(10),
        Policy::RunToExit,
    )
    .unwrap();
    assert_eq!(o.leftover, 1);
    let plain = run(
        &["/bin/sh", "-c", "sleep 0.05; exit 0"],
        Duration::from_secs(10),
        Policy::RunToExit,
    )
    .unwrap();
    assert_eq!(plain.leftover, 0);
}

#[test]
fn peak_memory_of_a_grandchild_is_seen() {
    let o = run(
        &[
            "/bin/sh",
            "-c",
            "python3 -c \"x = b'a' * (96 << 20)\"; exit 0",
        ],
        Duration::from_secs(30),
        Policy::RunToExit,
    )
    .unwrap();
    assert_eq!(o.exit_code, 0, "{}", o.stderr);
    let kib = o.peak_rss_kib.unwrap();
    assert!(kib >= 96 * 1024, "peak {kib} KiB");
    assert!(kib < 400 * 1024, "peak {kib} KiB");
}

#[test]
fn stops_at_the_marker_line() {
    let t = Instant::now();
    let o = run(
        &[
            "sh",
            "-c",
            "echo before; echo MARK here; sleep 30; echo after",
        ],
        Duration::from_secs(20),
        Policy::StopAtMarker("MARK"),
    )
    .unwrap();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(o.line_time("MARK here").is_some());
    assert!(o.line_time("after").is_none());
}

#[test]
fn holds_until_told_to_stop() {
    let mut s = Spawned::spawn(&spec(&[
        "sh",
        "-c",
        "trap 'echo bye; exit 7' TERM; echo ready; while :; do sleep 0.01; done",
    ]))
    .unwrap();
    let t = s.wait_for_line("ready", Duration::from_secs(10)).unwrap();
    assert!(t < Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(50));
    s.poll(Duration::ZERO).unwrap();
    assert!(!s.exited(), "a held instance keeps running");
    s.sample_full();
    assert!(s.sampler().last_pss.unwrap() > 0);
    let pid = s.pid();
    let o = s.stop(Signal::SIGTERM, Duration::from_secs(5)).unwrap();
    assert_eq!(o.exit_code, 7, "{o:?}");
    assert_eq!(o.last_line(), Some("bye"));
    assert!(tree::state(pid).is_none(), "reaped");
}

#[test]
fn an_instance_that_exits_before_its_line_is_an_error() {
    let mut s = Spawned::spawn(&spec(&["sh", "-c", "echo nope; exit 4"])).unwrap();
    let e = s
        .wait_for_line("ready", Duration::from_secs(10))
        .unwrap_err();
    assert!(matches!(e, SpawnError::ExitedEarly { code: 4, .. }), "{e}");
}

#[test]
fn dropping_kills_the_tree() {
    let s = Spawned::spawn(&spec(&["sh", "-c", "sleep 30 & sleep 30"])).unwrap();
    let root = s.pid();
    std::thread::sleep(Duration::from_millis(100));
    let all = tree::tree(root);
    assert_eq!(all.len(), 3, "{all:?}");
    drop(s);
    std::thread::sleep(Duration::from_millis(100));
    for p in all {
        assert!(
            !matches!(tree::state(p), Some(c) if c != 'Z'),
            "{p} still runs"
        );
    }
}

#[test]
fn an_instance_dies_with_the_thread_that_spawned_it() {
    // PR_SET_PDEATHSIG: when the spawning thread (here a short-lived one,
    // standing for the harness) ends, the instance is killed.
    let pid = std::thread::spawn(|| {
        let s = Spawned::spawn(&spec(&["sleep", "30"])).unwrap();
        let pid = s.pid();
        std::mem::forget(s);
        pid
    })
    .join()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut status = None;
    while Instant::now() < deadline {
        if let Ok(Some(r)) = try_reap(pid) {
            status = Some(r.0);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(status, Some(128 + libc::SIGKILL));
}

#[test]
fn an_ignored_sigint_is_not_passed_on() {
    // The harness ignores SIGINT (as when a non-interactive shell starts it
    // in the background); the instance must still stop on it.
    // SAFETY: setting SIG_IGN installs no handler; the test restores the default after.
    unsafe { nix::sys::signal::signal(Signal::SIGINT, nix::sys::signal::SigHandler::SigIgn) }
        .unwrap();
    let s = Spawned::spawn(&spec(&["sleep", "30"]));
    // SAFETY: as above, back to the default disposition.
    unsafe { nix::sys::signal::signal(Signal::SIGINT, nix::sys::signal::SigHandler::SigDfl) }
        .unwrap();
    let o = s
        .unwrap()
        .stop(Signal::SIGINT, Duration::from_secs(5))
        .unwrap();
    assert_eq!(o.exit_code, 128 + libc::SIGINT);
}

#[test]
fn kills_on_timeout() {
    let t = Instant::now();
    let e = run(
        &["/bin/sleep", "30"],
        Duration::from_millis(200),
        Policy::RunToExit,
    )
    .unwrap_err();
    assert!(matches!(e, SpawnError::Timeout { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn missing_program_is_an_error() {
    assert!(matches!(
        run(
            &["/nonexistent/vclab-nothing"],
            Duration::from_secs(1),
            Policy::RunToExit
        ),
        Err(SpawnError::Spawn { .. })
    ));
    assert!(matches!(
        Spawned::spawn(&SpawnSpec::default()),
        Err(SpawnError::Empty)
    ));
}
