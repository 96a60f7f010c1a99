//! Tier 2: a VM run leaves no thread and no file descriptor behind, whatever
//! way it ends. Alone in its test binary so no other test's threads count.

mod common;

use std::time::Duration;

use common::*;

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[test]
fn runs_leak_no_threads_or_fds() {
    let dir = tempfile::tempdir().unwrap();
    let guests = [
        assemble(dir.path(), "exit", READY_LINE_EXIT),
        assemble(dir.path(), "hang", HANG),
        assemble(dir.path(), "triple", TRIPLE_FAULT),
    ];
    // Warm up once: the kick signal handler and std's lazy state.
    let (cfg, _, _) = config(&guests[0]);
    vclab_vmm::run(&cfg).unwrap();
    let fds = count("/proc/self/fd");
    let tasks = count("/proc/self/task");
    for kernel in &guests {
        for vcpus in [1, 3] {
            let (mut cfg, _, _) = config(kernel);
            cfg.vcpus = vcpus;
            cfg.timeout = Some(Duration::from_millis(300));
            let r = vclab_vmm::run(&cfg).unwrap();
            assert_ne!(r.exit_reason, vclab_vmm::ExitReason::InternalError, "{r:?}");
            assert_eq!(count("/proc/self/fd"), fds, "fds after {kernel:?} x{vcpus}");
            assert_eq!(
                count("/proc/self/task"),
                tasks,
                "threads after {kernel:?} x{vcpus}"
            );
        }
    }
}
