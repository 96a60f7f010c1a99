//! Tier 2: the cgroup v2 path on the real cgroup2 hierarchy (needs root).
//! A pure v2 host mounts it at /sys/fs/cgroup; a hybrid host (the lab's) at
//! /sys/fs/cgroup/unified, without controllers, but it still takes cgroups
//! and `clone3(CLONE_INTO_CGROUP)`. `run_on` drives the v2 writer there while
//! production detection keeps the host's own mode. One test, so that the
//! leak check at its end runs last.

mod common;

use std::path::{Path, PathBuf};

use common::{busybox_rootfs, need_root};
use vclab_container::cgroups::{detect_mode, own_path, CgroupMode, Host, Placement};
use vclab_container::namespaces::Namespace;
use vclab_container::{run_on, ContainerConfig, RunReport};

/// The mount point of the cgroup2 hierarchy.
fn cgroup2_root() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    mounts
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && f[2] == "cgroup2").then(|| PathBuf::from(f[1]))
        })
        .expect("a cgroup2 mount (pure v2 at /sys/fs/cgroup, hybrid at /sys/fs/cgroup/unified)")
}

/// The cgroup path (as /proc/PID/cgroup shows it outside a cgroup namespace)
/// the container `id` must sit in: `vclab-<id>` below this process's own.
fn expected_path(id: &str) -> String {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let own = own_path(&own, "").expect("a 0:: line in /proc/self/cgroup");
    format!("{}/vclab-{id}", own.trim_end_matches('/'))
}

/// A container that exits 0 only if it sits in `vclab-<id>` (no cgroup
/// namespace, so /proc/self/cgroup shows the host's path) and its PID 1 holds
/// no descriptor of a host cgroup directory; 3 and 4 otherwise.
fn checking_config(rootfs: &Path, id: &str, init: bool) -> ContainerConfig {
    let want = format!("0::{}", expected_path(id));
    let script = format!(
        "test \"$(grep '^0::' /proc/self/cgroup)\" = '{want}' || {{ cat /proc/self/cgroup >&2; exit 3; }}; \
         for f in /proc/1/fd/*; do readlink \"$f\"; done | grep vclab- >&2 && exit 4; exit 0"
    );
    let mut cfg = ContainerConfig::new(rootfs, vec!["/bin/sh".into(), "-c".into(), script]);
    cfg.id = Some(id.into());
    cfg.init = init;
    cfg.namespaces.retain(|ns| *ns != Namespace::Cgroup);
    cfg
}

/// Makes `clone3` fail with ENOSYS in the calling thread (and its children),
/// as Docker's default seccomp profile does. Needs CAP_SYS_ADMIN (root)
/// instead of no_new_privs. The syscall number is checked without the
/// architecture: 435 is clone3 in every table this test can run with.
fn deny_clone3_in_this_thread() {
    let stmt = |code: u32, k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let filter = [
        // A = seccomp_data.nr (offset 0).
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
        stmt(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            libc::SYS_clone3 as u32,
            0,
            1,
        ),
        stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
            0,
            0,
        ),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW, 0, 0),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points to `filter`, both alive for the call; without
    // SECCOMP_FILTER_FLAG_TSYNC the filter binds this thread only.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        )
    };
    assert_eq!(rc, 0, "seccomp: {}", std::io::Error::last_os_error());
    // SAFETY: a clone3 with a null argument only returns an error here.
    let probe = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0) };
    assert_eq!(
        (probe, nix::errno::Errno::last()),
        (-1, nix::errno::Errno::ENOSYS),
        "the filter denies clone3"
    );
}

fn assert_ok(r: &RunReport, placement: Placement, root: &Path) {
    assert_eq!(
        r.exit_code, 0,
        "3: not in vclab-<id>, 4: PID 1 holds a cgroup fd: {r:?}"
    );
    assert_eq!(r.cgroup_mode, CgroupMode::V2, "{r:?}");
    assert_eq!(r.cgroup_placement, placement, "{r:?}");
    match placement {
        Placement::CloneInto => assert_eq!(r.cgroup_attach_ns, 0, "{r:?}"),
        _ => assert!(r.cgroup_attach_ns > 0, "{r:?}"),
    }
    let dir = root.join(expected_path(&r.id).trim_start_matches('/'));
    assert!(!dir.exists(), "cgroup {} left after the run", dir.display());
}

#[test]
fn v2_clone_into_cgroup_and_fallback() {
    need_root();
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(tmp.path());
    let root = cgroup2_root();
    let host = Host::v2_at(&root);
    let prefix = format!("v2t{}-", std::process::id());
    let id = |name: &str| format!("{prefix}{name}");
    // The launcher's own detection is untouched: a hybrid host stays hybrid.
    if root != Path::new("/sys/fs/cgroup") {
        assert_eq!(detect_mode(), CgroupMode::Hybrid);
    }

    // Born in vclab-<id>: clone3 with CLONE_INTO_CGROUP, no migration.
    let r = run_on(&checking_config(&rootfs, &id("born"), false), &host).unwrap();
    assert_ok(&r, Placement::CloneInto, &root);
    // The same under --init, whose PID 1 never execs.
    let r = run_on(&checking_config(&rootfs, &id("init"), true), &host).unwrap();
    assert_ok(&r, Placement::CloneInto, &root);

    // clone3 refused (ENOSYS from a seccomp filter, as in Docker): clone,
    // then the cgroup.procs write, on the same v2 cgroup.
    let cfg = checking_config(&rootfs, &id("fallback"), false);
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            deny_clone3_in_this_thread();
            run_on(&cfg, &host)
        })
        .join()
        .unwrap()
    })
    .unwrap();
    assert_ok(&r, Placement::Migrated, &root);

    // Leak check: no vclab cgroup in the unified hierarchy, no state.
    let cg = common::dirs_named(&root, "vclab", 6);
    assert!(cg.is_empty(), "cgroups left: {cg:?}");
    common::assert_nothing_left(&prefix);
}
