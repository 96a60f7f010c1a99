//! The host record: what machine a set of figures comes from. Every
//! `results.json` carries one, and `vclab host` prints it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use vclab_container::cgroups::CgroupMode;
use vclab_vmm::host::KvmKind;

/// The peer programs the lab compares itself with, in display order.
pub const PEERS: &[&str] = &[
    "qemu-system-x86_64",
    "runc",
    "crun",
    "firecracker",
    "cloud-hypervisor",
    "hyperfine",
];

/// One peer program: where it is and what version it reports.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct PeerInfo {
    /// Program name.
    pub name: String,
    /// Absolute path, when installed.
    pub path: Option<PathBuf>,
    /// First line of `<program> --version`, when it answered.
    pub version: Option<String>,
}

/// The machine a set of figures comes from. Fields missing from an older
/// results file read as their defaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct HostRecord {
    /// Version of vclab that measured.
    pub vclab_version: String,
    /// CPU model name from /proc/cpuinfo.
    pub cpu_model: String,
    /// Online logical CPUs.
    pub cores: u32,
    /// Total memory, MiB.
    pub memory_mib: u64,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// `/dev/kvm` exists.
    pub kvm_present: bool,
    /// KVM kind (`hardware-vmx`, `hardware-svm`, `pvm`, `unknown`, `absent`).
    pub kvm_kind: Option<KvmKind>,
    /// What the KVM kind means for guests.
    pub kvm_explanation: String,
    /// cgroup mode (`v1`, `v2`, `hybrid`, `none`).
    pub cgroup_mode: Option<CgroupMode>,
    /// Each peer, installed or not.
    pub peers: Vec<PeerInfo>,
    /// What else the host was doing while the figures were measured (steal,
    /// iowait, load, CPU frequency): `end.since(&start)` of two
    /// [`NoiseSnapshot`]s taken at the start and end of the run. Absent from
    /// `vclab host` and from files written before it was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noise: Option<Noise>,
}

impl HostRecord {
    /// Probes this host. `overrides` maps a peer name to a path given on the
    /// command line (e.g. `--firecracker PATH`).
    pub fn detect(overrides: &[(&str, Option<&Path>)]) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kvm = KvmKind::detect();
        HostRecord {
            vclab_version: if cfg!(debug_assertions) {
                format!(
                    "{} (debug build: VMM and launcher figures are slower than release)",
                    env!("CARGO_PKG_VERSION")
                )
            } else {
                env!("CARGO_PKG_VERSION").to_string()
            },
            cpu_model: cpu_model(&cpuinfo),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            memory_mib: mem_total_kib(&meminfo) / 1024,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            kvm_present: Path::new("/dev/kvm").exists(),
            kvm_kind: Some(kvm),
            kvm_explanation: explain_kvm(kvm).to_string(),
            cgroup_mode: Some(vclab_container::cgroups::detect_mode()),
            peers: PEERS
                .iter()
                .map(|name| {
                    let given = overrides
                        .iter()
                        .find(|(n, _)| n == name)
                        .and_then(|(_, p)| *p);
                    probe_peer(name, given)
                })
                .collect(),
            noise: None,
        }
    }

    /// The peer named `name`, when installed.
    pub fn peer(&self, name: &str) -> Option<&PeerInfo> {
        self.peers
            .iter()
            .find(|p| p.name == name && p.path.is_some())
    }

    /// The KVM kind as its kebab-case name.
    pub fn kvm_name(&self) -> String {
        self.kvm_kind
            .and_then(|k| serde_json::to_value(k).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "unknown".into())
    }

    /// The cgroup mode as its kebab-case name.
    pub fn cgroup_name(&self) -> String {
        self.cgroup_mode
            .and_then(|k| serde_json::to_value(k).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "unknown".into())
    }
}

/// Aggregate CPU time of all CPUs from the `cpu` line of /proc/stat, in
/// clock ticks (`guest` and `guest_nice` are already inside `user`/`nice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct CpuTicks {
    busy: u64,
    idle: u64,
    iowait: u64,
    steal: u64,
}

impl CpuTicks {
    fn total(&self) -> u64 {
        self.busy + self.idle + self.iowait + self.steal
    }
}

/// The `cpu` line of /proc/stat and the number of `cpuN` lines (online CPUs).
fn parse_proc_stat(stat: &str) -> Option<(CpuTicks, u32)> {
    let mut lines = stat.lines();
    let first = lines.next()?;
    let mut f = first.split_whitespace();
    if f.next()? != "cpu" {
        return None;
    }
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    let v: Vec<u64> = f.take(8).map(|x| x.parse().unwrap_or(0)).collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    let ticks = CpuTicks {
        busy: at(0) + at(1) + at(2) + at(5) + at(6),
        idle: at(3),
        iowait: at(4),
        steal: at(7),
    };
    let cpus = lines
        .take_while(|l| l.starts_with("cpu"))
        .filter(|l| l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count() as u32;
    Some((ticks, cpus))
}

/// The 1-minute load average from /proc/loadavg.
fn parse_loadavg(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// Where a CPU frequency was read.
pub const FREQ_SCALING: &str = "cpufreq scaling_cur_freq";
/// Where a CPU frequency was read when cpufreq is not visible (often a fixed,
/// nominal figure in a guest).
pub const FREQ_CPUINFO: &str = "/proc/cpuinfo cpu MHz";

/// The mean of the `cpu MHz` lines of /proc/cpuinfo.
fn cpuinfo_mhz(cpuinfo: &str) -> Option<f64> {
    let mhz: Vec<f64> = cpuinfo
        .lines()
        .filter(|l| l.starts_with("cpu MHz"))
        .filter_map(|l| l.split_once(':')?.1.trim().parse().ok())
        .collect();
    (!mhz.is_empty()).then(|| mhz.iter().sum::<f64>() / mhz.len() as f64)
}

/// The mean current CPU frequency in MHz and where it was read: cpufreq's
/// `scaling_cur_freq` of every CPU, else /proc/cpuinfo.
fn cpu_mhz() -> Option<(f64, &'static str)> {
    let khz: Vec<f64> = std::fs::read_dir("/sys/devices/system/cpu")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.strip_prefix("cpu")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| {
            std::fs::read_to_string(e.path().join("cpufreq/scaling_cur_freq"))
                .ok()?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .collect();
    if !khz.is_empty() {
        return Some((
            khz.iter().sum::<f64>() / khz.len() as f64 / 1000.0,
            FREQ_SCALING,
        ));
    }
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    cpuinfo_mhz(&cpuinfo).map(|m| (m, FREQ_CPUINFO))
}

/// The host's CPU counters at one moment: take one at the start of a run and
/// one at its end, then `end.since(&start)` gives the [`Noise`] in between.
#[derive(Debug, Clone)]
pub struct NoiseSnapshot {
    at: Instant,
    ticks: Option<CpuTicks>,
    cpus: u32,
    loadavg_1m: Option<f64>,
    cpu_mhz: Option<(f64, &'static str)>,
}

impl NoiseSnapshot {
    /// Reads /proc/stat, /proc/loadavg and the CPU frequency now. Never
    /// fails: what cannot be read is left out of the [`Noise`].
    pub fn take() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        Self::from_texts(&stat, &loadavg, cpu_mhz())
    }

    /// A snapshot from the texts of /proc/stat and /proc/loadavg (for tests).
    fn from_texts(stat: &str, loadavg: &str, cpu_mhz: Option<(f64, &'static str)>) -> Self {
        let parsed = parse_proc_stat(stat);
        NoiseSnapshot {
            at: Instant::now(),
            ticks: parsed.map(|(t, _)| t),
            cpus: parsed.map_or(0, |(_, n)| n),
            loadavg_1m: parse_loadavg(loadavg),
            cpu_mhz,
        }
    }

    /// What the host did between `start` and this snapshot.
    pub fn since(&self, start: &NoiseSnapshot) -> Noise {
        let pct = |f: fn(&CpuTicks) -> u64| -> Option<f64> {
            let (a, b) = (start.ticks?, self.ticks?);
            let total = b.total().checked_sub(a.total()).filter(|t| *t > 0)?;
            Some(f(&b).saturating_sub(f(&a)) as f64 * 100.0 / total as f64)
        };
        Noise {
            seconds: self.at.saturating_duration_since(start.at).as_secs_f64(),
            cpus: self.cpus,
            steal_pct: pct(|t| t.steal),
            iowait_pct: pct(|t| t.iowait),
            busy_pct: pct(|t| t.busy),
            loadavg_1m_start: start.loadavg_1m,
            loadavg_1m_end: self.loadavg_1m,
            cpu_mhz_start: start.cpu_mhz.map(|(m, _)| m),
            cpu_mhz_end: self.cpu_mhz.map(|(m, _)| m),
            cpu_mhz_source: self.cpu_mhz.or(start.cpu_mhz).map(|(_, s)| s.to_string()),
        }
    }
}

/// What else the host was doing during a run, from /proc/stat (all CPUs'
/// time between two [`NoiseSnapshot`]s), /proc/loadavg and the CPU frequency.
/// Steal is time a hypervisor below this host gave to someone else: on a
/// shared cloud machine it is the first suspect for run-to-run spread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Noise {
    /// Wall time between the two snapshots, seconds.
    pub seconds: f64,
    /// Online CPUs (`cpuN` lines of /proc/stat).
    pub cpus: u32,
    /// Steal time, % of all CPUs' time.
    pub steal_pct: Option<f64>,
    /// I/O wait, % of all CPUs' time.
    pub iowait_pct: Option<f64>,
    /// Busy (user, nice, system, irq, softirq), % of all CPUs' time.
    pub busy_pct: Option<f64>,
    /// 1-minute load average at the start.
    pub loadavg_1m_start: Option<f64>,
    /// 1-minute load average at the end.
    pub loadavg_1m_end: Option<f64>,
    /// Mean CPU frequency at the start, MHz.
    pub cpu_mhz_start: Option<f64>,
    /// Mean CPU frequency at the end, MHz.
    pub cpu_mhz_end: Option<f64>,
    /// Where the frequency was read ([`FREQ_SCALING`] or [`FREQ_CPUINFO`]).
    pub cpu_mhz_source: Option<String>,
}

impl Noise {
    /// One line for the reports: "steal 1.2 %, iowait 0.1 %, busy 93.0 % of
    /// 2 CPUs' time; load average (1 min) 0.40 → 2.10; CPU 2445 MHz
    /// (/proc/cpuinfo cpu MHz); over 312 s".
    pub fn describe(&self) -> String {
        let pct = |name: &str, v: Option<f64>| v.map(|v| format!("{name} {v:.1} %"));
        let shares: Vec<String> = [
            pct("steal", self.steal_pct),
            pct("iowait", self.iowait_pct),
            pct("busy", self.busy_pct),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut parts = Vec::new();
        if shares.is_empty() {
            parts.push("/proc/stat not readable".to_string());
        } else {
            parts.push(format!("{} of {} CPUs' time", shares.join(", "), self.cpus));
        }
        let pair = |a: Option<f64>, b: Option<f64>, d: usize| match (a, b) {
            (Some(a), Some(b)) if format!("{a:.d$}") == format!("{b:.d$}") => {
                Some(format!("{a:.d$}"))
            }
            (Some(a), Some(b)) => Some(format!("{a:.d$} → {b:.d$}")),
            (a, b) => a.or(b).map(|v| format!("{v:.d$}")),
        };
        if let Some(l) = pair(self.loadavg_1m_start, self.loadavg_1m_end, 2) {
            parts.push(format!("load average (1 min) {l}"));
        }
        if let Some(f) = pair(self.cpu_mhz_start, self.cpu_mhz_end, 0) {
            let source = self.cpu_mhz_source.as_deref().unwrap_or("unknown source");
            parts.push(format!("CPU {f} MHz ({source})"));
        }
        parts.push(format!("over {:.0} s", self.seconds));
        parts.join("; ")
    }
}

impl HostRecord {
    /// "host noise during the run: …" for the reports, or that it was not recorded.
    pub fn noise_line(&self) -> String {
        match &self.noise {
            Some(n) => format!("host noise during the run: {}", n.describe()),
            None => "host noise during the run: not recorded".to_string(),
        }
    }
}

/// What each KVM kind means for the lab's guests.
pub fn explain_kvm(kind: KvmKind) -> &'static str {
    match kind {
        KvmKind::HardwareVmx | KvmKind::HardwareSvm => {
            "hardware virtualisation: guest kernels and guest userspace run natively; Linux guests boot to userspace"
        }
        KvmKind::Pvm => {
            "kvm_pvm: a page-table based nested hypervisor. Guest ring 0 is emulated instruction by instruction \
             (a Linux kernel takes minutes to reach init) and guest userspace cannot make system calls, so Linux \
             guests are timed to the kernel's init handoff only; the unikernel runs its workload at CPL 3 natively"
        }
        KvmKind::Unknown => "KVM of unknown kind: guests may or may not run; the lab tries them",
        KvmKind::Absent => "no /dev/kvm: no VM rows can run on this host",
    }
}

fn cpu_model(cpuinfo: &str) -> String {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn mem_total_kib(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Finds `name` on `$PATH` (plus the sbin directories root's PATH may lack).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn probe_peer(name: &str, given: Option<&Path>) -> PeerInfo {
    let path = match given {
        Some(p) if is_executable(p) => Some(p.to_path_buf()),
        Some(_) => None,
        None => which(name),
    };
    let version = path.as_ref().and_then(|p| version_of(p));
    PeerInfo {
        name: name.to_string(),
        path,
        version,
    }
}

fn version_of(path: &Path) -> Option<String> {
    let out = Command::new(path).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())?
        .trim()
        .to_string();
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpuinfo_and_meminfo() {
        let cpuinfo = "processor\t: 0\nmodel name\t: Example CPU @ 2.00GHz\nflags\t: fpu\n";
        assert_eq!(cpu_model(cpuinfo), "Example CPU @ 2.00GHz");
        assert_eq!(cpu_model(""), "unknown");
        assert_eq!(mem_total_kib("MemTotal:       24684000 kB\n"), 24684000);
        assert_eq!(mem_total_kib("garbage"), 0);
    }

    const STAT_START: &str = "cpu  100 0 50 800 10 0 0 40 7 0\n\
                              cpu0 50 0 25 400 5 0 0 20 0 0\n\
                              cpu1 50 0 25 400 5 0 0 20 0 0\n\
                              intr 1 2 3\n";
    const STAT_END: &str = "cpu  700 0 150 1000 20 0 0 90 70 0\n\
                            cpu0 350 0 75 500 10 0 0 45 0 0\n\
                            cpu1 350 0 75 500 10 0 0 45 0 0\n";

    #[test]
    fn noise_is_the_delta_of_proc_stat() {
        let start = NoiseSnapshot::from_texts(STAT_START, "0.40 0.30 0.20 1/99 5\n", None);
        let end = NoiseSnapshot::from_texts(
            STAT_END,
            "2.10 1.00 0.50 3/101 9\n",
            Some((2445.4, FREQ_CPUINFO)),
        );
        let n = end.since(&start);
        // Δ busy 700, idle 200, iowait 10, steal 50: 960 ticks.
        assert_eq!(n.cpus, 2);
        assert!((n.steal_pct.unwrap() - 50.0 * 100.0 / 960.0).abs() < 1e-9);
        assert!((n.iowait_pct.unwrap() - 10.0 * 100.0 / 960.0).abs() < 1e-9);
        assert!((n.busy_pct.unwrap() - 700.0 * 100.0 / 960.0).abs() < 1e-9);
        assert_eq!(
            (n.loadavg_1m_start, n.loadavg_1m_end),
            (Some(0.4), Some(2.1))
        );
        assert_eq!(n.cpu_mhz_source.as_deref(), Some(FREQ_CPUINFO));
        let line = n.describe();
        assert!(
            line.starts_with("steal 5.2 %, iowait 1.0 %, busy 72.9 % of 2 CPUs' time; load average (1 min) 0.40 → 2.10; CPU 2445 MHz (/proc/cpuinfo cpu MHz); over "),
            "{line}"
        );
        // Nothing readable: no shares, no panic.
        let blank = NoiseSnapshot::from_texts("", "", None);
        let n = blank.since(&blank);
        assert_eq!((n.steal_pct, n.cpus), (None, 0));
        assert!(n.describe().starts_with("/proc/stat not readable"));
    }

    #[test]
    fn noise_of_this_host_and_old_records() {
        let start = NoiseSnapshot::take();
        let n = NoiseSnapshot::take().since(&start);
        assert!(n.cpus >= 1 && n.seconds >= 0.0);
        assert_eq!(
            cpuinfo_mhz("cpu MHz\t\t: 2000.0\ncpu MHz\t\t: 3000.0\n"),
            Some(2500.0)
        );
        // A record written before noise was recorded loads without it.
        let h: HostRecord = serde_json::from_str(r#"{"cpu_model":"x","cores":2}"#).unwrap();
        assert_eq!(h.noise, None);
        assert_eq!(h.noise_line(), "host noise during the run: not recorded");
    }

    #[test]
    fn detects_this_host() {
        let h = HostRecord::detect(&[]);
        assert!(h.cores >= 1);
        assert!(h.memory_mib > 0);
        assert!(!h.kernel.is_empty());
        assert_eq!(h.peers.len(), PEERS.len());
        // A peer given by a path that does not exist is reported as missing.
        let h = HostRecord::detect(&[("firecracker", Some(Path::new("/nonexistent/fc")))]);
        assert!(h.peer("firecracker").is_none());
    }
}
