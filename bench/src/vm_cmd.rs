//! `vclab vm run`: boot one micro-VM with the lab's VMM and report.
//!
//! Exit codes: the guest's status when it writes the lab exit port
//! (`guest-exit`); 0 for a reset, a clean shutdown or a requested stop at the
//! init handoff or at `--stop-at-console`; 124 timeout; 121 triple fault; 122 KVM internal error or
//! emulation failure; 123 guest kernel panic; 1 when the VM could not be set
//! up (bad arguments, missing files, no KVM).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use vclab_vmm::{Output, StopAt, VmConfig, VmReport};

/// Exit code of a run that hit `--timeout`.
pub const EXIT_TIMEOUT: i32 = 124;
/// Exit code of a triple fault.
pub const EXIT_TRIPLE_FAULT: i32 = 121;
/// Exit code of a KVM internal error / emulation failure.
pub const EXIT_INTERNAL_ERROR: i32 = 122;
/// Exit code of a guest kernel panic.
pub const EXIT_GUEST_PANIC: i32 = 123;

/// Micro-VM subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum VmCommand {
    /// Boot one VM and run it until the guest exits, resets, faults or the
    /// timeout ends it.
    ///
    /// Exit code: the guest's status written to the lab exit port; 0 after a
    /// reset or a stop at the init handoff or --stop-at-console; 124 timeout; 121 triple fault;
    /// 122 KVM internal error (emulation failure); 123 guest kernel panic;
    /// 1 when the VM could not be set up.
    Run(RunArgs),
}

/// Where the serial console goes.
#[derive(Debug, Clone)]
pub enum Console {
    /// Standard output.
    Stdout,
    /// Dropped.
    Off,
    /// A file.
    File(PathBuf),
}

fn parse_console(s: &str) -> Result<Console, String> {
    Ok(match s {
        "stdout" => Console::Stdout,
        "off" => Console::Off,
        "" => return Err("give stdout, off or a file path".to_string()),
        path => Console::File(PathBuf::from(path)),
    })
}

/// When to stop a Linux boot.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum StopAtArg {
    /// At the init handoff on hosts where guest userspace cannot run (kvm_pvm).
    Auto,
    /// At Linux's "Run /init as init process" line.
    InitHandoff,
    /// Only when the guest ends or the timeout runs out.
    Never,
}

/// Arguments of `vclab vm run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The kernel: an ELF (the lab unikernel or a Linux vmlinux) or a bzImage.
    #[arg(long)]
    pub kernel: PathBuf,
    /// An initrd / initramfs loaded high in guest memory.
    #[arg(long)]
    pub initrd: Option<PathBuf>,
    /// Text appended to the kernel command line the VMM composes
    /// (e.g. "vclab.kernel=cpu vclab.iterations=10").
    #[arg(long, default_value = "")]
    pub cmdline: String,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = vclab_vmm::DEFAULT_MEM_MIB)]
    pub mem: u64,
    /// Number of vCPUs (1 or more).
    #[arg(long, default_value_t = 1)]
    pub vcpus: u32,
    /// End the VM after this many seconds (exit code 124).
    #[arg(long)]
    pub timeout: Option<f64>,
    /// Where the serial console goes: stdout, off, or a file path.
    #[arg(long, default_value = "stdout", value_parser = parse_console)]
    pub console: Console,
    /// Print one JSON report as the last line on stdout.
    #[arg(long)]
    pub json: bool,
    /// Keep the Linux kernel's boot messages (drop `quiet`).
    #[arg(long)]
    pub verbose_guest: bool,
    /// When to end a Linux boot early. `auto` stops at the init handoff on
    /// kvm_pvm, where guest userspace cannot run (and then keeps the kernel's
    /// info messages, which carry the handoff line, even without
    /// --verbose-guest).
    #[arg(long, value_enum, default_value = "auto")]
    pub stop_at: StopAtArg,
    /// End the VM (exit code 0) at the first console line containing TEXT.
    #[arg(long, value_name = "TEXT")]
    pub stop_at_console: Option<String>,
}

/// Runs a `vclab vm` subcommand and returns the process exit code.
pub fn run(cmd: VmCommand) -> anyhow::Result<i32> {
    let origin = Instant::now();
    match cmd {
        VmCommand::Run(args) => run_vm(args, origin),
    }
}

fn config(args: RunArgs, origin: Instant) -> anyhow::Result<(VmConfig, bool)> {
    if args.vcpus == 0 {
        anyhow::bail!("--vcpus 0: a VM needs at least one vCPU; use --vcpus 1 or more");
    }
    if args.mem == 0 {
        anyhow::bail!("--mem 0: a VM needs memory; use --mem 16 or more (MiB)");
    }
    let timeout = match args.timeout {
        Some(t) if !(t.is_finite() && t > 0.0) => {
            anyhow::bail!("--timeout {t}: give a positive number of seconds")
        }
        Some(t) => Some(Duration::from_secs_f64(t)),
        None => None,
    };
    let mut cfg = VmConfig::new(args.kernel);
    cfg.initrd = args.initrd;
    cfg.cmdline = args.cmdline;
    cfg.mem_mib = args.mem;
    cfg.vcpus = args.vcpus;
    cfg.timeout = timeout;
    cfg.console = match args.console {
        Console::Stdout => Output::Stdout,
        Console::Off => Output::Off,
        Console::File(p) => Output::File(p),
    };
    cfg.verbose_guest = args.verbose_guest;
    cfg.stop_at = match args.stop_at {
        StopAtArg::Auto => StopAt::Auto,
        StopAtArg::InitHandoff => StopAt::InitHandoff,
        StopAtArg::Never => StopAt::Never,
    };
    cfg.stop_at_console = args.stop_at_console;
    cfg.origin = origin;
    Ok((cfg, args.json))
}

fn run_vm(args: RunArgs, origin: Instant) -> anyhow::Result<i32> {
    let (cfg, json) = config(args, origin)?;
    // The VMM's errors name what failed and what to do; no extra context.
    let report = vclab_vmm::run(&cfg)?;
    let code = describe(&report);
    if json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(code)
}

/// Says on stderr why the VM ended and returns the exit code.
fn describe(report: &VmReport) -> i32 {
    let ms = |ns: Option<u64>| ns.map_or("-".to_string(), |n| format!("{:.1} ms", n as f64 / 1e6));
    match report.exit_reason.as_str() {
        "guest-exit" => {
            let code = report.guest_exit_code.unwrap_or(0);
            eprintln!(
                "vclab: guest exited with status {code} after {}",
                ms(report.exit_ns)
            );
            i32::from(code)
        }
        "reset" => {
            eprintln!("vclab: guest reset the VM after {}", ms(report.exit_ns));
            0
        }
        "init-handoff" => {
            let why = if report.kvm_kind == Some(vclab_vmm::host::KvmKind::Pvm) {
                ": guest userspace cannot run on this host (kvm_pvm: guest system calls fault)"
            } else {
                " as asked (--stop-at init-handoff)"
            };
            eprintln!(
                "vclab: Linux reached the init handoff after {}; stopped there{why}",
                ms(report.init_handoff_ns)
            );
            0
        }
        "console-match" => {
            eprintln!(
                "vclab: stopped at the console line asked for after {}",
                ms(report.exit_ns)
            );
            0
        }
        "timeout" => {
            eprintln!(
                "vclab: timeout: the VM was stopped after {}",
                ms(report.exit_ns)
            );
            EXIT_TIMEOUT
        }
        "triple-fault" => {
            eprintln!("vclab: the guest triple-faulted (KVM_EXIT_SHUTDOWN)");
            EXIT_TRIPLE_FAULT
        }
        "guest-panic" => {
            eprintln!(
                "vclab: the guest kernel panicked; last console lines:\n{}",
                report.exit_detail.as_deref().unwrap_or("")
            );
            EXIT_GUEST_PANIC
        }
        _ => {
            eprintln!(
                "vclab: the VM stopped on an internal error: {}",
                report.exit_detail.as_deref().unwrap_or("unknown")
            );
            EXIT_INTERNAL_ERROR
        }
    }
}
