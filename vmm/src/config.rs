//! What one VM run is asked to do, and what it reports.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vclab_contract::{ExitReason, KernelFormat};

use crate::host::KvmKind;

/// Default guest memory, MiB.
pub const DEFAULT_MEM_MIB: u64 = 128;
/// Whether guest RAM asks for transparent huge pages by default (`--hugepages`).
pub const DEFAULT_HUGEPAGES: bool = false;

/// Where guest text goes.
#[derive(Debug, Clone, Default)]
pub enum Output {
    /// The VMM's stdout.
    #[default]
    Stdout,
    /// Dropped.
    Off,
    /// A file (created or truncated).
    File(PathBuf),
    /// A shared buffer (library users, tests).
    Memory(Arc<Mutex<Vec<u8>>>),
}

/// When to end a Linux boot early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StopAt {
    /// At the init handoff on hosts where guest userspace cannot run
    /// (kvm_pvm), otherwise never.
    #[default]
    Auto,
    /// At Linux's "Run /init as init process".
    InitHandoff,
    /// Only on a guest-side ending event or the timeout.
    Never,
}

/// One VM run.
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// ELF vmlinux, unikernel ELF, or bzImage.
    pub kernel: PathBuf,
    /// Optional initrd / initramfs.
    pub initrd: Option<PathBuf>,
    /// Text appended to the command line the VMM composes.
    pub cmdline: String,
    /// Guest memory, MiB.
    pub mem_mib: u64,
    /// Number of vCPUs (≥ 1).
    pub vcpus: u32,
    /// Ends the VM after this long (exit reason `timeout`).
    pub timeout: Option<Duration>,
    /// Where the serial console goes.
    pub console: Output,
    /// Where lab control line records go.
    pub lines: Output,
    /// Drop `quiet` from the Linux command line.
    pub verbose_guest: bool,
    /// When to stop a Linux boot.
    pub stop_at: StopAt,
    /// End the VM (exit reason `console-match`) at the first console line
    /// containing this text.
    pub stop_at_console: Option<String>,
    /// Give the guest the lab control device (default). `false` hides it (`--lab-device off`):
    /// the unikernel then reports on the UART and resets, as under another VMM.
    pub lab_device: bool,
    /// Treat the kernel as Linux (default command line, kvm_pvm work-arounds);
    /// `None` decides from the image (a bzImage or an ELF with a Linux note).
    pub linux_compat: Option<bool>,
    /// The host's KVM kind; `None` probes the host.
    pub kvm_kind: Option<KvmKind>,
    /// Ask for transparent huge pages on guest RAM (`madvise(MADV_HUGEPAGE)`; `--hugepages`).
    pub hugepages: bool,
    /// End the VM cleanly on SIGINT or SIGTERM (the CLI sets it): the handlers replace the
    /// inherited dispositions for the whole process, so a library user that runs VMs on several
    /// threads at once should leave it off (default) and stop them with `timeout`.
    pub stop_signals: bool,
    /// Time origin of all timestamps in the report (the CLI passes the
    /// instant its `main` was entered).
    pub origin: Instant,
}

impl VmConfig {
    /// A configuration with the defaults: 128 MiB, 1 vCPU, no timeout,
    /// console and lines on stdout, lab control device present, origin now.
    pub fn new(kernel: impl Into<PathBuf>) -> Self {
        VmConfig {
            kernel: kernel.into(),
            initrd: None,
            cmdline: String::new(),
            mem_mib: DEFAULT_MEM_MIB,
            vcpus: 1,
            timeout: None,
            console: Output::Stdout,
            lines: Output::Stdout,
            verbose_guest: false,
            stop_at: StopAt::Auto,
            stop_at_console: None,
            lab_device: true,
            linux_compat: None,
            kvm_kind: None,
            hugepages: DEFAULT_HUGEPAGES,
            stop_signals: false,
            origin: Instant::now(),
        }
    }
}

/// The report of one run (the `--json` line). Timestamps are nanoseconds
/// since `VmConfig::origin`; `None` when the phase was not reached.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct VmReport {
    /// VM, memory, kernel, vCPUs and devices ready.
    pub vm_built_ns: Option<u64>,
    /// The boot vCPU enters KVM_RUN for the first time (≈ first guest instruction).
    pub first_run_ns: Option<u64>,
    /// First byte on the serial console.
    pub kernel_start_ns: Option<u64>,
    /// Linux's "Run /init as init process" line.
    pub init_handoff_ns: Option<u64>,
    /// Ready marker on the lab control device.
    pub guest_ready_ns: Option<u64>,
    /// The VM ended (all vCPU threads joined).
    pub exit_ns: Option<u64>,
    /// Why the VM ended: `guest-exit`, `reset`, `triple-fault`,
    /// `internal-error`, `guest-panic`, `init-handoff`, `console-match` or
    /// `timeout` ([`ExitReason`]).
    pub exit_reason: ExitReason,
    /// Details for `internal-error` and `guest-panic` (last console lines), and for a stop
    /// signal.
    pub exit_detail: Option<String>,
    /// The signal that stopped the VM (`SIGINT`, `SIGTERM`), if one did; `exit_reason` is then
    /// `signal` (stopped from outside before the guest ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Each vCPU's instruction pointer when the VM ended (hex), for
    /// diagnosing hangs and faults.
    pub vcpu_rips: Vec<Option<String>>,
    /// The status written to the exit port.
    pub guest_exit_code: Option<u8>,
    /// VM exits by kind.
    pub vm_exits: BTreeMap<String, u64>,
    /// Port and MMIO accesses no device claimed.
    pub unclaimed_accesses: u64,
    /// Lines received through the lab control line register.
    pub guest_lines: Vec<String>,
    /// Bad line records (out of bounds, too long).
    pub bad_line_records: u64,
    /// The VMM's peak resident set (VmHWM), KiB; includes touched guest RAM.
    pub vmm_peak_rss_kib: Option<u64>,
    /// PSS of the VMM's mappings other than guest RAM, KiB.
    pub vmm_pss_kib: Option<u64>,
    /// Guest RAM mapped, KiB.
    pub guest_ram_kib: u64,
    /// Guest RAM touched (resident), KiB.
    pub guest_touched_kib: Option<u64>,
    /// vCPUs.
    pub vcpus: u32,
    /// `elf` or `bz-image` ([`KernelFormat`]).
    pub kernel_format: KernelFormat,
    /// Whether the kernel was treated as Linux.
    pub linux: bool,
    /// The command line the guest got.
    pub cmdline: String,
    /// KVM_GET_TSC_KHZ.
    pub tsc_khz: Option<u32>,
    /// The host's KVM kind.
    pub kvm_kind: Option<KvmKind>,
    /// What the timestamps count from.
    pub time_origin: String,
    /// The origin as a CLOCK_MONOTONIC reading, ns: lets a harness that
    /// took its own CLOCK_MONOTONIC before spawning the VMM put every phase
    /// on its time line (e.g. spawn → guest ready).
    pub origin_monotonic_ns: Option<u64>,
}

impl VmReport {
    /// A report of a VM that ended for `exit_reason` after booting a
    /// `kernel_format` kernel, with no phase reached, nothing counted and
    /// every other field empty (the VMM fills them in; tests start here).
    pub fn new(exit_reason: ExitReason, kernel_format: KernelFormat) -> Self {
        VmReport {
            vm_built_ns: None,
            first_run_ns: None,
            kernel_start_ns: None,
            init_handoff_ns: None,
            guest_ready_ns: None,
            exit_ns: None,
            exit_reason,
            exit_detail: None,
            stop_signal: None,
            vcpu_rips: Vec::new(),
            guest_exit_code: None,
            vm_exits: BTreeMap::new(),
            unclaimed_accesses: 0,
            guest_lines: Vec::new(),
            bad_line_records: 0,
            vmm_peak_rss_kib: None,
            vmm_pss_kib: None,
            guest_ram_kib: 0,
            guest_touched_kib: None,
            vcpus: 0,
            kernel_format,
            linux: false,
            cmdline: String::new(),
            tsc_khz: None,
            kvm_kind: None,
            time_origin: String::new(),
            origin_monotonic_ns: None,
        }
    }
}
