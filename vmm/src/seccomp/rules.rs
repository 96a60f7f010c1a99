//! What each VMM thread may call once the guest runs: one table per thread kind, each entry a
//! syscall and, where it matters, the arguments it may take (any one of the patterns). The
//! tables were found with `strace -f` over the unikernel's kernels, its idle guest stopped by
//! SIGTERM, `--timeout` and the fault modes, on 1 and 2 vCPUs, and are checked by
//! `tests/seccomp.rs` under `SECCOMP_RET_KILL_PROCESS` (Firecracker keeps the same kind of
//! per-thread lists in `resources/seccomp/*.json`).
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
        assert!(vcpu.contains_key(&libc::SYS_ioctl) && !main.contains_key(&libc::SYS_ioctl));
        assert!(main.contains_key(&libc::SYS_tgkill) && !vcpu.contains_key(&libc::SYS_tgkill));
        assert!(both.contains_key(&libc::SYS_ioctl) && both.contains_key(&libc::SYS_read));
        for r in [&vcpu, &main, &both] {
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
    }
}
