//! The boot recipe. [`run`] reads top to bottom like the boot sequence:
//! checks → KVM → memory → kernel + initrd + cmdline + boot_params → vCPUs
//! (cpuid → msrs → regs → sregs → fpu → lapic) → devices → run loop → report.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kvm_bindings::KVM_MAX_CPUID_ENTRIES;
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
use vmm_sys_util::signal::Killable;

use crate::config::{Output, ProcFiles, StopAt, VmConfig, VmReport};
use crate::devices::serial::{self, IrqTrigger};
use crate::devices::{i8042::I8042, labctl::LabCtl, Clock, Devices, Sink, Unclaimed};
use crate::exit::{EndReason, Policy};
use crate::host::KvmKind;
use crate::loader::{self, KernelFormat};
use crate::seccomp::{self, Filters};
use crate::vcpu::{self, Shared};
use crate::{cache, cmdline, console_file, cpuid, kvm, layout, memory, mptable, regs, signals};

/// The marker the lab's own Linux kernel carries in its version string.
pub const LAB_KERNEL_MARKER: &str = "vclab";
/// How long the VMM waits for kicked vCPU threads before giving up on them
/// (a kicked thread leaves within one KVM_RUN return; this is a safety net).
const JOIN_DEADLINE: Duration = Duration::from_secs(5);

/// Errors of setting up and running a VM.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--vcpus 0`.
    #[error("a VM needs at least one vCPU; use --vcpus 1 or more")]
    NoVcpus,
    /// KVM could not be opened or set up.
    #[error(transparent)]
    Kvm(#[from] kvm::Error),
    /// Guest memory.
    #[error(transparent)]
    Memory(#[from] memory::Error),
    /// Kernel, initrd, zero page.
    #[error(transparent)]
    Loader(#[from] loader::Error),
    /// Command line.
    #[error(transparent)]
    Cmdline(#[from] cmdline::Error),
    /// MP table.
    #[error(transparent)]
    MpTable(#[from] mptable::Error),
    /// Descriptor and page tables.
    #[error(transparent)]
    Regs(#[from] regs::Error),
    /// CPUID.
    #[error(transparent)]
    Cpuid(#[from] cpuid::Error),
    /// vCPUs.
    #[error(transparent)]
    Vcpu(#[from] vcpu::Error),
    /// A distro bzImage on kvm_pvm.
    #[error("kernel {path} (version {version:?}) is not the lab's kernel: on kvm_pvm its INT3 self-test stops the boot and cannot be switched off; boot the lab's vmlinux or bzImage instead")]
    ForeignKernelOnPvm {
        /// The kernel path.
        path: String,
        /// Its version string.
        version: String,
    },
    /// The console file could not be created.
    #[error("cannot open console file {path}: {err} ({hint})")]
    ConsoleFile {
        /// The path.
        path: String,
        /// What to do.
        hint: &'static str,
        /// The I/O error.
        err: std::io::Error,
    },
    /// The serial interrupt eventfd.
    #[error("cannot set up the serial interrupt (eventfd/irqfd): {0}")]
    SerialIrq(String),
    /// Signal handlers, masks or the timeout timer.
    #[error(transparent)]
    Signals(#[from] signals::Error),
    /// The eventfd that wakes the main thread when a vCPU thread ends.
    #[error("cannot create the vCPU wake-up eventfd: {0}")]
    Wake(std::io::Error),
    /// The seccomp filters could not be built or installed.
    #[error(transparent)]
    Seccomp(#[from] seccomp::Error),
    /// A vCPU thread could not be started.
    #[error("cannot start the thread of vCPU {vcpu}: {err}")]
    Thread {
        /// vCPU index.
        vcpu: u32,
        /// The I/O error.
        err: std::io::Error,
    },
}

/// Boots one VM as `config` says, runs it to its end and reports.
pub fn run(config: &VmConfig) -> Result<VmReport, Error> {
    let clock = Clock::new(config.origin);
    if config.vcpus == 0 {
        return Err(Error::NoVcpus);
    }
    if config.vcpus > mptable::MAX_VCPUS {
        return Err(mptable::Error::TooManyVcpus(config.vcpus).into());
    }
    if !config.host_checked {
        memory::check_size(config.mem_mib)?;
    }
    // Opened before any filter or jail root hides them; the report reads them at the end.
    let proc_files = config.proc_files.clone().or_else(|| ProcFiles::open().ok());
    // Signals first, so a SIGINT during set-up already ends the run cleanly.
    signals::take_pending();
    signals::install(config.stop_signals)?;
    let kind = config.kvm_kind.unwrap_or_else(KvmKind::detect);
    let (mut kernel_file, info) = loader::probe(&config.kernel)?;
    let linux = config.linux_compat.unwrap_or(info.is_linux);
    refuse_foreign_kernel_on_pvm(config, kind, &info)?;

    // KVM, the VM and guest RAM (kernel and initrd loaded into it), then
    // the interrupt controllers: memory slots go in before the irqchip (see
    // `kvm::create_irqchip`).
    let kvm = kvm::open(config.vcpus)?;
    let vm = kvm::create_vm(&kvm)?;
    let (mem, loaded, initrd) = load_guest(config, &vm, &mut kernel_file, &info)?;
    drop(kernel_file);
    kvm::create_irqchip(&vm)?;
    let supported = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(cpuid::Error::Supported)?;

    // vCPUs exist before the command line: it carries the boot vCPU's TSC rate.
    let vcpu_fds = (0..config.vcpus)
        .map(|i| vcpu::create(&vm, i))
        .collect::<Result<Vec<_>, _>>()?;
    let tsc_khz = vcpu_fds[0].get_tsc_khz().ok();

    // Command line and boot_params. Linux prints its init handoff line at
    // info level, which `quiet` hides: a run that stops there keeps it visible.
    let stop_at_handoff = match config.stop_at {
        StopAt::Auto => linux && !kind.runs_linux_userspace() && kind != KvmKind::Unknown,
        StopAt::InitHandoff => true,
        StopAt::Never => false,
    };
    let cmdline = cmdline::build(
        &cmdline::Parts {
            linux,
            quiet: !config.verbose_guest && !stop_at_handoff,
            pvm_quirks: linux && kind == KvmKind::Pvm,
            pvm_smp_quirks: linux && kind == KvmKind::Pvm && config.vcpus > 1,
            tsc_khz,
            user: &config.cmdline,
        },
        info.cmdline_size(),
    )?;
    loader::write_cmdline(&mem, &cmdline)?;
    let params = loader::zero_page(info.setup_header, cmdline.len(), initrd, config.mem_mib);
    loader::write_zero_page(&mem, &params)?;
    mptable::write(&mem, config.vcpus)?;
    regs::write_gdt_idt(&mem)?;
    regs::write_page_tables(&mem)?;

    // vCPU state: cpuid → msrs → regs → sregs → fpu → lapic.
    for (i, fd) in vcpu_fds.iter().enumerate() {
        let entry = (i == 0).then_some(loaded.entry.0);
        vcpu::configure(fd, &supported, i as u32, config.vcpus, entry)?;
    }

    // Devices.
    let serial_evt = EventFd::new(EFD_NONBLOCK).map_err(|e| Error::SerialIrq(e.to_string()))?;
    vm.register_irqfd(&serial_evt, layout::SERIAL_IRQ)
        .map_err(|e| Error::SerialIrq(e.to_string()))?;
    let mut console = serial::console(IrqTrigger(Some(serial_evt)), sink(&config.console)?, clock);
    console.writer_mut().watch = config.stop_at_console.clone();
    let mut labctl = LabCtl::new(Some(mem.clone()), sink(&config.lines)?, clock);
    labctl.present = config.lab_device;
    let devices = Devices {
        serial: console,
        i8042: I8042::default(),
        labctl,
        unclaimed: Unclaimed::default(),
        exits: Default::default(),
        clock,
    };
    let shared = Arc::new(Shared {
        devices: Mutex::new(devices),
        stop: AtomicBool::new(false),
        policy: Policy {
            stop_at_init_handoff: stop_at_handoff,
        },
        first_run_ns: Mutex::new(None),
        last_rip: Mutex::new(vec![None; config.vcpus as usize]),
    });
    // Seccomp filters, built before any vCPU runs and installed by each thread on itself.
    let filters = Filters::for_vm(config.seccomp, config.vcpus)?;
    let vm_built_ns = clock.now_ns();

    // Run loop.
    let guard = Guard {
        filters: &filters,
        selftest: config.seccomp_selftest,
    };
    let reason = run_vcpus(vcpu_fds, &shared, config.timeout, guard)?;
    let exit_ns = clock.now_ns();
    drop(vm);

    Ok(report(ReportInputs {
        config,
        shared: &shared,
        mem: &mem,
        reason,
        vm_built_ns,
        exit_ns,
        format: info.format,
        linux,
        cmdline,
        tsc_khz,
        kind,
        proc_files,
        filters: &filters,
    }))
}

/// The filters the run's threads install, and whether the vCPU then makes its self-test's
/// forbidden call.
#[derive(Clone, Copy)]
struct Guard<'a> {
    filters: &'a Filters,
    selftest: bool,
}

impl Guard<'_> {
    /// Installs the vCPU filter on the calling thread (then the self-test's call, if asked).
    fn enter_vcpu(&self) -> Result<(), seccomp::Error> {
        Filters::install(self.filters.vcpu.as_ref())?;
        if self.selftest {
            seccomp::forbidden_call();
        }
        Ok(())
    }
}

fn refuse_foreign_kernel_on_pvm(
    config: &VmConfig,
    kind: KvmKind,
    info: &loader::KernelInfo,
) -> Result<(), Error> {
    if kind != KvmKind::Pvm || info.format != KernelFormat::BzImage {
        return Ok(());
    }
    let version = info.version.clone().unwrap_or_default();
    if is_lab_kernel(&config.kernel, &version) {
        return Ok(());
    }
    Err(Error::ForeignKernelOnPvm {
        path: config.kernel.display().to_string(),
        version,
    })
}

/// The lab's kernel: its version carries the `vclab` marker, or it is (a
/// copy of) the cache's `bzimage` artifact: same file or same version string.
fn is_lab_kernel(path: &std::path::Path, version: &str) -> bool {
    if version.contains(LAB_KERNEL_MARKER) {
        return true;
    }
    let Some(lab) = cache::artifact(&cache::dir(), "bzimage") else {
        return false;
    };
    let same_file = match (path.canonicalize(), lab.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    same_file
        || loader::probe(&lab)
            .ok()
            .and_then(|(_, info)| info.version)
            .is_some_and(|v| !version.is_empty() && v == version)
}

fn sink(output: &Output) -> Result<Sink, Error> {
    Ok(match output {
        Output::Stdout => Sink::Stdout,
        Output::Off => Sink::Off,
        Output::Memory(buf) => Sink::Memory(buf.clone()),
        Output::Opened(file) => Sink::File(file.clone()),
        Output::File(path) => Sink::File(Arc::new(console_file::create(path).map_err(|err| {
            Error::ConsoleFile {
                path: path.display().to_string(),
                hint: console_file::hint(&err),
                err,
            }
        })?)),
    })
}

/// Guest memory, the loaded kernel, and the initrd's (address, size).
type LoadedGuest = (GuestMemoryMmap, loader::Loaded, Option<(u64, u64)>);

/// Guest memory (created and registered with KVM), then the kernel and the
/// initrd loaded into it.
fn load_guest(
    config: &VmConfig,
    vm: &kvm_ioctls::VmFd,
    kernel_file: &mut File,
    info: &loader::KernelInfo,
) -> Result<LoadedGuest, Error> {
    let mem = memory::create(config.mem_mib)?;
    if config.hugepages {
        memory::advise_hugepages(&mem)?;
    }
    memory::register(vm, &mem)?;
    let loaded = loader::load_kernel(&mem, &config.kernel, kernel_file, info, config.mem_mib)?;
    let initrd = match &config.initrd {
        Some(path) => Some(loader::load_initrd(
            &mem,
            path,
            info,
            loaded.kernel_end,
            config.mem_mib,
        )?),
        None => None,
    };
    Ok((mem, loaded, initrd))
}

/// Runs the vCPUs to the VM's end: a 1-vCPU VM on this thread (no other
/// thread is needed), a larger one on a thread per vCPU.
fn run_vcpus(
    mut fds: Vec<kvm_ioctls::VcpuFd>,
    shared: &Arc<Shared>,
    timeout: Option<Duration>,
    guard: Guard<'_>,
) -> Result<EndReason, Error> {
    match fds.pop() {
        Some(fd) if fds.is_empty() => run_here(fd, shared, timeout, guard),
        Some(last) => {
            fds.push(last);
            run_threads(fds, shared, timeout, guard)
        }
        None => Err(Error::NoVcpus),
    }
}

/// The single vCPU runs on this thread; `--timeout` is a timer signal to it,
/// SIGINT/SIGTERM (when asked for) reach it as the process's only thread
/// that takes signals (KVM's own worker task in the process blocks them all).
fn run_here(
    mut fd: kvm_ioctls::VcpuFd,
    shared: &Shared,
    timeout: Option<Duration>,
    guard: Guard<'_>,
) -> Result<EndReason, Error> {
    let timer = timeout.map(signals::Timer::arm).transpose()?;
    guard.enter_vcpu()?;
    let reason = vcpu::run_loop(&mut fd, 0, shared);
    drop(timer);
    Ok(reason.unwrap_or_else(|| {
        EndReason::InternalError("the vCPU left its loop without a reason".to_string())
    }))
}

/// Wakes the waiting thread when a vCPU thread ends, however it ends.
struct Notify(Arc<EventFd>);

impl Drop for Notify {
    fn drop(&mut self) {
        if let Err(e) = self.0.write(1) {
            log::warn!("cannot wake the VMM's main thread: {e}");
        }
    }
}

/// Starts one thread per vCPU, waits for the first ending event, the
/// timeout or a stop signal, then stops and joins every thread.
fn run_threads(
    fds: Vec<kvm_ioctls::VcpuFd>,
    shared: &Arc<Shared>,
    timeout: Option<Duration>,
    guard: Guard<'_>,
) -> Result<EndReason, Error> {
    let ended = Arc::new(EventFd::new(EFD_NONBLOCK).map_err(Error::Wake)?);
    // The vCPU threads inherit a mask that blocks SIGINT/SIGTERM: those are
    // this thread's, taken in `wait_first_end`.
    let mask = signals::set_mask(libc::SIG_BLOCK, &signals::STOP_SIGNALS)?;
    let (tx, rx) = mpsc::channel();
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    let mut spawn_error = None;
    for (i, mut fd) in fds.into_iter().enumerate() {
        let (shared, tx, notify) = (shared.clone(), tx.clone(), Notify(ended.clone()));
        let index = i as u32;
        let (filters, selftest) = (guard.filters.clone(), guard.selftest);
        match std::thread::Builder::new()
            .name(format!("vcpu{i}"))
            .spawn(move || {
                let guard = Guard {
                    filters: &filters,
                    selftest,
                };
                let ended = match guard.enter_vcpu() {
                    Err(e) => Some(EndReason::InternalError(format!("vCPU {index}: {e}"))),
                    Ok(()) => vcpu::run_loop(&mut fd, index, &shared),
                };
                if let Some(reason) = ended {
                    // The receiver may be gone when another vCPU ended the VM first.
                    let _ = tx.send(reason);
                }
                drop(tx);
                drop(notify);
            }) {
            Ok(t) => threads.push(t),
            Err(err) => {
                spawn_error = Some(Error::Thread { vcpu: index, err });
                break;
            }
        }
    }
    drop(tx);
    let reason = if spawn_error.is_some() {
        EndReason::InternalError("vCPU thread start failed".to_string())
    } else if let Err(e) = Filters::install(guard.filters.main.as_ref()) {
        EndReason::InternalError(format!("main thread: {e}"))
    } else {
        wait_first_end(&rx, &ended, timeout, &mask)
    };
    signals::restore_mask(&mask);
    stop_and_join(shared, threads);
    match spawn_error {
        Some(e) => Err(e),
        None => Ok(reason),
    }
}

/// Waits in ppoll (stop signals unblocked only there, so none is missed
/// between a check and the wait) for the first vCPU end, a stop signal or
/// the timeout.
fn wait_first_end(
    rx: &mpsc::Receiver<EndReason>,
    ended: &EventFd,
    timeout: Option<Duration>,
    mask: &libc::sigset_t,
) -> EndReason {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        if let Some(signo) = signals::take_pending() {
            return EndReason::from_signal(signo);
        }
        match rx.try_recv() {
            Ok(reason) => return reason,
            Err(TryRecvError::Disconnected) => {
                return EndReason::InternalError(
                    "every vCPU thread ended without a reason".to_string(),
                )
            }
            Err(TryRecvError::Empty) => {}
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left == Some(Duration::ZERO) {
            return EndReason::Timeout;
        }
        let ts = left.map(|d| libc::timespec {
            tv_sec: d.as_secs() as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        });
        let mut pfd = libc::pollfd {
            fd: ended.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
        // SAFETY: `pfd` is one valid pollfd, `ts_ptr` is null or a valid timespec, `mask` a
        // valid sigset_t; all outlive the call. EINTR (a stop signal) is handled by the loop.
        unsafe { libc::ppoll(&mut pfd, 1, ts_ptr, mask) };
        let _ = ended.read();
    }
}

/// Sets the stop flag, kicks each vCPU thread once (its handler sets the
/// vCPU's immediate_exit, so a kick that lands outside KVM_RUN is not lost)
/// and joins it.
fn stop_and_join(shared: &Shared, threads: Vec<JoinHandle<()>>) {
    shared.stop.store(true, Ordering::SeqCst);
    for t in &threads {
        if let Err(e) = t.kill(signals::kick()) {
            log::debug!("kick failed: {e}");
        }
    }
    let deadline = Instant::now() + JOIN_DEADLINE;
    for t in threads {
        while !t.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(100));
        }
        if t.is_finished() {
            let _ = t.join();
        } else {
            log::warn!("a vCPU thread did not stop within {JOIN_DEADLINE:?}");
        }
    }
}

/// CLOCK_MONOTONIC now, ns (the clock `Instant` uses on Linux).
fn monotonic_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

struct ReportInputs<'a> {
    config: &'a VmConfig,
    shared: &'a Shared,
    mem: &'a GuestMemoryMmap,
    reason: EndReason,
    vm_built_ns: u64,
    exit_ns: u64,
    format: KernelFormat,
    linux: bool,
    cmdline: String,
    tsc_khz: Option<u32>,
    kind: KvmKind,
    proc_files: Option<ProcFiles>,
    filters: &'a Filters,
}

fn report(r: ReportInputs<'_>) -> VmReport {
    let stats = r
        .proc_files
        .as_ref()
        .map(|p| p.read(&memory::host_ranges(r.mem)))
        .unwrap_or_default();
    let allowed = |f: Option<&seccomp::Filter>| f.map(|f| f.allowed as u32);
    let first_run_ns = r.shared.first_run_ns.lock().ok().and_then(|f| *f);
    let vcpu_rips = r
        .shared
        .last_rip
        .lock()
        .map(|v| v.iter().map(|rip| rip.map(|x| format!("{x:#x}"))).collect())
        .unwrap_or_default();
    let mut out = VmReport {
        vm_built_ns: Some(r.vm_built_ns),
        first_run_ns,
        exit_ns: Some(r.exit_ns),
        exit_reason: r.reason.reason(),
        vcpu_rips,
        vmm_peak_rss_kib: stats.peak_rss_kib,
        vmm_pss_kib: stats.pss_kib,
        guest_ram_kib: r.config.mem_mib * 1024,
        guest_touched_kib: stats.guest_rss_kib,
        vcpus: r.config.vcpus,
        kernel_format: r.format,
        linux: r.linux,
        cmdline: r.cmdline,
        tsc_khz: r.tsc_khz,
        kvm_kind: Some(r.kind),
        origin_monotonic_ns: monotonic_ns()
            .and_then(|now| now.checked_sub(r.config.origin.elapsed().as_nanos() as u64)),
        time_origin: "VmConfig::origin (the CLI: entry of `vclab vm run`), CLOCK_MONOTONIC"
            .to_string(),
        seccomp: r.filters.mode.name().to_string(),
        seccomp_vcpu_syscalls: allowed(r.filters.vcpu.as_ref()),
        seccomp_main_syscalls: allowed(r.filters.main.as_ref()),
        jailed: r.config.jailed,
        ..VmReport::new(r.reason.reason(), r.format)
    };
    match &r.reason {
        EndReason::GuestExit(code) => out.guest_exit_code = Some(*code),
        EndReason::InternalError(m) => out.exit_detail = Some(m.clone()),
        EndReason::GuestPanic(lines) => out.exit_detail = Some(lines.join("\n")),
        EndReason::Signal(signo) => {
            out.stop_signal = Some(signals::name(*signo));
            out.exit_detail = Some(format!("stopped by {}", signals::name(*signo)));
        }
        _ => {}
    }
    if let Ok(mut d) = r.shared.devices.lock() {
        d.serial.writer_mut().finish();
        let m = d.serial.writer().milestones;
        out.kernel_start_ns = m.first_byte_ns;
        out.init_handoff_ns = m.init_handoff_ns;
        out.guest_ready_ns = d.labctl.ready_ns;
        out.guest_lines = d.labctl.lines.clone();
        out.bad_line_records = d.labctl.bad_records;
        out.vm_exits = d.exits.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let u = &d.unclaimed;
        out.unclaimed_accesses = u.pio_reads + u.pio_writes + u.mmio_reads + u.mmio_writes;
    }
    out
}
