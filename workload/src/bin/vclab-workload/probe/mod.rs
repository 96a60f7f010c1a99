//! `vclab-workload probe`: the isolation probe. Prints one JSON line with
//! - `syscalls`: how many x86_64 system call numbers reach the kernel, and which are blocked and
//!   how (`reach.rs` documents the method);
//! - `host`: what is visible of the host (kernel release, uptime, load, cpuinfo, cgroups of other
//!   tenants), read-only;
//! - `process`: this process's seccomp mode and filter count, no_new_privs, effective capabilities;
//! - `escapes`: the escape checks (`escapes.rs`), run only with `--escapes`: where they are allowed
//!   they still change nothing, but on a bare host they are opt-in.
//!
//! Line: `{"probe":1,"syscalls":{...}|null,"host":{...},"process":{...},"escapes":[...]}`, the
//! type `vclab_contract::probe::ProbeLine` (the harness reads it as that; a test here checks that
//! the line this writer makes parses as it and serialises back to the same text). The binary
//! carries no serde: the line is written by hand (`json.rs`).

mod escapes;
mod host;
mod json;
mod names;
mod reach;
mod sys;

use std::fmt;
use std::io::{self, Write};

use json::Obj;

/// The JSON line's format version (`"probe":1`).
pub const FORMAT: u32 = vclab_contract::probe::FORMAT;

/// What to probe.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Run the escape checks.
    pub escapes: bool,
    /// A process outside the container, for the ptrace check.
    pub target_pid: Option<i32>,
    /// Skip the syscall reach (`--no-syscalls`).
    pub no_syscalls: bool,
}

/// A probe failure.
#[derive(Debug)]
pub enum ProbeError {
    /// The line could not be written.
    Print(io::Error),
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::Print(e) => write!(f, "cannot write the probe line to stdout: {e}"),
        }
    }
}

/// Probes and prints the line.
pub fn run(options: &Options) -> Result<(), ProbeError> {
    let reach = (!options.no_syscalls).then(reach::probe);
    let visible = host::probe();
    let checks = escapes::probe(options.escapes, options.target_pid);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = line(reach.as_ref(), &visible, &status, &checks);
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(ProbeError::Print)
}

/// The line of one probe's findings.
fn line(
    reach: Option<&reach::Reach>,
    visible: &host::Visibility,
    status: &str,
    checks: &[escapes::Check],
) -> String {
    Obj::new()
        .num("probe", FORMAT)
        .raw(
            "syscalls",
            reach.map_or_else(|| "null".into(), syscalls_json),
        )
        .raw("host", host_json(visible))
        .raw("process", process_json(status))
        .raw("escapes", escapes_json(checks))
        .finish()
}

fn syscalls_json(r: &reach::Reach) -> String {
    let blocked: Vec<String> = r
        .blocked
        .iter()
        .map(|&(nr, name, how)| {
            Obj::new()
                .num("nr", nr)
                .str("name", name)
                .str("by", how.name())
                .finish()
        })
        .collect();
    let failed: Vec<String> = r
        .failed
        .iter()
        .map(|&(nr, e)| {
            Obj::new()
                .num("nr", nr)
                .str("errno", &sys::errno_name(e))
                .finish()
        })
        .collect();
    Obj::new()
        .num("max_nr", reach::MAX_NR)
        .num("probed", r.probed)
        .num("named", names::SYSCALLS.len())
        .num("reachable", r.reachable)
        .num("reachable_named", r.reachable_named)
        .num("blocked_named", r.blocked.len())
        .raw("blocked", json::array(&blocked))
        .raw("failed", json::array(&failed))
        .finish()
}

fn host_json(v: &host::Visibility) -> String {
    let opt = |x: Option<f64>| x.map_or_else(|| "null".into(), json::float);
    Obj::new()
        .str("kernel", &v.kernel)
        .raw("uptime_s", opt(v.uptime_s))
        .raw(
            "loadavg",
            v.loadavg
                .map_or_else(|| "null".into(), |l| json::array(&l.map(json::float))),
        )
        .num("cpus", v.cpus)
        .str("cpuinfo_model_hash", &v.cpuinfo_model_hash)
        .raw("own_cgroups", json::strings(&v.own_cgroups))
        .num("foreign_cgroups", v.foreign_cgroups)
        .raw("foreign_cgroup_sample", json::strings(&v.foreign_sample))
        .finish()
}

/// `Seccomp`, `Seccomp_filters`, `NoNewPrivs`, `CapEff` of /proc/self/status.
fn process_json(status: &str) -> String {
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .map(str::trim)
            .unwrap_or("")
            .to_owned()
    };
    let int = |key: &str| {
        field(key)
            .parse::<u64>()
            .map_or_else(|_| "null".into(), |n| n.to_string())
    };
    // SAFETY: getuid has no arguments and cannot fail.
    let uid = unsafe { libc::getuid() };
    Obj::new()
        .num("uid", uid)
        .raw("seccomp", int("Seccomp"))
        .raw("seccomp_filters", int("Seccomp_filters"))
        .raw("no_new_privs", int("NoNewPrivs"))
        .str("cap_eff", &field("CapEff"))
        .finish()
}

fn escapes_json(checks: &[escapes::Check]) -> String {
    let items: Vec<String> = checks
        .iter()
        .map(|c| {
            let o = Obj::new().str("check", c.name);
            let o = match &c.verdict {
                escapes::Verdict::Blocked(e) => o
                    .str("result", "blocked")
                    .str("errno", &sys::errno_name(*e)),
                escapes::Verdict::Allowed(what) => o.str("result", "ALLOWED").str("how", what),
                escapes::Verdict::Skipped(why) => o.str("result", "skipped").str("why", why),
            };
            o.str("detail", &c.detail).finish()
        })
        .collect();
    json::array(&items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_fields_from_status() {
        let s = "Name:\tx\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\nCapEff:\t00000000a80425fb\n";
        let j = process_json(s);
        assert!(j.contains("\"seccomp\":2"), "{j}");
        assert!(j.contains("\"seccomp_filters\":1"), "{j}");
        assert!(j.contains("\"no_new_privs\":1"), "{j}");
        assert!(j.contains("\"cap_eff\":\"00000000a80425fb\""), "{j}");
        assert!(process_json("").contains("\"seccomp\":null"));
    }

    /// The line in the contract's type: it parses, and writes back as the same text (so no key
    /// is misspelt, missing or extra on either side).
    fn as_contract(text: &str) -> vclab_contract::probe::ProbeLine {
        let parsed: vclab_contract::probe::ProbeLine = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("the probe line is not a ProbeLine ({e}): {text}"));
        assert_eq!(serde_json::to_string(&parsed).unwrap(), text);
        parsed
    }

    #[test]
    fn the_line_is_the_contracts_probe_line() {
        let reach = reach::Reach {
            probed: 480,
            reachable: 340,
            reachable_named: 338,
            blocked: vec![
                (103, "syslog", reach::Block::Eperm),
                (134, "uselib", reach::Block::Enosys),
                (321, "bpf", reach::Block::Sigsys),
            ],
            failed: vec![(7, libc::EAGAIN)],
        };
        let visible = host::Visibility {
            kernel: "6.1.0-test".into(),
            uptime_s: Some(12.5),
            loadavg: Some([0.5, 1.25, 2.75]), // not whole: "2" and "2.0" are one number
            cpus: 2,
            cpuinfo_model_hash: "00ff".into(),
            own_cgroups: vec!["/".into(), "/vclab-x".into()],
            foreign_cgroups: 3,
            foreign_sample: vec!["memory:/other".into()],
        };
        let status =
            "Seccomp:\t2\nSeccomp_filters:\t8\nNoNewPrivs:\t1\nCapEff:\t00000000a80425fb\n";
        let checks = vec![
            escapes::Check {
                name: "mount",
                verdict: escapes::Verdict::Blocked(libc::EPERM),
                detail: "mount(tmpfs)".into(),
            },
            escapes::Check {
                name: "keyctl",
                verdict: escapes::Verdict::Allowed("succeeded".into()),
                detail: "\"quoted\"\n".into(),
            },
            escapes::Check {
                name: "ptrace",
                verdict: escapes::Verdict::Skipped("no target"),
                detail: String::new(),
            },
        ];
        let full = as_contract(&line(Some(&reach), &visible, status, &checks));
        let sys = full.syscalls.unwrap();
        assert_eq!((sys.reachable, sys.blocked_named), (340, 3));
        assert_eq!(sys.blocked[2].by, "SIGSYS");
        assert_eq!(full.host.foreign_cgroups, 3);
        assert_eq!(full.process.seccomp_filters, Some(8));
        assert_eq!(full.escapes[1].how.as_deref(), Some("succeeded"));
        let bare = host::Visibility {
            uptime_s: None,
            loadavg: None,
            ..visible
        };
        let empty = as_contract(&line(None, &bare, "", &escapes::probe(false, None)));
        assert!(empty.syscalls.is_none() && empty.host.loadavg.is_none());
        assert_eq!(empty.process.seccomp, None);
    }

    #[test]
    fn escapes_are_named_and_skipped() {
        let j = escapes_json(&escapes::probe(false, None));
        for name in escapes::CHECKS {
            assert!(j.contains(&format!("\"check\":\"{name}\"")), "{j}");
        }
        assert!(j.contains("\"result\":\"skipped\""));
    }
}
