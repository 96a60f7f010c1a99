//! What the ramp reads after each step, each from the kernel's own
//! accounting: /proc/meminfo (MemAvailable and the kernel's shares), the Pss
//! of every process of the runtime (smaps_rollup: a shared page counts
//! 1/n in each of its n sharers, so the sum over all processes is the
//! memory they take together), the instances' own cgroups, host-wide process
//! and thread counts, OOM kills, KSM's counters.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::record::{KsmCounters, Meminfo};
use crate::spawn::tree;

/// Parses /proc/meminfo text.
pub fn parse_meminfo(text: &str) -> Meminfo {
    let f = |k| tree::kib_field(text, k).unwrap_or(0);
    Meminfo {
        total_kib: f("MemTotal"),
        available_kib: f("MemAvailable"),
        anon_kib: f("AnonPages"),
        slab_kib: f("Slab"),
        page_tables_kib: f("PageTables"),
        kernel_stack_kib: f("KernelStack"),
        shmem_kib: f("Shmem"),
    }
}

/// /proc/meminfo now.
pub fn meminfo() -> Meminfo {
    parse_meminfo(&std::fs::read_to_string("/proc/meminfo").unwrap_or_default())
}

/// One of the memory measures the ramp fits against N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Measure {
    /// The drop of MemAvailable since the baseline: what the host lost.
    MemAvailable,
    /// The sum of Pss of the runtime's processes.
    Pss,
    /// Slab + PageTables + KernelStack growth: the kernel's share (KVM, cgroup, task structures).
    Kernel,
    /// AnonPages growth.
    Anon,
    /// Memory charged to the instances' own cgroups.
    Cgroup,
}

impl Measure {
    /// Every measure, in report order.
    pub const ALL: [Measure; 5] = [
        Measure::MemAvailable,
        Measure::Pss,
        Measure::Kernel,
        Measure::Anon,
        Measure::Cgroup,
    ];

    /// Its name in files.
    pub const fn name(self) -> &'static str {
        match self {
            Measure::MemAvailable => "mem_available",
            Measure::Pss => "pss",
            Measure::Kernel => "kernel",
            Measure::Anon => "anon",
            Measure::Cgroup => "cgroup",
        }
    }

    /// What it is, for the report.
    pub const fn meaning(self) -> &'static str {
        match self {
            Measure::MemAvailable => "drop of /proc/meminfo MemAvailable since the ramp's baseline (everything the host lost: user and kernel memory, page cache the instances pin; other processes on the host add noise)",
            Measure::Pss => "sum of Pss (/proc/PID/smaps_rollup) over every process of the runtime: instances, launchers, VMMs (shared pages split between sharers; no kernel memory)",
            Measure::Kernel => "growth of Slab + PageTables + KernelStack in /proc/meminfo: the kernel's own structures (tasks, namespaces, cgroups, KVM)",
            Measure::Anon => "growth of AnonPages in /proc/meminfo (anonymous user memory host-wide, guest RAM the VMs touched included)",
            Measure::Cgroup => "sum of memory.usage_in_bytes (v1) / memory.current (v2) of the instances' own cgroups (only rows that make one)",
        }
    }

    /// Its value at `step` against `baseline`, KiB (None: not measured).
    pub fn kib(self, baseline: &Meminfo, step: &super::record::Step) -> Option<f64> {
        let d = |now: u64, base: u64| now as f64 - base as f64;
        let m = &step.meminfo;
        match self {
            Measure::MemAvailable => Some(d(baseline.available_kib, m.available_kib)),
            Measure::Pss => Some(step.pss_kib as f64),
            Measure::Kernel => Some(
                d(m.slab_kib, baseline.slab_kib)
                    + d(m.page_tables_kib, baseline.page_tables_kib)
                    + d(m.kernel_stack_kib, baseline.kernel_stack_kib),
            ),
            Measure::Anon => Some(d(m.anon_kib, baseline.anon_kib)),
            Measure::Cgroup => step.cgroup_kib.map(|k| k as f64),
        }
    }
}

/// Processes on the host (the numeric entries of /proc).
pub fn host_processes() -> u64 {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
                })
                .count() as u64
        })
        .unwrap_or(0)
}

/// Tasks (threads) on the host: the total of /proc/loadavg's `running/total`.
pub fn host_threads() -> u64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().nth(3)?.split_once('/')?.1.parse().ok())
        .unwrap_or(0)
}

/// The host's OOM kills so far (/proc/vmstat oom_kill).
pub fn oom_kills() -> u64 {
    std::fs::read_to_string("/proc/vmstat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("oom_kill "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// KSM's counters, where KSM exists.
pub fn ksm_counters() -> Option<KsmCounters> {
    let read = |f: &str| -> Option<u64> {
        std::fs::read_to_string(Path::new("/sys/kernel/mm/ksm").join(f))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    Some(KsmCounters {
        pages_shared: read("pages_shared")?,
        pages_sharing: read("pages_sharing")?,
        full_scans: read("full_scans")?,
    })
}

/// A sysctl-like file's trimmed text.
pub fn read_value(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The memory cgroup of `pid`: the path below the memory hierarchy, and
/// whether it is a cgroup2 path. From /proc/PID/cgroup: the v1 `memory`
/// line, else the v2 `0::` line.
pub fn memory_cgroup(pid: i32) -> Option<(String, bool)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    parse_memory_cgroup(&text)
}

/// See [`memory_cgroup`].
pub fn parse_memory_cgroup(text: &str) -> Option<(String, bool)> {
    let mut v2 = None;
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if ctrls.split(',').any(|c| c == "memory") {
            return Some((path.to_string(), false));
        }
        if ctrls.is_empty() {
            v2 = Some((path.to_string(), true));
        }
    }
    v2
}

/// The usage file of a memory cgroup, where the host has one.
fn usage_file(path: &str, v2: bool) -> PathBuf {
    let rel = path.trim_start_matches('/');
    if v2 {
        // A pure v2 host mounts the hierarchy at /sys/fs/cgroup; a hybrid one
        // at /sys/fs/cgroup/unified (without the memory controller, usually).
        let pure = Path::new("/sys/fs/cgroup").join(rel).join("memory.current");
        if pure.exists() {
            return pure;
        }
        Path::new("/sys/fs/cgroup/unified")
            .join(rel)
            .join("memory.current")
    } else {
        Path::new("/sys/fs/cgroup/memory")
            .join(rel)
            .join("memory.usage_in_bytes")
    }
}

/// What one pass over the runtime's processes found.
#[derive(Debug, Default)]
pub struct ProcessScan {
    /// Sum of Pss, KiB.
    pub pss_kib: u64,
    /// Processes.
    pub processes: u32,
    /// Threads.
    pub threads: u32,
    /// Sum of the instances' own memory cgroups, KiB (`None`: none found).
    pub cgroup_kib: Option<u64>,
    /// Every process seen, with its start time (for the leftover check).
    pub seen: Vec<(i32, u64)>,
}

/// Start time of `pid` (clock ticks since boot).
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Scans `pids` (every process of the runtime): Pss, thread counts, and the
/// memory of each distinct cgroup other than `own` (the harness's: a
/// process there has no cgroup of its own).
pub fn scan(pids: &[i32], own: Option<&(String, bool)>) -> ProcessScan {
    let mut s = ProcessScan::default();
    let mut cgroups = BTreeSet::new();
    for &pid in pids {
        let Ok(rollup) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
            continue;
        };
        s.pss_kib += tree::kib_field(&rollup, "Pss").unwrap_or(0);
        s.processes += 1;
        s.threads += std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| d.count() as u32)
            .unwrap_or(1);
        if let Some(cg) = memory_cgroup(pid) {
            if Some(&cg) != own {
                cgroups.insert(cg);
            }
        }
        if let Some(t) = start_time(pid) {
            s.seen.push((pid, t));
        }
    }
    let mut total = None;
    for (path, v2) in &cgroups {
        let bytes = std::fs::read_to_string(usage_file(path, *v2))
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok());
        if let Some(b) = bytes {
            total = Some(total.unwrap_or(0) + b / 1024);
        }
    }
    s.cgroup_kib = total;
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::density::record::Step;

    #[test]
    fn reads_meminfo() {
        let m = parse_meminfo(
            "MemTotal:       24683584 kB\nMemFree: 1 kB\nMemAvailable:   23840168 kB\nShmem: 9 kB\nSlab: 100 kB\nKernelStack: 20 kB\nPageTables: 30 kB\nAnonPages: 400 kB\n",
        );
        assert_eq!(m.total_kib, 24683584);
        assert_eq!(m.available_kib, 23840168);
        assert_eq!(
            (m.slab_kib, m.kernel_stack_kib, m.page_tables_kib),
            (100, 20, 30)
        );
        assert_eq!((m.anon_kib, m.shmem_kib), (400, 9));
        let live = meminfo();
        assert!(live.total_kib > 0 && live.available_kib > 0);
    }

    #[test]
    fn measures_are_deltas_from_the_baseline() {
        let base = Meminfo {
            available_kib: 1000,
            slab_kib: 10,
            page_tables_kib: 10,
            kernel_stack_kib: 10,
            anon_kib: 50,
            ..Meminfo::default()
        };
        let step = Step {
            meminfo: Meminfo {
                available_kib: 900,
                slab_kib: 20,
                page_tables_kib: 15,
                kernel_stack_kib: 12,
                anon_kib: 80,
                ..Meminfo::default()
            },
            pss_kib: 70,
            ..Step::default()
        };
        assert_eq!(Measure::MemAvailable.kib(&base, &step), Some(100.0));
        assert_eq!(Measure::Kernel.kib(&base, &step), Some(17.0));
        assert_eq!(Measure::Anon.kib(&base, &step), Some(30.0));
        assert_eq!(Measure::Pss.kib(&base, &step), Some(70.0));
        assert_eq!(Measure::Cgroup.kib(&base, &step), None);
    }

    #[test]
    fn finds_the_memory_cgroup() {
        let v1 = "9:name=systemd:/\n4:memory:/process_api/abc\n0::/\n";
        assert_eq!(
            parse_memory_cgroup(v1),
            Some(("/process_api/abc".into(), false))
        );
        assert_eq!(
            parse_memory_cgroup("0::/user.slice/x\n"),
            Some(("/user.slice/x".into(), true))
        );
        assert_eq!(parse_memory_cgroup(""), None);
    }

    #[test]
    fn counts_this_host() {
        assert!(host_processes() > 1);
        assert!(host_threads() >= host_processes());
        let me = std::process::id() as i32;
        let s = scan(&[me], memory_cgroup(me).as_ref());
        assert_eq!(s.processes, 1);
        assert!(s.threads >= 1 && s.pss_kib > 0);
        assert_eq!(s.cgroup_kib, None, "the own cgroup is not counted");
        assert_eq!(s.seen.len(), 1);
    }
}
