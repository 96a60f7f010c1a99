//! Docker's default seccomp profile (moby `profiles/seccomp/default.json`,
//! with the calls moby#47341 added for Linux 6.5–6.7), for x86_64, as a
//! table: the calls every container may make, the groups a capability
//! enables, and the argument conditions (`clone` without namespace flags,
//! `socket` without AF_VSOCK, the harmless `personality` values). Everything
//! else fails with EPERM; `clone3` fails with ENOSYS without CAP_SYS_ADMIN,
//! so that libc falls back to `clone`, whose flags the filter can inspect.
//! The calls i386, arm and others have and x86_64 has not are left out.

use super::{Action, ArgCmp, Op, Resolved, Rule};
use crate::caps::CapSet;

/// When a group applies.
#[derive(Clone, Copy)]
enum When {
    /// Always.
    Always,
    /// When the container holds this capability (number).
    With(u32),
    /// When it does not.
    Without(u32),
}

/// A set of calls with one action, condition and argument check. The
/// numbers are resolved from the names when the launcher is built, so the
/// default profile reads no name table at run time (its pages stay out of
/// the launcher's resident set).
struct Group {
    nrs: &'static [u16],
    action: Action,
    when: When,
    args: &'static [ArgCmp],
}

const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_SYS_MODULE: u32 = 16;
const CAP_SYS_RAWIO: u32 = 17;
const CAP_SYS_CHROOT: u32 = 18;
const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_PACCT: u32 = 20;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_BOOT: u32 = 22;
const CAP_SYS_NICE: u32 = 23;
const CAP_SYS_TIME: u32 = 25;
const CAP_SYS_TTY_CONFIG: u32 = 26;
const CAP_SYSLOG: u32 = 34;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// The namespace flags of `clone` (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC,
/// NEWUSER, NEWPID, NEWNET): Docker's mask 2114060288.
pub const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// AF_VSOCK, refused as `socket`'s domain.
const AF_VSOCK: u64 = 40;

const fn arg0(op: Op, value: u64) -> ArgCmp {
    ArgCmp {
        index: 0,
        op,
        value,
    }
}

/// The calls every container may make.
const ALLOWED: &[u16] = &super::syscalls::const_numbers([
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "arch_prctl",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "clock_adjtime",
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchownat",
    "fcntl",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstatfs",
    "fsync",
    "ftruncate",
    "futex",
    "futex_requeue",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getgroups",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresuid",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "modify_ldt",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedsend",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "process_vm_readv",
    "process_vm_writev",
    "pselect6",
    "ptrace",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recvfrom",
    "recvmmsg",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "sendfile",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsuid",
    "setgid",
    "setgroups",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setresgid",
    "setresuid",
    "setreuid",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "socketpair",
    "splice",
    "stat",
    "statfs",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_settime",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
    "times",
    "tkill",
    "truncate",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "write",
    "writev",
]);

const ALLOW: Action = Action::Allow;

/// The profile: the always-allowed calls, then the conditional groups in
/// Docker's order.
const GROUPS: &[Group] = &[
    Group {
        nrs: ALLOWED,
        action: ALLOW,
        when: When::Always,
        args: &[],
    },
    Group {
        nrs: &super::syscalls::const_numbers(["socket"]),
        action: ALLOW,
        when: When::Always,
        args: &[arg0(Op::Ne, AF_VSOCK)],
    },
    // personality(PER_LINUX), (PER_LINUX32), (UNAME26), (UNAME26|PER_LINUX32), query.
    Group {
        nrs: &super::syscalls::const_numbers(["personality"]),
        action: ALLOW,
        when: When::Always,
        args: &[arg0(Op::Eq, 0)],
    },
    Group {
        nrs: &super::syscalls::const_numbers(["personality"]),
        action: ALLOW,
        when: When::Always,
        args: &[arg0(Op::Eq, 8)],
    },
    Group {
        nrs: &super::syscalls::const_numbers(["personality"]),
        action: ALLOW,
        when: When::Always,
        args: &[arg0(Op::Eq, 0x2_0000)],
    },
    Group {
        nrs: &super::syscalls::const_numbers(["personality"]),
        action: ALLOW,
        when: When::Always,
        args: &[arg0(Op::Eq, 0x2_0008)],
    },
    Group {
        nrs: &super::syscalls::const_numbers(["personality"]),
        action: ALLOW,
        when: When::Always,
        args: &[arg0(Op::Eq, 0xffff_ffff)],
    },
    Group {
        nrs: &super::syscalls::const_numbers(["open_by_handle_at"]),
        action: ALLOW,
        when: When::With(CAP_DAC_READ_SEARCH),
        args: &[],
    },
    Group {
        nrs: &super::syscalls::const_numbers([
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount2",
            "unshare",
        ]),
        action: ALLOW,
        when: When::With(CAP_SYS_ADMIN),
        args: &[],
    },
    Group {
        nrs: &super::syscalls::const_numbers(["clone"]),
        action: ALLOW,
        when: When::Without(CAP_SYS_ADMIN),
        args: &[arg0(Op::MaskedEq(CLONE_NAMESPACE_FLAGS), 0)],
    },
    Group {
        nrs: &super::syscalls::const_numbers(["clone3"]),
        action: Action::Errno(libc::ENOSYS as u32),
        when: When::Without(CAP_SYS_ADMIN),
        args: &[],
    },
    Group {
        nrs: &super::syscalls::const_numbers(["reboot"]),
        action: ALLOW,
        when: When::With(CAP_SYS_BOOT),
        args: &[],
    },
    Group {
        nrs: &super::syscalls::const_numbers(["chroot"]),
        action: ALLOW,
        when: When::With(CAP_SYS_CHROOT),
        args: &[],
    },
    Group {
        nrs: &super::syscalls::const_numbers(["delete_module", "init_module", "finit_module"]),
        action: ALLOW,
        when: When::With(CAP_SYS_MODULE),
        args: &[],
    },
    Group {
        nrs: &super::syscalls::const_numbers(["acct"]),
        action: ALLOW,
        when: When::With(CAP_SYS_PACCT),
        args: &[],
    },
    Group {
        nrs: &super::syscalls::const_numbers([
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ]),
        action: ALLOW,
        when: When::With(CAP_SYS_PTRACE),
        args: &[],
    },
    Group {
        nrs: &super::syscalls::const_numbers(["iopl", "ioperm"]),
        action: ALLOW,
        when: When::With(CAP_SYS_RAWIO),
        args: &[],
    },
    Group {
        nrs: &super::syscalls::const_numbers(["settimeofday", "clock_settime"]),
        action: ALLOW,
        when: When::With(CAP_SYS_TIME),
        args: &[],
    },
    Group {
        nrs: &super::syscalls::const_numbers(["vhangup"]),
        action: ALLOW,
        when: When::With(CAP_SYS_TTY_CONFIG),
        args: &[],
    },
    Group {
        nrs: &super::syscalls::const_numbers([
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ]),
        action: ALLOW,
        when: When::With(CAP_SYS_NICE),
        args: &[],
    },
    Group {
        nrs: &super::syscalls::const_numbers(["syslog"]),
        action: ALLOW,
        when: When::With(CAP_SYSLOG),
        args: &[],
    },
    Group {
        nrs: &super::syscalls::const_numbers(["bpf"]),
        action: ALLOW,
        when: When::With(CAP_BPF),
        args: &[],
    },
    Group {
        nrs: &super::syscalls::const_numbers(["perf_event_open"]),
        action: ALLOW,
        when: When::With(CAP_PERFMON),
        args: &[],
    },
];

/// Docker's default profile for a container holding `caps`.
pub fn resolve(caps: CapSet) -> Resolved {
    let mut rules = Vec::with_capacity(ALLOWED.len() + 64);
    for g in GROUPS {
        let applies = match g.when {
            When::Always => true,
            When::With(cap) => caps.contains(cap),
            When::Without(cap) => !caps.contains(cap),
        };
        if !applies {
            continue;
        }
        for &nr in g.nrs {
            rules.push(Rule {
                nr: i64::from(nr),
                action: g.action,
                args: g.args.to_vec(),
            });
        }
    }
    Resolved {
        default: Action::Errno(libc::EPERM as u32),
        rules,
        flags: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_matches_the_names() {
        let nr = |n: &str| super::super::syscalls::number(n).unwrap();
        assert_eq!(i64::from(ALLOWED[0]), nr("accept"));
        assert!(ALLOWED.contains(&(nr("execve") as u16)));
        let mut sorted = ALLOWED.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ALLOWED.len(), "a call is listed twice");
    }

    #[test]
    fn capabilities_choose_the_groups() {
        let nr = |n: &str| super::super::syscalls::number(n).unwrap();
        let has = |r: &Resolved, n: &str| r.rules.iter().any(|x| x.nr == nr(n));
        let docker = resolve(CapSet::docker_default());
        assert!(has(&docker, "getpid") && has(&docker, "chroot"));
        for blocked in [
            "mount",
            "unshare",
            "setns",
            "keyctl",
            "reboot",
            "init_module",
            "swapon",
        ] {
            assert!(!has(&docker, blocked), "{blocked} allowed");
        }
        let clone3 = docker.rules.iter().find(|r| r.nr == nr("clone3")).unwrap();
        assert_eq!(clone3.action, Action::Errno(38));
        let admin = resolve(CapSet(CapSet::docker_default().0 | 1 << CAP_SYS_ADMIN));
        assert!(has(&admin, "mount") && has(&admin, "unshare"));
        assert!(admin
            .rules
            .iter()
            .filter(|r| r.nr == nr("clone"))
            .all(|r| r.args.is_empty() && r.action == Action::Allow));
        assert_eq!(docker.default, Action::Errno(1));
    }
}
