//! What each VMM thread may call once the guest runs: one table per thread kind, each entry a
//! syscall and, where it matters, the arguments it may take (any one of the patterns). The
//! tables were found with `strace -f` over the unikernel's kernels, its idle guest stopped by
//! SIGTERM, `--timeout` and the fault modes, on 1 and 2 vCPUs, and are checked by
//! `tests/seccomp.rs` under `SECCOMP_RET_KILL_PROCESS` (Firecracker keeps the same kind of
//! per-thread lists in `resources/seccomp/*.json`).
//!
//! A snapshotting run (`--snapshot-at ready`, 1 vCPU) gives its vCPU-on-main thread the extra
//! calls of [`snapshot`]: the `KVM_GET_*` reads of the vCPU and VM state (exact request numbers)
//! and the writes of the snapshot files, which were created before the filter
//! (`snapshot::format::prepare`): `ftruncate`, `lseek`, `pwrite64` and the one `rename` of the
//! manifest into place. Without `--snapshot-at` none of these is allowed.
//!
//! Not allowed anywhere: opening files (the report's /proc files are opened before the filter),
//! creating processes or threads, sockets, executable mappings (`mmap`/`mprotect` with
//! `PROT_EXEC`), changing signal handlers, any ioctl but the KVM requests listed.

use std::collections::BTreeMap;

use seccompiler::{SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};

/// The threads that get a filter of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thread {
    /// A vCPU thread: KVM_RUN and the exit handling (devices, lines, irqfd writes).
    Vcpu,
    /// The main thread of a VM with vCPU threads: waits, stops and joins them, reports.
    Main,
    /// The main thread of a 1-vCPU VM, which runs its vCPU itself and then reports: both.
    VcpuOnMain,
    /// [`Thread::VcpuOnMain`] of a VM that takes a snapshot at its ready signal.
    VcpuOnMainSnapshot,
    /// The I/O thread of a VM with virtio devices: waits on the queue eventfds and does the
    /// disk reads, writes and flushes.
    Io,
}

/// Syscall number → the argument patterns it may be called with (empty: any arguments).
pub type Rules = BTreeMap<i64, Vec<SeccompRule>>;

/// An error in a rule of the tables (a condition seccompiler refuses).
#[derive(Debug, thiserror::Error)]
#[error("invalid seccomp rule for syscall {nr}: {err}")]
pub struct Error {
    /// The syscall.
    pub nr: i64,
    /// What seccompiler said.
    pub err: seccompiler::BackendError,
}

/// `ioctl` request: `_IO(KVMIO, 0x80)` (linux/kvm.h).
pub const KVM_RUN: u64 = 0xae80;
/// `ioctl` request: `_IOR(KVMIO, 0x81, struct kvm_regs)` (linux/kvm.h); the run loop records
/// where each vCPU stopped.
pub const KVM_GET_REGS: u64 =
    (2 << 30) | ((std::mem::size_of::<kvm_bindings::kvm_regs>() as u64) << 16) | (0xae << 8) | 0x81;

/// `ioctl` request number `_IOC(dir, KVMIO, nr, size)` (asm-generic/ioctl.h).
const fn kvm_ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | (0xae << 8) | nr
}
/// `_IOR(KVMIO, nr, T)`.
const fn kvm_ior<T>(nr: u64) -> u64 {
    kvm_ioc(2, nr, std::mem::size_of::<T>())
}
/// `_IOWR(KVMIO, nr, T)`.
const fn kvm_iowr<T>(nr: u64) -> u64 {
    kvm_ioc(3, nr, std::mem::size_of::<T>())
}

/// The `ioctl` requests a snapshot makes (linux/kvm.h): the vCPU's state, then the VM's.
pub const SNAPSHOT_IOCTLS: [u64; 16] = {
    use kvm_bindings as k;
    [
        kvm_ior::<k::kvm_mp_state>(0x98),    // KVM_GET_MP_STATE
        kvm_ior::<k::kvm_sregs>(0x83),       // KVM_GET_SREGS
        kvm_ior::<k::kvm_fpu>(0x8c),         // KVM_GET_FPU
        kvm_ior::<k::kvm_xsave>(0xa4),       // KVM_GET_XSAVE
        kvm_ior::<k::kvm_xsave>(0xcf),       // KVM_GET_XSAVE2
        kvm_ior::<k::kvm_xcrs>(0xa6),        // KVM_GET_XCRS
        kvm_ior::<k::kvm_lapic_state>(0x8e), // KVM_GET_LAPIC
        kvm_iowr::<k::kvm_msrs>(0x88),       // KVM_GET_MSRS
        kvm_iowr::<k::kvm_cpuid2>(0x91),     // KVM_GET_CPUID2
        kvm_ioc(0, 0xa3, 0),                 // KVM_GET_TSC_KHZ
        kvm_ior::<k::kvm_vcpu_events>(0x9f), // KVM_GET_VCPU_EVENTS
        kvm_ioc(0, 0x03, 0),                 // KVM_CHECK_EXTENSION
        kvm_iowr::<k::kvm_irqchip>(0x62),    // KVM_GET_IRQCHIP
        kvm_ior::<k::kvm_pit_state2>(0x9f),  // KVM_GET_PIT2
        kvm_ior::<k::kvm_clock_data>(0x7c),  // KVM_GET_CLOCK
        kvm_ior::<k::kvm_debugregs>(0xa1),   // KVM_GET_DEBUGREGS
    ]
};

/// futex operations with the PRIVATE and CLOCK_REALTIME flags masked off.
const FUTEX_OP_MASK: u64 =
    !((libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME) as u64) & 0xffff_ffff;

/// One argument condition: `arg[index] == value` (32-bit compare).
fn eq(index: u8, value: u64) -> (u8, u64, u64) {
    (index, u64::from(u32::MAX), value)
}

/// One argument condition: `arg[index] & mask == value` (32-bit compare).
fn masked(index: u8, mask: u64, value: u64) -> (u8, u64, u64) {
    (index, mask, value)
}

/// A table under construction; `allow` with no patterns allows any arguments.
struct Table {
    rules: Rules,
    error: Option<Error>,
}

impl Table {
    fn new() -> Self {
        Table {
            rules: Rules::new(),
            error: None,
        }
    }

    /// Allows `nr` with any arguments.
    fn any(&mut self, nr: i64) -> &mut Self {
        self.rules.insert(nr, Vec::new());
        self
    }

    /// Allows `nr` when all conditions of one of `patterns` hold.
    fn when(&mut self, nr: i64, patterns: &[&[(u8, u64, u64)]]) -> &mut Self {
        for pattern in patterns {
            let rule = pattern
                .iter()
                .map(|&(index, mask, value)| {
                    let op = if mask == u64::from(u32::MAX) {
                        SeccompCmpOp::Eq
                    } else {
                        SeccompCmpOp::MaskedEq(mask)
                    };
                    SeccompCondition::new(index, SeccompCmpArgLen::Dword, op, value)
                })
                .collect::<Result<Vec<_>, _>>()
                .and_then(SeccompRule::new);
            match rule {
                // A syscall already allowed with any arguments stays so.
                Ok(rule) => match self.rules.get_mut(&nr) {
                    Some(existing) if existing.is_empty() => {}
                    Some(existing) => existing.push(rule),
                    None => {
                        self.rules.insert(nr, vec![rule]);
                    }
                },
                Err(err) => {
                    self.error.get_or_insert(Error { nr, err });
                }
            }
        }
        self
    }
}

/// What every filtered thread needs: memory (no executable mappings), locks, signal
/// returns, the clock, writes (console, lines, irqfd and wake-up eventfds, stderr) and
/// thread or process exit.
fn common(t: &mut Table) {
    let no_exec = masked(2, libc::PROT_EXEC as u64, 0);
    t.when(libc::SYS_mmap, &[&[no_exec]])
        .when(libc::SYS_mprotect, &[&[no_exec]])
        .any(libc::SYS_munmap)
        .any(libc::SYS_mremap)
        .any(libc::SYS_brk)
        .when(
            libc::SYS_madvise,
            &[
                &[eq(2, libc::MADV_DONTNEED as u64)],
                &[eq(2, libc::MADV_FREE as u64)],
            ],
        )
        .when(
            libc::SYS_futex,
            &[
                &[masked(1, FUTEX_OP_MASK, libc::FUTEX_WAIT as u64)],
                &[masked(1, FUTEX_OP_MASK, libc::FUTEX_WAKE as u64)],
                &[masked(1, FUTEX_OP_MASK, libc::FUTEX_WAIT_BITSET as u64)],
                &[masked(1, FUTEX_OP_MASK, libc::FUTEX_WAKE_BITSET as u64)],
            ],
        )
        .any(libc::SYS_sched_yield)
        .any(libc::SYS_rt_sigreturn)
        .any(libc::SYS_rt_sigprocmask)
        .any(libc::SYS_sigaltstack)
        .any(libc::SYS_clock_gettime)
        .any(libc::SYS_write)
        .any(libc::SYS_close)
        // A debug build checks that a descriptor is open before it closes it.
        .when(libc::SYS_fcntl, &[&[eq(1, libc::F_GETFD as u64)]])
        .any(libc::SYS_exit)
        .any(libc::SYS_exit_group);
}

/// The vCPU's own calls: KVM_RUN and KVM_GET_REGS on its fd.
fn vcpu(t: &mut Table) {
    t.when(
        libc::SYS_ioctl,
        &[&[eq(1, KVM_RUN)], &[eq(1, KVM_GET_REGS)]],
    );
}

/// The main thread's calls once the vCPU threads run: wait (ppoll on the wake-up eventfd,
/// then read it), kick each vCPU thread with `kick` (tgkill), sleep while joining, read the
/// pre-opened /proc files for the report.
fn main_thread(t: &mut Table, kick: i32) {
    t.any(libc::SYS_ppoll)
        .any(libc::SYS_read)
        .any(libc::SYS_getpid)
        .when(libc::SYS_tgkill, &[&[eq(2, kick as u64)]])
        .any(libc::SYS_clock_nanosleep)
        .any(libc::SYS_nanosleep);
}

/// The 1-vCPU main thread also deletes its `--timeout` timer and reads the /proc files.
fn vcpu_on_main(t: &mut Table) {
    t.any(libc::SYS_timer_delete).any(libc::SYS_read);
}

/// The snapshot at the ready signal: the state reads and the writes into the files made
/// before the filter (see the module doc).
fn snapshot(t: &mut Table) {
    let requests: Vec<[(u8, u64, u64); 1]> = SNAPSHOT_IOCTLS.iter().map(|&r| [eq(1, r)]).collect();
    let patterns: Vec<&[(u8, u64, u64)]> = requests.iter().map(|p| &p[..]).collect();
    t.when(libc::SYS_ioctl, &patterns)
        .any(libc::SYS_ftruncate)
        .any(libc::SYS_lseek)
        .any(libc::SYS_pwrite64)
        .any(libc::SYS_rename)
        .any(libc::SYS_renameat)
        .any(libc::SYS_renameat2);
}

/// The I/O thread's calls: wait on its epoll set, read the eventfds it was woken by, do the
/// guest's disk I/O on the image files opened before the filter (positioned reads and
/// writes, data flushes), signal the irqfd (`write`, common).
fn io_thread(t: &mut Table) {
    t.any(libc::SYS_epoll_wait)
        .any(libc::SYS_epoll_pwait)
        .any(libc::SYS_read)
        .any(libc::SYS_pread64)
        .any(libc::SYS_pwrite64)
        .any(libc::SYS_preadv)
        .any(libc::SYS_pwritev)
        .any(libc::SYS_fdatasync)
        .any(libc::SYS_fsync);
}

/// The rules of `thread`; `kick` is the signal that stops a vCPU thread.
pub fn rules(thread: Thread, kick: i32) -> Result<Rules, Error> {
    let mut t = Table::new();
    common(&mut t);
    match thread {
        Thread::Vcpu => vcpu(&mut t),
        Thread::Main => main_thread(&mut t, kick),
        Thread::VcpuOnMain => {
            vcpu(&mut t);
            vcpu_on_main(&mut t);
        }
        Thread::VcpuOnMainSnapshot => {
            vcpu(&mut t);
            vcpu_on_main(&mut t);
            snapshot(&mut t);
        }
        Thread::Io => io_thread(&mut t),
    }
    match t.error {
        Some(e) => Err(e),
        None => Ok(t.rules),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kvm_request_numbers_match_the_kernel_headers() {
        // linux/kvm.h: KVM_GET_REGS = _IOR(KVMIO, 0x81, struct kvm_regs), kvm_regs is 144 bytes.
        assert_eq!(KVM_GET_REGS, 0x8090_ae81);
        assert_eq!(KVM_RUN, 0xae80);
    }

    #[test]
    fn threads_get_what_they_need_and_no_more() {
        let kick = 34;
        let vcpu = rules(Thread::Vcpu, kick).unwrap();
        let main = rules(Thread::Main, kick).unwrap();
        let both = rules(Thread::VcpuOnMain, kick).unwrap();
        let io = rules(Thread::Io, kick).unwrap();
        assert!(io.contains_key(&libc::SYS_pread64) && !io.contains_key(&libc::SYS_ioctl));
        assert!(!vcpu.contains_key(&libc::SYS_pwrite64) && !both.contains_key(&libc::SYS_pread64));
        assert!(vcpu.contains_key(&libc::SYS_ioctl) && !main.contains_key(&libc::SYS_ioctl));
        assert!(main.contains_key(&libc::SYS_tgkill) && !vcpu.contains_key(&libc::SYS_tgkill));
        assert!(both.contains_key(&libc::SYS_ioctl) && both.contains_key(&libc::SYS_read));
        for r in [&vcpu, &main, &both, &io] {
            for nr in [
                libc::SYS_openat,
                libc::SYS_open,
                libc::SYS_execve,
                libc::SYS_clone,
                libc::SYS_clone3,
                libc::SYS_fork,
                libc::SYS_socket,
                libc::SYS_rt_sigaction,
                libc::SYS_ptrace,
                libc::SYS_mount,
            ] {
                assert!(!r.contains_key(&nr), "syscall {nr} must not be allowed");
            }
        }
        assert_eq!(
            vcpu[&libc::SYS_ioctl].len(),
            2,
            "KVM_RUN and KVM_GET_REGS only"
        );
        for r in [&vcpu, &main, &both, &io] {
            for nr in [libc::SYS_ftruncate, libc::SYS_rename, libc::SYS_renameat2] {
                assert!(!r.contains_key(&nr), "{nr} only with --snapshot-at");
            }
        }
    }

    #[test]
    fn a_snapshotting_vcpu_gets_the_state_reads_and_file_writes() {
        let snap = rules(Thread::VcpuOnMainSnapshot, 34).unwrap();
        assert_eq!(snap[&libc::SYS_ioctl].len(), 2 + SNAPSHOT_IOCTLS.len());
        assert!(snap.contains_key(&libc::SYS_ftruncate) && snap.contains_key(&libc::SYS_rename));
        assert!(!snap.contains_key(&libc::SYS_openat) && !snap.contains_key(&libc::SYS_unlink));
        // linux/kvm.h values, as strace prints them.
        assert!(SNAPSHOT_IOCTLS.contains(&0x8138_ae83), "KVM_GET_SREGS");
        assert!(SNAPSHOT_IOCTLS.contains(&0xc008_ae88), "KVM_GET_MSRS");
        assert!(SNAPSHOT_IOCTLS.contains(&0x8400_ae8e), "KVM_GET_LAPIC");
        assert!(SNAPSHOT_IOCTLS.contains(&0xc208_ae62), "KVM_GET_IRQCHIP");
    }
}
