//! The probe line's types.

use alloc::string::String;
use alloc::vec::Vec;

#[cfg(all(test, feature = "serde"))]
use super::FORMAT;

/// One probe line.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ProbeLine {
    /// [`super::FORMAT`].
    pub probe: u32,
    /// The syscall reach; `None` with `--no-syscalls`.
    pub syscalls: Option<Syscalls>,
    /// What the process sees of the host.
    pub host: HostView,
    /// The process's own confinement.
    pub process: ProcessView,
    /// The escape checks, in the probe's order (each `skipped` without `--escapes`).
    pub escapes: Vec<Escape>,
}

/// How many x86_64 system call numbers reach the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Syscalls {
    /// The highest number probed.
    pub max_nr: u32,
    /// How many numbers were probed (0 to `max_nr`).
    pub probed: u32,
    /// How many of them have a name (exist on x86_64).
    pub named: u32,
    /// Numbers that reached the kernel (not ENOSYS, not refused by a filter).
    pub reachable: u32,
    /// Named numbers among `reachable`.
    pub reachable_named: u32,
    /// Named numbers that did not reach it (`blocked.len()`).
    pub blocked_named: u32,
    /// Each named number that did not reach the kernel, and how it was refused.
    pub blocked: Vec<Blocked>,
    /// Numbers the probe could not judge, with the errno it saw.
    pub failed: Vec<Failed>,
}

/// A named system call that did not reach the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Blocked {
    /// Its number.
    pub nr: u32,
    /// Its name.
    pub name: String,
    /// How: `ENOSYS` (not in this kernel, or a filter's ENOSYS), `EPERM` (a filter), `KILLED`...
    pub by: String,
}

/// A number the probe could not judge.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Failed {
    /// Its number.
    pub nr: u32,
    /// The errno name seen.
    pub errno: String,
}

/// What is visible of the host, read-only.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HostView {
    /// The kernel release (`uname -r`).
    pub kernel: String,
    /// Seconds since boot (`/proc/uptime`), if readable.
    pub uptime_s: Option<f64>,
    /// The 1, 5 and 15 minute load averages, if readable.
    pub loadavg: Option<[f64; 3]>,
    /// CPUs online.
    pub cpus: u32,
    /// A hash of `/proc/cpuinfo`'s model lines (equal on the same host).
    pub cpuinfo_model_hash: String,
    /// The process's own cgroup paths.
    pub own_cgroups: Vec<String>,
    /// How many cgroups of others it can list.
    pub foreign_cgroups: u32,
    /// A few of them.
    pub foreign_cgroup_sample: Vec<String>,
}

/// The process's confinement, from `/proc/self/status` (`None`: the field was missing).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ProcessView {
    /// Its uid.
    pub uid: u32,
    /// `Seccomp`: 0 none, 1 strict, 2 filter.
    pub seccomp: Option<u64>,
    /// `Seccomp_filters`: how many filters are installed.
    pub seccomp_filters: Option<u64>,
    /// `NoNewPrivs`.
    pub no_new_privs: Option<u64>,
    /// `CapEff`, hexadecimal.
    pub cap_eff: String,
}

/// The outcome of one escape check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Outcome {
    /// The attempt failed, as it must inside a container (`errno` says how).
    #[cfg_attr(feature = "serde", serde(rename = "blocked"))]
    Blocked,
    /// The attempt worked (`how` says what it did; it was undone).
    #[cfg_attr(feature = "serde", serde(rename = "ALLOWED"))]
    Allowed,
    /// Not tried (`why` says why).
    #[cfg_attr(feature = "serde", serde(rename = "skipped"))]
    Skipped,
}

/// One escape check.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Escape {
    /// The check's name (`mount`, `mknod_block`, `keyctl`...).
    pub check: String,
    /// What happened.
    pub result: Outcome,
    /// With `blocked`: the errno name.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub errno: Option<String>,
    /// With `ALLOWED`: what the attempt did.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub how: Option<String>,
    /// With `skipped`: why.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub why: Option<String>,
    /// The detail of the attempt (the call and its answer).
    pub detail: String,
}

#[cfg(all(test, feature = "serde"))]
mod tests {
    use super::*;

    /// A line as `vclab-workload probe` printed it before this type existed.
    const OLD: &str = r#"{"probe":1,"syscalls":{"max_nr":479,"probed":480,"named":383,"reachable":345,"reachable_named":345,"blocked_named":2,"blocked":[{"nr":103,"name":"syslog","by":"EPERM"},{"nr":134,"name":"uselib","by":"ENOSYS"}],"failed":[]},"host":{"kernel":"6.18.44","uptime_s":11788.45,"loadavg":[5.52,3.25,2.45],"cpus":2,"cpuinfo_model_hash":"0f5ceb80fdb03f75","own_cgroups":["/"],"foreign_cgroups":0,"foreign_cgroup_sample":[]},"process":{"uid":0,"seccomp":2,"seccomp_filters":8,"no_new_privs":1,"cap_eff":"00000000a80425fb"},"escapes":[{"check":"mount","result":"blocked","errno":"EPERM","detail":"x"},{"check":"keyctl","result":"ALLOWED","how":"succeeded","detail":"y"},{"check":"ptrace","result":"skipped","why":"no target","detail":""}]}"#;

    #[test]
    fn reads_the_line_and_writes_it_back_the_same() {
        let line: ProbeLine = serde_json::from_str(OLD).unwrap();
        assert_eq!(line.probe, FORMAT);
        assert_eq!(line.syscalls.as_ref().unwrap().blocked[0].name, "syslog");
        assert_eq!(line.host.loadavg, Some([5.52, 3.25, 2.45]));
        assert_eq!(line.process.seccomp_filters, Some(8));
        assert_eq!(line.escapes[1].result, Outcome::Allowed);
        assert_eq!(line.escapes[2].why.as_deref(), Some("no target"));
        assert_eq!(serde_json::to_string(&line).unwrap(), OLD);
    }

    #[test]
    fn nulls_stay_nulls() {
        let text = OLD
            .replace(r#""uptime_s":11788.45"#, r#""uptime_s":null"#)
            .replace(r#""seccomp":2"#, r#""seccomp":null"#);
        let line: ProbeLine = serde_json::from_str(&text).unwrap();
        assert_eq!(line.host.uptime_s, None);
        assert_eq!(line.process.seccomp, None);
        let none = ProbeLine {
            syscalls: None,
            ..line
        };
        assert!(serde_json::to_string(&none)
            .unwrap()
            .contains(r#""syscalls":null"#));
    }
}
