//! What one VM run is asked to do, and what it reports.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vclab_contract::{ExitReason, KernelFormat};

use crate::host::KvmKind;
use crate::procstat::{self, MemStats};
use crate::seccomp;

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
    /// A file opened already (the jail opens `--console FILE` before it enters its root).
    Opened(Arc<File>),
}

/// A raw disk image attached as a virtio-blk device (`--disk PATH[,ro][,direct]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpec {
    /// The image file: raw, a multiple of 512 bytes.
    pub path: PathBuf,
    /// The guest sees a read-only disk (`VIRTIO_BLK_F_RO`); the file is opened read-only.
    pub read_only: bool,
    /// The image is opened with O_DIRECT: its I/O bypasses the host's page cache (QEMU's
    /// `cache=none`); the default goes through it (QEMU's default `cache=writeback`).
    pub direct: bool,
}

impl DiskSpec {
    /// Parses `PATH[,ro|,rw][,direct]` (the options in any order after the path; a path that
    /// holds a comma keeps it when what follows is not an option).
    pub fn parse(text: &str) -> Option<DiskSpec> {
        let (mut path, mut read_only, mut direct) = (text, false, false);
        while let Some((head, option)) = path.rsplit_once(',') {
            match option {
                "ro" => read_only = true,
                "rw" => read_only = false,
                "direct" => direct = true,
                _ => break,
            }
            path = head;
        }
        (!path.is_empty()).then(|| DiskSpec {
            path: PathBuf::from(path),
            read_only,
            direct,
        })
    }
}

/// `--snapshot-at ready --snapshot-dir DIR`: where the snapshot taken at the guest's ready
/// signal goes, and how guest memory is written.
#[derive(Debug, Clone)]
pub struct SnapshotSpec {
    /// The snapshot directory (created or replaced).
    pub dir: PathBuf,
    /// How guest memory is written.
    pub save_mode: crate::snapshot::memory::SaveMode,
}

/// `--restore DIR [--restore-mode …] [--cmdline-after-restore …]`.
#[derive(Debug, Clone)]
pub struct RestoreSpec {
    /// The snapshot directory.
    pub dir: PathBuf,
    /// How guest memory comes back.
    pub mode: crate::snapshot::memory::RestoreMode,
    /// The workload parameters the restored guest reads from the lab device.
    pub cmdline_after: Option<String>,
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
    /// Disks, in order: virtio-blk devices on virtio-mmio (`/dev/vda`, `/dev/vdb`, …).
    pub disks: Vec<DiskSpec>,
    /// The disks' image files opened already, in the order of `disks` (the jail opens them
    /// before it drops privileges); empty: [`crate::run`] opens them.
    pub opened_disks: Vec<Arc<File>>,
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
    /// Per-thread seccomp filters (`--no-seccomp`, `--seccomp-log`); [`seccomp::Mode::Default`]
    /// is on in the command line's process and off for a library caller.
    pub seccomp: seccomp::Mode,
    /// `VCLAB_VMM_SECCOMP_SELFTEST=1`: the vCPU makes one forbidden syscall under its filter.
    pub seccomp_selftest: bool,
    /// The host checks that read host files (memory size against MemTotal) were done before
    /// a jail by [`crate::jail`], which also sets `kvm_kind`; [`crate::run`] skips them.
    pub host_checked: bool,
    /// This process's /proc files for the report, opened before the jail (`None`: the run
    /// opens them before its filters).
    pub proc_files: Option<ProcFiles>,
    /// The run is inside `--jail` (reported).
    pub jailed: bool,
    /// Take a snapshot at the guest's ready signal (`--snapshot-at ready`).
    pub snapshot: Option<SnapshotSpec>,
    /// Build the VM from a snapshot (`--restore`); `kernel`, `initrd`, `cmdline`, `mem_mib`
    /// and `vcpus` then come from the snapshot.
    pub restore: Option<RestoreSpec>,
}

/// /proc/self/status and /proc/self/smaps, opened before the seccomp filter and the jail, so
/// the report reads them without opening files (seq files are generated when read).
#[derive(Debug, Clone)]
pub struct ProcFiles {
    status: Arc<File>,
    smaps: Arc<File>,
}

impl ProcFiles {
    /// Opens both files of the calling process.
    pub fn open() -> std::io::Result<ProcFiles> {
        Ok(ProcFiles {
            status: Arc::new(File::open("/proc/self/status")?),
            smaps: Arc::new(File::open("/proc/self/smaps")?),
        })
    }

    /// Reads the figures once (a second call sees nothing: the files are read to their end);
    /// `guest` holds the guest RAM host ranges.
    pub fn read(&self, guest: &[(u64, u64)]) -> MemStats {
        let status = read_all(&self.status);
        let smaps = read_all(&self.smaps);
        let (pss, guest_rss) = smaps
            .map(|s| procstat::parse_smaps(&s, guest))
            .map_or((None, None), |(p, g)| (Some(p), Some(g)));
        MemStats {
            peak_rss_kib: status.and_then(|s| procstat::parse_vmhwm(&s)),
            pss_kib: pss,
            guest_rss_kib: guest_rss,
        }
    }
}

/// The text of `file` from its current position with plain `read` calls only (no
/// `statx`/`lseek` size hint, which the filters do not allow).
fn read_all(file: &File) -> Option<String> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match (&*file).read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    String::from_utf8(out).ok()
}

impl VmConfig {
    /// A configuration with the defaults: 128 MiB, 1 vCPU, no timeout,
    /// console and lines on stdout, lab control device present, origin now.
    pub fn new(kernel: impl Into<PathBuf>) -> Self {
        VmConfig {
            kernel: kernel.into(),
            initrd: None,
            disks: Vec::new(),
            opened_disks: Vec::new(),
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
            seccomp: seccomp::Mode::Default,
            seccomp_selftest: false,
            host_checked: false,
            proc_files: None,
            jailed: false,
            snapshot: None,
            restore: None,
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
    /// The VMM's seccomp filters: `on` (a forbidden syscall kills the VMM), `log` or `off`.
    #[serde(default = "seccomp_off")]
    pub seccomp: String,
    /// Syscalls the vCPU threads' filter allows (with 1 vCPU: the main thread's, which runs
    /// the vCPU); `None` when off.
    #[serde(default)]
    pub seccomp_vcpu_syscalls: Option<u32>,
    /// Syscalls the main thread's filter allows with vCPU threads; `None` with 1 vCPU or off.
    #[serde(default)]
    pub seccomp_main_syscalls: Option<u32>,
    /// Whether the VMM ran inside `--jail`.
    #[serde(default)]
    pub jailed: bool,
    /// The guest asked the lab device for its params (after a restore: its first useful
    /// work, the next lab-device event after the ready signal it was saved at).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_params_ns: Option<u64>,
    /// The snapshot this run took (`--snapshot-at ready`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotReport>,
    /// The restore this run was built by (`--restore`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreReport>,
}

/// What taking the snapshot cost.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotReport {
    /// The directory.
    pub dir: String,
    /// When the VM paused at the ready signal, ns since the origin.
    pub paused_ns: u64,
    /// How long the guest stayed paused: vCPU and VM state, device states, memory file,
    /// state file and manifest written.
    pub snapshot_ns: u64,
    /// The memory file's size, bytes (its apparent size: zero pages are holes).
    pub memory_bytes: u64,
    /// Bytes of guest memory actually written (non-zero pages).
    pub memory_written_bytes: u64,
    /// The state file's size, bytes.
    pub state_bytes: u64,
    /// The manifest's size, bytes.
    pub manifest_bytes: u64,
}

/// What restoring cost.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RestoreReport {
    /// The directory.
    pub dir: String,
    /// `mmap`, `eager` or `uffd`.
    pub mode: String,
    /// The restore call: snapshot checked and loaded, memory mapped or read, KVM VM,
    /// irqchip, vCPUs and devices restored; ns.
    pub restore_ns: u64,
    /// Pages the userfaultfd handler copied in (mode `uffd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uffd_faults: Option<u64>,
}

fn seccomp_off() -> String {
    seccomp::Mode::Off.name().to_string()
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
            seccomp: seccomp_off(),
            seccomp_vcpu_syscalls: None,
            seccomp_main_syscalls: None,
            jailed: false,
            guest_params_ns: None,
            snapshot: None,
            restore: None,
        }
    }
}
