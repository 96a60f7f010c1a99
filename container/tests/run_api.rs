//! Tier 2: the library entry point the compare harness uses,
//! `vclab_container::run`, on real namespaces and cgroups (needs root).
//! Several containers run at once from threads of this (multi-threaded)
//! process; then a leak check, in the same test so it runs last.

mod common;

use std::path::Path;

use common::{busybox_rootfs, need_root};
use vclab_container::cgroups::{detect_mode, CgroupMode, Placement};
use vclab_container::{run, ContainerConfig, Error};

fn config(rootfs: &Path, id: String, script: &str) -> ContainerConfig {
    let mut cfg = ContainerConfig::new(rootfs, vec!["/bin/sh".into(), "-c".into(), script.into()]);
    cfg.id = Some(id);
    cfg
}

#[test]
fn run_api_reports_and_cleans_up() {
    need_root();
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(tmp.path());
    let prefix = format!("api{}-", std::process::id());

    let reports: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let cfg = config(&rootfs, format!("{prefix}{i}"), &format!("exit {i}"));
                s.spawn(move || run(&cfg))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, r) in reports.iter().enumerate() {
        let r = r.as_ref().unwrap_or_else(|e| panic!("run {i}: {e}"));
        assert_eq!(r.exit_code, i as i32);
        assert_eq!(r.signal, None);
        assert!(!r.oom_killed);
        assert!(r.start_monotonic_ns < r.exec_monotonic_ns);
        assert!(r.exec_monotonic_ns < r.exit_monotonic_ns);
        if detect_mode() != CgroupMode::None {
            assert!(r.cpu_usage_ns.is_some_and(|n| n > 0), "{r:?}");
            assert!(r.memory_peak_bytes.is_some_and(|n| n > 0), "{r:?}");
        }
        // Production detection: v1 and hybrid hosts migrate (and time it),
        // pure v2 hosts clone into the cgroup.
        match detect_mode() {
            CgroupMode::V1 | CgroupMode::Hybrid => {
                assert_eq!(r.cgroup_placement, Placement::Migrated, "{r:?}");
                assert!(r.cgroup_attach_ns > 0, "{r:?}");
            }
            CgroupMode::V2 => {
                assert_eq!(r.cgroup_placement, Placement::CloneInto, "{r:?}");
                assert_eq!(r.cgroup_attach_ns, 0, "{r:?}");
            }
            CgroupMode::None => assert_eq!(r.cgroup_placement, Placement::None),
        }
    }

    // Killed by a signal under --init: 128+N and the signal.
    let mut cfg = config(&rootfs, format!("{prefix}kill"), "kill -KILL $$");
    cfg.init = true;
    let r = run(&cfg).unwrap();
    assert_eq!((r.exit_code, r.signal), (137, Some(9)));

    // A missing command is an error with exit code 127, naming the command.
    let cfg = ContainerConfig::new(&rootfs, vec!["not-here".into()]);
    let err = run(&cfg).unwrap_err();
    assert_eq!(err.exit_code(), 127, "{err}");
    assert!(err.to_string().contains("not-here"));

    // A failing set-up step (a working directory that cannot exist) is
    // reported as such and leaves nothing behind.
    let mut cfg = config(&rootfs, format!("{prefix}cwd"), "true");
    cfg.cwd = "/bin/busybox/nope".into();
    let err = run(&cfg).unwrap_err();
    assert!(matches!(err, Error::Process(_)), "{err}");
    assert!(err.to_string().contains("/bin/busybox/nope"), "{err}");

    common::assert_nothing_left(&prefix);
}
