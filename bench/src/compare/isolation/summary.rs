//! The summarise and render steps of the isolation probe: pure functions of the saved
//! [`Isolation`] record (the rows' probe lines, format 1 of `vclab-workload probe`).

use serde::Deserialize;
use serde_json::Value;
use vclab_contract::probe::{Outcome, ProbeLine, FORMAT};

use super::{Isolation, RowProbe, VmSurface};

/// How the isolation table was measured, printed under it.
pub const METHOD: &str = "Each row ran `vclab-workload probe` once: every x86_64 syscall number 0-479 called in a forked child with all-ones, then zero arguments (reachable: any result but ENOSYS/EPERM/SIGSYS with every set); kernel release, uptime, load average, a hash of /proc/cpuinfo's model lines and the cgroups under /sys/fs/cgroup off the process's own line, against bare's view; and (not on bare) the escape checks: write back /proc/sys/kernel/printk_ratelimit and a /sys/kernel/mm value, open /proc/sysrq-trigger for writing, mount without a type, mknod of block device 7:0, PTRACE_SEIZE of the harness, init_module of garbage, unshare(CLONE_NEWUSER), an AF_PACKET raw socket, keyctl, each in a form that changes nothing where allowed. The VM row counts the syscalls each VMM thread's seccomp filter allows";

/// Uptimes closer than this to bare's are the host's (the probes run seconds apart).
const SAME_UPTIME_S: f64 = 60.0;

/// One row's probe, summarised.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RowSummary {
    /// The row name.
    pub row: String,
    /// Its configuration.
    pub config: String,
    /// Syscall numbers that reached the kernel.
    pub reachable: Option<u64>,
    /// Assigned syscalls that were blocked (ENOSYS, EPERM or SIGSYS with every argument set).
    pub blocked: Option<u64>,
    /// The kernel's seccomp mode for the probe (0 none, 2 filter).
    pub seccomp: Option<u64>,
    /// Kernel release seen.
    pub kernel: Option<String>,
    /// Uptime seen, seconds.
    pub uptime_s: Option<f64>,
    /// 1-minute load average seen.
    pub load1: Option<f64>,
    /// Hash of the cpuinfo model lines.
    pub cpuinfo_hash: Option<String>,
    /// Cgroups of other tenants seen.
    pub foreign_cgroups: Option<u64>,
    /// Escape checks that were blocked.
    pub escapes_blocked: usize,
    /// Escape checks that ran (not skipped).
    pub escapes_run: usize,
    /// The checks that were allowed.
    pub allowed: Vec<String>,
    /// Why the row has no line.
    pub failure: Option<String>,
}

/// Summarises one row.
pub fn summarise_row(p: &RowProbe) -> RowSummary {
    let mut s = RowSummary {
        row: p.row.clone(),
        config: p.config.clone(),
        failure: p.failure.clone(),
        ..RowSummary::default()
    };
    let Some(value) = &p.line else {
        return s;
    };
    let line = match ProbeLine::deserialize(value) {
        Ok(line) => line,
        Err(e) => {
            s.failure = Some(format!(
                "its probe line is not a probe line (format {FORMAT}): {e}"
            ));
            return s;
        }
    };
    if let Some(sys) = &line.syscalls {
        s.reachable = Some(sys.reachable.into());
        s.blocked = Some(sys.blocked_named.into());
    }
    s.seccomp = line.process.seccomp;
    let host = line.host;
    s.kernel = Some(host.kernel);
    s.uptime_s = host.uptime_s;
    s.load1 = host.loadavg.map(|l| l[0]);
    s.cpuinfo_hash = Some(host.cpuinfo_model_hash).filter(|h| !h.is_empty());
    s.foreign_cgroups = Some(host.foreign_cgroups.into());
    for c in line.escapes {
        match c.result {
            Outcome::Blocked => {
                s.escapes_run += 1;
                s.escapes_blocked += 1;
            }
            Outcome::Allowed => {
                s.escapes_run += 1;
                s.allowed.push(c.check);
            }
            Outcome::Skipped => {}
        }
    }
    s
}

/// Summarises every row.
pub fn summarise(iso: &Isolation) -> Vec<RowSummary> {
    iso.rows.iter().map(summarise_row).collect()
}

/// What `s` sees of the host, judged against bare's view (`None`: no bare row to compare with):
/// the names of the facts that are the host's.
pub fn sees_host(s: &RowSummary, bare: Option<&RowSummary>) -> Vec<&'static str> {
    let mut seen = Vec::new();
    let Some(b) = bare else {
        return seen;
    };
    let same = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
    if same(&s.kernel, &b.kernel) {
        seen.push("kernel version");
    }
    if let (Some(x), Some(y)) = (s.uptime_s, b.uptime_s) {
        if (x - y).abs() < SAME_UPTIME_S {
            seen.push("uptime");
        }
    }
    if same(&s.cpuinfo_hash, &b.cpuinfo_hash) {
        seen.push("cpuinfo");
    }
    if s.load1.is_some() && b.load1.is_some() {
        seen.push("load average");
    }
    if s.foreign_cgroups.is_some_and(|n| n > 0) {
        seen.push("other tenants' cgroups");
    }
    seen
}

/// Column titles of the isolation table.
pub const HEADERS: &[&str] = &[
    "row",
    "configuration",
    "syscalls reachable",
    "syscalls blocked",
    "seccomp",
    "sees of the host",
    "other tenants' cgroups",
    "escape checks blocked",
    "ALLOWED",
];

fn opt_u(v: Option<u64>) -> String {
    v.map_or_else(|| "–".into(), |n| n.to_string())
}

/// The isolation table: one row per probed row, then the micro-VM.
pub fn table(iso: &Isolation) -> Vec<Vec<String>> {
    let rows = summarise(iso);
    let bare = rows.iter().find(|r| r.row == "bare");
    let mut out: Vec<Vec<String>> = rows
        .iter()
        .map(|s| {
            if let Some(f) = &s.failure {
                return vec![
                    s.row.clone(),
                    s.config.clone(),
                    format!("FAILED: {f}"),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                ];
            }
            let seen = if s.row == "bare" {
                "everything (it is the host)".to_string()
            } else {
                match sees_host(s, bare) {
                    v if v.is_empty() && bare.is_none() => "– (no bare row)".into(),
                    v if v.is_empty() => "none of it".into(),
                    v => v.join(", "),
                }
            };
            let escapes = if s.escapes_run == 0 {
                "not run".to_string()
            } else {
                format!("{}/{}", s.escapes_blocked, s.escapes_run)
            };
            vec![
                s.row.clone(),
                s.config.clone(),
                opt_u(s.reachable),
                opt_u(s.blocked),
                match s.seccomp {
                    Some(2) => "filter".into(),
                    Some(0) => "none".into(),
                    other => opt_u(other),
                },
                seen,
                opt_u(s.foreign_cgroups),
                escapes,
                s.allowed.join(", "),
            ]
        })
        .collect();
    out.push(vm_cells(&iso.vm));
    out
}

/// `vCPU N / main N / 1-vCPU N`, or why not.
pub fn vm_syscalls(vm: &VmSurface) -> String {
    match (vm.syscalls_vcpu, vm.syscalls_main, vm.syscalls_single) {
        (Some(v), Some(m), Some(s)) => format!("{v} (vCPU) / {m} (main) / {s} (1-vCPU main)"),
        _ => "not counted".into(),
    }
}

fn vm_cells(vm: &VmSurface) -> Vec<String> {
    let mut config = "vclab-vmm, a seccomp filter per thread".to_string();
    if let Some(k) = vm.exit_kinds {
        config += &format!("; {k} exit kinds handled");
    }
    if let Some(d) = vm.device_registers {
        config += &format!("; {d} device registers");
    }
    vec![
        "micro-VM (VMM)".into(),
        config,
        format!("{} allowed to the VMM", vm_syscalls(vm)),
        String::new(),
        "filter".into(),
        "its own kernel, uptime and load (the guest's); CPUID as KVM passes it".into(),
        "none (the guest has none of the host's)".into(),
        "not probed (the unikernel makes no syscalls)".into(),
        vm.notes.join("; "),
    ]
}

/// The course table's "isolation" measurement: reach side by side, what a container sees of
/// the host, which escape checks each runtime blocks, and the VMM's filter.
pub fn course_text(iso: &Isolation) -> String {
    let rows = summarise(iso);
    let bare = rows.iter().find(|r| r.row == "bare");
    let reach: Vec<String> = rows
        .iter()
        .filter_map(|s| s.reachable.map(|n| format!("{} {n}", s.row)))
        .collect();
    let mut parts = Vec::new();
    if !reach.is_empty() {
        parts.push(format!(
            "host syscalls reachable: {} (of {} probed numbers)",
            reach.join(", "),
            iso.rows
                .iter()
                .find_map(|r| Some(
                    ProbeLine::deserialize(r.line.as_ref()?)
                        .ok()?
                        .syscalls?
                        .probed
                ))
                .unwrap_or(0)
        ));
    }
    parts.push(format!("the VMM's filters allow {}", vm_syscalls(&iso.vm)));
    if let Some(c) = rows
        .iter()
        .find(|r| r.row == "container" && r.failure.is_none())
    {
        let seen = sees_host(c, bare);
        if !seen.is_empty() {
            parts.push(format!(
                "a container sees the host's {}, a VM its own",
                seen.join(", ")
            ));
        }
    }
    let escapes: Vec<String> = rows
        .iter()
        .filter(|s| s.escapes_run > 0)
        .map(|s| {
            let mut t = format!("{} {}/{}", s.row, s.escapes_blocked, s.escapes_run);
            if !s.allowed.is_empty() {
                t += &format!(" (allowed: {})", s.allowed.join(", "));
            }
            t
        })
        .collect();
    if !escapes.is_empty() {
        parts.push(format!("escape checks blocked: {}", escapes.join("; ")));
    }
    parts.join("; ")
}

/// Whether every container-family row that ran blocked every escape check.
pub fn containers_block_all(iso: &Isolation) -> Option<bool> {
    let rows: Vec<RowSummary> = summarise(iso)
        .into_iter()
        .filter(|s| s.row == "container" && s.escapes_run > 0)
        .collect();
    (!rows.is_empty()).then(|| rows.iter().all(|s| s.allowed.is_empty()))
}

/// The rows' lines, for tests and for readers of old files: the line of `row`, if any.
pub fn line_of<'a>(iso: &'a Isolation, row: &str) -> Option<&'a Value> {
    iso.rows.iter().find(|r| r.row == row)?.line.as_ref()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A recorded line of the bare host (trimmed: two blocked entries kept).
    pub const BARE: &str = r#"{"probe":1,"syscalls":{"max_nr":479,"probed":480,"named":383,"reachable":357,"reachable_named":357,"blocked_named":26,"blocked":[{"nr":134,"name":"uselib","by":"ENOSYS"},{"nr":156,"name":"_sysctl","by":"ENOSYS"}],"failed":[]},"host":{"kernel":"6.18.44-fc-v1045","uptime_s":11737.41,"loadavg":[4.72,2.58,2.24],"cpus":2,"cpuinfo_model_hash":"0f5ceb80fdb03f75","own_cgroups":["/","/process_api/0d28"],"foreign_cgroups":7,"foreign_cgroup_sample":["memory:/process_api/1122"]},"process":{"uid":0,"seccomp":0,"seccomp_filters":0,"no_new_privs":0,"cap_eff":"000001fffeffffff"},"escapes":[{"check":"mount","result":"skipped","why":"not asked (--escapes)","detail":""}]}"#;

    /// A recorded line of the lab's container before its seccomp profile (trimmed).
    pub const CONTAINER: &str = r#"{"probe":1,"syscalls":{"max_nr":479,"probed":480,"named":383,"reachable":345,"reachable_named":345,"blocked_named":38,"blocked":[{"nr":103,"name":"syslog","by":"EPERM"}],"failed":[]},"host":{"kernel":"6.18.44-fc-v1045","uptime_s":11788.45,"loadavg":[5.52,3.14,2.45],"cpus":2,"cpuinfo_model_hash":"0f5ceb80fdb03f75","own_cgroups":["/"],"foreign_cgroups":0,"foreign_cgroup_sample":[]},"process":{"uid":0,"seccomp":0,"seccomp_filters":0,"no_new_privs":1,"cap_eff":"00000000a80425fb"},"escapes":[{"check":"proc_sys_write","result":"blocked","errno":"EROFS","detail":"x"},{"check":"mount","result":"blocked","errno":"EPERM","detail":"x"},{"check":"mknod_block","result":"ALLOWED","how":"created, removed; and it opens","detail":"x"},{"check":"keyctl","result":"ALLOWED","how":"succeeded","detail":"x"}]}"#;

    /// An isolation record of the two lines and a failed runc row.
    pub fn record() -> Isolation {
        let row = |name: &str, line: Option<&str>, failure: Option<&str>| RowProbe {
            row: name.into(),
            config: "cfg".into(),
            line: line.map(|l| serde_json::from_str(l).unwrap()),
            failure: failure.map(str::to_owned),
        };
        Isolation {
            rows: vec![
                row("bare", Some(BARE), None),
                row("container", Some(CONTAINER), None),
                row("runc", None, Some("not run: runc is not installed")),
            ],
            vm: VmSurface {
                syscalls_vcpu: Some(21),
                syscalls_main: Some(17),
                syscalls_single: Some(30),
                ..VmSurface::default()
            },
        }
    }

    #[test]
    fn summarises_a_recorded_line() {
        let rows = summarise(&record());
        let c = &rows[1];
        assert_eq!(c.reachable, Some(345));
        assert_eq!(c.blocked, Some(38));
        assert_eq!(c.seccomp, Some(0));
        assert_eq!(c.foreign_cgroups, Some(0));
        assert_eq!((c.escapes_blocked, c.escapes_run), (2, 4));
        assert_eq!(c.allowed, ["mknod_block", "keyctl"]);
        // bare skipped its escape checks.
        assert_eq!(rows[0].escapes_run, 0);
        assert_eq!(
            rows[2].failure.as_deref(),
            Some("not run: runc is not installed")
        );
    }

    #[test]
    fn a_container_sees_the_hosts_kernel_uptime_cpuinfo_and_load() {
        let rows = summarise(&record());
        let seen = sees_host(&rows[1], Some(&rows[0]));
        assert_eq!(
            seen,
            ["kernel version", "uptime", "cpuinfo", "load average"]
        );
        // A different kernel and a far uptime are not the host's.
        let mut vm_like = rows[1].clone();
        vm_like.kernel = Some("6.1.0-guest".into());
        vm_like.uptime_s = Some(3.0);
        vm_like.foreign_cgroups = Some(2);
        assert_eq!(
            sees_host(&vm_like, Some(&rows[0])),
            ["cpuinfo", "load average", "other tenants' cgroups"]
        );
        assert!(sees_host(&rows[1], None).is_empty());
    }

    #[test]
    fn the_table_has_every_row_and_the_vm() {
        let t = table(&record());
        assert_eq!(t.len(), 4);
        assert!(t.iter().all(|r| r.len() == HEADERS.len()));
        assert_eq!(t[1][2], "345");
        assert_eq!(t[1][7], "2/4");
        assert_eq!(t[1][8], "mknod_block, keyctl");
        assert_eq!(t[0][7], "not run");
        assert!(t[2][2].starts_with("FAILED: not run"));
        assert!(t[3][2].starts_with("21 (vCPU) / 17 (main) / 30 (1-vCPU main)"));
    }

    #[test]
    fn the_course_text_quotes_reach_visibility_and_escapes() {
        let text = course_text(&record());
        assert!(text.contains("bare 357, container 345"), "{text}");
        assert!(text.contains("of 480 probed numbers"), "{text}");
        assert!(text.contains("21 (vCPU)"), "{text}");
        assert!(
            text.contains("kernel version, uptime, cpuinfo, load average"),
            "{text}"
        );
        assert!(
            text.contains("container 2/4 (allowed: mknod_block, keyctl)"),
            "{text}"
        );
        assert_eq!(containers_block_all(&record()), Some(false));
        assert_eq!(containers_block_all(&Isolation::default()), None);
    }

    #[test]
    fn saved_and_loaded_unchanged() {
        let r = record();
        let text = serde_json::to_string(&r).unwrap();
        let back: Isolation = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        assert_eq!(line_of(&back, "container").unwrap()["probe"], 1);
    }
}
