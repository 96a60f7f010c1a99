//! `vclab-workload probe`: the isolation probe. Prints one JSON line with
//! - `syscalls`: how many x86_64 system call numbers reach the kernel, and which are blocked and
//!   how (`reach.rs` documents the method);
//! - `host`: what is visible of the host (kernel release, uptime, load, cpuinfo, cgroups of other
//!   tenants), read-only;
//! - `process`: this process's seccomp mode and filter count, no_new_privs, effective capabilities;
//! - `escapes`: the escape checks (`escapes.rs`), run only with `--escapes`: where they are allowed
//!   they still change nothing, but on a bare host they are opt-in.
//!
//! Line: `{"probe":1,"syscalls":{...}|null,"host":{...},"process":{...},"escapes":[...]}`.

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
pub const FORMAT: u32 = 1;

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
    let line = Obj::new()
        .num("probe", FORMAT)
        .raw(
            "syscalls",
            reach.as_ref().map_or_else(|| "null".into(), syscalls_json),
        )
        .raw("host", host_json(&visible))
        .raw("process", process_json(&status))
        .raw("escapes", escapes_json(&checks))
        .finish();
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(ProbeError::Print)
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

    #[test]
    fn escapes_are_named_and_skipped() {
        let j = escapes_json(&escapes::probe(false, None));
        for name in escapes::CHECKS {
            assert!(j.contains(&format!("\"check\":\"{name}\"")), "{j}");
        }
        assert!(j.contains("\"result\":\"skipped\""));
    }
}
