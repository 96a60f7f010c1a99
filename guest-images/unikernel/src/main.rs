//! vclab's unikernel guest: a small assembly shim in ring 0 (`shim.s`) and, at CPL 3, the very
//! same workload core as `vclab-workload`. It reports ready, runs the kernel the command line
//! names, emits the workload JSON line and exits with a status (DESIGN.md; layout in README.md).
#![no_std]
#![no_main]

mod bootinfo;
mod clock;
mod faults;
mod lab;
mod line;
mod mem;
mod port;
mod shim;
mod virtio_blk;

use core::fmt::{self, Write as _};

use vclab_contract::{GuestCmdline, Mode};
use vclab_workload::{json, IoError, IoStats, Params, Report};

use bootinfo::BootInfo;
use lab::Lab;
use line::LineBuf;
use virtio_blk::{BlkError, VirtioBlk};

/// Start of the scratch area the kernels work in: guest RAM from 16 MiB up (above the image).
const SCRATCH_BASE: u64 = 16 << 20;

/// Exit status when the guest cannot run what it was asked (bad command line, too little RAM).
const STATUS_USAGE: u8 = 2;
/// Exit status when the io kernel's disk is missing, cannot be set up or fails a request.
const STATUS_IO: u8 = 3;
/// Exit status after a panic (a guest bug).
const STATUS_PANIC: u8 = 101;

/// Why a run could not start.
#[derive(Debug)]
enum Error {
    /// The loader's boot information is unusable.
    BootInfo(bootinfo::BootInfoError),
    /// The command line is not UTF-8.
    CmdlineUtf8,
    /// A `vclab.*` parameter has a bad value.
    Cmdline(vclab_contract::CmdlineError<'static>),
    /// The params are out of bounds.
    Params(vclab_workload::ParamsError),
    /// The RAM above 16 MiB is too small for the scratch buffer.
    Scratch { needed: u64, available: u64 },
    /// The result line did not fit its buffer.
    Json(json::JsonError),
    /// The io kernel's virtio-blk disk is missing or cannot be set up.
    Disk(BlkError),
    /// The io kernel failed on its disk.
    Io(IoError<BlkError>),
}

impl Error {
    /// The exit status this error ends the guest with.
    fn status(&self) -> u8 {
        match self {
            Error::Disk(_) | Error::Io(_) => STATUS_IO,
            _ => STATUS_USAGE,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BootInfo(e) => write!(f, "{e}"),
            Error::CmdlineUtf8 => {
                f.write_str("the guest command line (or its after-restore text) is not UTF-8")
            }
            Error::Cmdline(e) => write!(f, "{e}"),
            Error::Params(e) => write!(f, "{e}"),
            Error::Scratch { needed, available } => write!(
                f,
                "the run needs {needed} bytes of scratch RAM above 16 MiB but the memory map has \
                 {available}: give the VM more memory or use a smaller vclab.size"
            ),
            Error::Json(e) => write!(f, "{e}"),
            Error::Disk(e) => write!(f, "{e}"),
            Error::Io(e) => write!(f, "io kernel: {e}"),
        }
    }
}

/// The Rust entry, at CPL 3 (called by `ring3_start` in `shim.s`). `info` is the boot
/// information pointer, `protocol` says which kind (see [`bootinfo`]).
#[no_mangle]
extern "C" fn ring3_main(info: u64, protocol: u64) -> ! {
    lab::signal_ready();
    let lab = Lab::detect();
    match run(&lab, info, protocol) {
        Ok(status) => lab.exit(status),
        Err(e) => {
            let mut line = LineBuf::new();
            let _ = write!(line, "vclab-unikernel: error: {e}");
            lab.line(line.as_bytes());
            lab.exit(e.status())
        }
    }
}

/// Reads the command line and does what it says; returns the exit status.
fn run(lab: &Lab, info: u64, protocol: u64) -> Result<u8, Error> {
    let boot = BootInfo::read(info, protocol).map_err(Error::BootInfo)?;
    let cmdline = core::str::from_utf8(boot.cmdline).map_err(|_| Error::CmdlineUtf8)?;
    let args = GuestCmdline::parse(cmdline).map_err(Error::Cmdline)?;
    // After a restore the lab device gives the words that override the boot command line.
    let args = match lab.params() {
        Some(text) => {
            let text = core::str::from_utf8(text).map_err(|_| Error::CmdlineUtf8)?;
            overridden(args, GuestCmdline::parse(text).map_err(Error::Cmdline)?)
        }
        None => args,
    };
    let status = args.exit.unwrap_or(0);

    if args.mode == Some(Mode::Idle) || !lab.has_device() {
        lab.line(vclab_contract::READY_LINE.as_bytes());
    }
    if let Some(fault) = args.fault {
        faults::run(fault, lab, &boot);
        return Ok(status);
    }
    // No vclab.kernel= at all: run cpu with its defaults, like `vclab-workload run cpu`.
    let params = match (args.mode, args.params()) {
        (Some(Mode::Idle), _) => port::idle(),
        (_, Some(params)) => params,
        (_, None) => Params::new(vclab_workload::Kernel::Cpu),
    };
    let scratch = scratch(&boot, &params)?;

    let khz = clock::tsc_khz(args.tsc_khz);
    let (checksum, ops, io, ticks) = if params.kernel.needs_disk() {
        let mut disk = VirtioBlk::find(cmdline, khz).map_err(Error::Disk)?;
        let mut now = || clock::ticks_to_ns(clock::rdtsc(), khz);
        let start = clock::rdtsc();
        let outcome =
            vclab_workload::run_io(&params, scratch, &mut disk, &mut now).map_err(Error::Io)?;
        let ticks = clock::rdtsc().wrapping_sub(start);
        (outcome.checksum, outcome.ops, Some(outcome.stats), ticks)
    } else {
        let start = clock::rdtsc();
        let outcome = vclab_workload::run(&params, scratch).map_err(Error::Params)?;
        let ticks = clock::rdtsc().wrapping_sub(start);
        (outcome.checksum, outcome.ops, None::<IoStats>, ticks)
    };

    let report = Report {
        params,
        checksum,
        ops,
        elapsed_ns: clock::ticks_to_ns(ticks, khz),
        start_monotonic_ns: 0,
        // No CPU-time clock in the guest: its vCPU's time is the host's to tell.
        cpu_ns: 0,
        io,
    };
    let mut out = [0u8; json::MAX_LINE_LEN];
    let n = report.write_json(&mut out).map_err(Error::Json)?;
    lab.line(out.get(..n).unwrap_or_default());
    Ok(status)
}

/// `boot` with every setting `later` gives replaced (the last occurrence of a key wins, as on
/// one command line).
fn overridden(boot: GuestCmdline, later: GuestCmdline) -> GuestCmdline {
    GuestCmdline {
        mode: later.mode.or(boot.mode),
        size: later.size.or(boot.size),
        iterations: later.iterations.or(boot.iterations),
        seed: later.seed.or(boot.seed),
        tsc_khz: later.tsc_khz.or(boot.tsc_khz),
        fault: later.fault.or(boot.fault),
        exit: later.exit.or(boot.exit),
    }
}

/// The scratch buffer for `params`: guest RAM from [`SCRATCH_BASE`], checked against the map.
fn scratch(boot: &BootInfo, params: &Params) -> Result<&'static mut [u8], Error> {
    let needed = params.scratch_len().map_err(Error::Params)?;
    let end = boot.ram_end_from(SCRATCH_BASE).unwrap_or(SCRATCH_BASE);
    let available = end - SCRATCH_BASE;
    if needed as u64 > available {
        return Err(Error::Scratch {
            needed: needed as u64,
            available,
        });
    }
    // SAFETY: [SCRATCH_BASE, SCRATCH_BASE + needed) is usable RAM per the loader's memory map,
    // identity-mapped and writable at CPL 3, above the image (link.ld asserts it ends below
    // 16 MiB) and used by nothing else; this is the only reference to it.
    Ok(unsafe { core::slice::from_raw_parts_mut(SCRATCH_BASE as *mut u8, needed) })
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let lab = Lab::detect();
    let mut line = LineBuf::new();
    let _ = write!(line, "vclab-unikernel: panic: {info}");
    lab.line(line.as_bytes());
    lab.exit(STATUS_PANIC)
}
