//! Step 5: vCPUs. Each is configured in the order the boot protocol needs
//! (CPUID → MSRs → regs → sregs → FPU → LAPIC) and then runs [`run_loop`]
//! until an ending event, a stop signal or a kick: a 1-vCPU VM on the calling
//! thread, a larger one on a thread per vCPU (`runner::run_vcpus`). Only the boot
//! vCPU gets registers: the others stay in wait-for-SIPI (their default
//! mp_state with the in-kernel LAPIC) until the guest starts them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use kvm_bindings::{CpuId, Msrs};
use kvm_ioctls::{VcpuExit, VcpuFd, VmFd};

use crate::devices::Devices;
use crate::exit::{handle_exit, Action, EndReason, ExitEvent, Policy};
use crate::snapshot::pause::Pending;
use crate::snapshot::{DeviceStates, SerialRegs};
use crate::{cpuid, regs, signals};

/// Errors of creating and configuring vCPUs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// KVM_CREATE_VCPU failed.
    #[error("cannot create vCPU {vcpu}: {err}")]
    Create {
        /// vCPU index.
        vcpu: u32,
        /// The ioctl error.
        err: kvm_ioctls::Error,
    },
    /// CPUID could not be set.
    #[error(transparent)]
    Cpuid(#[from] cpuid::Error),
    /// A register-setting ioctl failed.
    #[error("cannot set the {what} of vCPU {vcpu}: {err}")]
    Set {
        /// Which state.
        what: &'static str,
        /// vCPU index.
        vcpu: u32,
        /// The ioctl error.
        err: kvm_ioctls::Error,
    },
    /// KVM took fewer MSRs than given.
    #[error("vCPU {vcpu}: KVM accepted only {set} of {wanted} boot MSRs")]
    Msrs {
        /// vCPU index.
        vcpu: u32,
        /// Accepted.
        set: usize,
        /// Given.
        wanted: usize,
    },
    /// A FAM wrapper could not be built.
    #[error("cannot build the {0} list for KVM")]
    Fam(&'static str),
}

/// Creates vCPU `index`.
pub fn create(vm: &VmFd, index: u32) -> Result<VcpuFd, Error> {
    vm.create_vcpu(u64::from(index))
        .map_err(|err| Error::Create { vcpu: index, err })
}

/// Configures vCPU `index` of `vcpus`; `entry` is the boot vCPU's RIP.
pub fn configure(
    fd: &VcpuFd,
    supported: &CpuId,
    index: u32,
    vcpus: u32,
    entry: Option<u64>,
) -> Result<(), Error> {
    let set = |what| {
        move |err| Error::Set {
            what,
            vcpu: index,
            err,
        }
    };
    let mut cpuid = supported.clone();
    cpuid::filter(cpuid.as_mut_slice(), index, vcpus);
    fd.set_cpuid2(&cpuid)
        .map_err(|err| cpuid::Error::Set { vcpu: index, err })?;

    let entries = regs::boot_msrs();
    let msrs = Msrs::from_entries(&entries).map_err(|_| Error::Fam("MSR"))?;
    let n = fd.set_msrs(&msrs).map_err(set("MSRs"))?;
    if n != entries.len() {
        return Err(Error::Msrs {
            vcpu: index,
            set: n,
            wanted: entries.len(),
        });
    }

    if let Some(rip) = entry {
        fd.set_regs(&regs::boot_regs(rip))
            .map_err(set("registers"))?;
        let sregs = fd.get_sregs().map_err(set("special registers"))?;
        fd.set_sregs(&regs::long_mode_sregs(sregs))
            .map_err(set("special registers"))?;
        fd.set_fpu(&regs::boot_fpu()).map_err(set("FPU"))?;
    }

    let mut lapic = fd.get_lapic().map_err(set("local APIC"))?;
    regs::set_lint(&mut lapic);
    fd.set_lapic(&lapic).map_err(set("local APIC"))?;
    Ok(())
}

/// What every vCPU (and the thread that started them) shares.
pub struct Shared {
    /// The devices, behind one lock (exits are rare and slow anyway).
    pub devices: Mutex<Devices>,
    /// Set when the VM is ending, before the kicks: a vCPU leaves its loop
    /// when it sees it (see `signals`).
    pub stop: AtomicBool,
    /// The exit handler's policy.
    pub policy: Policy,
    /// When the boot vCPU first entered KVM_RUN, ns.
    pub first_run_ns: Mutex<Option<u64>>,
    /// Each vCPU's RIP when it left its loop (where a stopped guest was).
    pub last_rip: Mutex<Vec<Option<u64>>>,
    /// The snapshot to take at the ready signal (`--snapshot-at ready`, 1 vCPU).
    pub snapshot: Option<Mutex<Pending>>,
}

/// Takes the snapshot the ready signal asked for (this vCPU is the VM's only one and is
/// out of KVM_RUN), then lets the guest go on; a failure ends the VM.
fn take_snapshot(fd: &mut VcpuFd, shared: &Shared) -> Result<(), EndReason> {
    let fail = |e: String| EndReason::InternalError(format!("snapshot at the ready signal: {e}"));
    let Some(pending) = &shared.snapshot else {
        return Ok(());
    };
    let devices = match shared.devices.lock() {
        Ok(d) => DeviceStates {
            serial: Some(SerialRegs::from(&d.serial.state())),
            ..DeviceStates::default()
        },
        Err(_) => return Err(fail("device state poisoned".to_string())),
    };
    let mut pending = pending
        .lock()
        .map_err(|_| fail("snapshot state poisoned".to_string()))?;
    pending.take(fd, devices).map_err(|e| fail(e.to_string()))
}

fn record_rip(fd: &VcpuFd, index: u32, shared: &Shared) {
    let rip = fd.get_regs().ok().map(|r| r.rip);
    if let Ok(mut rips) = shared.last_rip.lock() {
        if let Some(slot) = rips.get_mut(index as usize) {
            *slot = rip;
        }
    }
}

/// The run loop of vCPU `index` on the calling thread. Returns the reason when an
/// exit ends the VM, or when this thread takes a stop signal (SIGINT/SIGTERM:
/// [`EndReason::Signal`]) or its timeout timer ([`EndReason::Timeout`]); returns
/// `None` when `stop` was set by another thread (which then kicks this one).
pub fn run_loop(fd: &mut VcpuFd, index: u32, shared: &Shared) -> Option<EndReason> {
    // From here a kick or a stop signal sets this vCPU's immediate_exit. `stop`
    // and pending signals are checked after every KVM_RUN, and after the
    // immediate_exit reset: a signal that lands anywhere in between makes the
    // next KVM_RUN return at once.
    let _registered = signals::Registered::new(fd);
    if index == 0 && !shared.stop.load(Ordering::SeqCst) {
        let now = shared.devices.lock().map(|d| d.clock.now_ns()).ok();
        if let Ok(mut first) = shared.first_run_ns.lock() {
            *first = now;
        }
    }
    loop {
        if let Some(signo) = signals::take_pending() {
            shared.stop.store(true, Ordering::SeqCst);
            record_rip(fd, index, shared);
            return Some(EndReason::from_signal(signo));
        }
        if shared.stop.load(Ordering::SeqCst) {
            record_rip(fd, index, shared);
            return None;
        }
        let action = match fd.run() {
            Ok(VcpuExit::InternalError) => {
                let suberror = internal_suberror(fd);
                lock_and_handle(shared, ExitEvent::InternalError { suberror })
            }
            Ok(exit) => lock_and_handle(shared, translate(exit)),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                fd.set_kvm_immediate_exit(0);
                lock_and_handle(shared, ExitEvent::Interrupted)
            }
            Err(e) => Action::Stop(EndReason::InternalError(format!(
                "KVM_RUN failed on vCPU {index}: {e}"
            ))),
        };
        let action = match action {
            Action::Snapshot => match take_snapshot(fd, shared) {
                Ok(()) => Action::Continue,
                Err(reason) => Action::Stop(reason),
            },
            other => other,
        };
        if let Action::Stop(reason) = action {
            shared.stop.store(true, Ordering::SeqCst);
            record_rip(fd, index, shared);
            return Some(reason);
        }
    }
}

fn lock_and_handle(shared: &Shared, event: ExitEvent<'_>) -> Action {
    match shared.devices.lock() {
        Ok(mut devices) => handle_exit(event, &mut devices, shared.policy),
        Err(_) => Action::Stop(EndReason::InternalError(
            "device state poisoned by a crashed vCPU thread".to_string(),
        )),
    }
}

/// KVM's suberror of the last KVM_EXIT_INTERNAL_ERROR.
fn internal_suberror(fd: &mut VcpuFd) -> u32 {
    let run = fd.get_kvm_run();
    // SAFETY: the last exit reason was KVM_EXIT_INTERNAL_ERROR, so `internal`
    // is the active member of the exit union.
    unsafe { run.__bindgen_anon_1.internal.suberror }
}

/// Turns a kvm-ioctls exit into the handler's event.
fn translate(exit: VcpuExit<'_>) -> ExitEvent<'_> {
    match exit {
        VcpuExit::IoIn(port, data) => ExitEvent::IoIn { port, data },
        VcpuExit::IoOut(port, data) => ExitEvent::IoOut { port, data },
        VcpuExit::MmioRead(addr, data) => ExitEvent::MmioRead { addr, data },
        VcpuExit::MmioWrite(addr, data) => ExitEvent::MmioWrite { addr, data },
        VcpuExit::Hlt => ExitEvent::Hlt,
        VcpuExit::Shutdown => ExitEvent::Shutdown,
        VcpuExit::InternalError => ExitEvent::InternalError { suberror: 0 },
        VcpuExit::FailEntry(reason, _) => ExitEvent::FailEntry { reason },
        VcpuExit::SystemEvent(kind, _) => ExitEvent::SystemEvent { kind },
        VcpuExit::Intr => ExitEvent::Interrupted,
        VcpuExit::IrqWindowOpen => ExitEvent::Other("irq-window"),
        VcpuExit::Exception => ExitEvent::Other("exception"),
        VcpuExit::Debug(_) => ExitEvent::Other("debug"),
        _ => ExitEvent::Other("other"),
    }
}
