//! Docker's seccomp profile format (`defaultAction`, `defaultErrnoRet`,
//! `architectures`/`archMap`, `syscalls[names, action, errnoRet, args,
//! includes, excludes]`), which OCI's `linux.seccomp` is a subset of, and
//! its resolution for one container as Docker does it: an entry applies
//! when the container holds *all* its `includes.caps` and *none* of its
//! `excludes.caps`, when x86_64 (`amd64`) passes its `arches` lists and the
//! kernel its `minKernel`. A rule whose action is the default action is
//! dropped (runc does the same). A name that only other architectures have
//! is skipped (as libseccomp skips it); a name no architecture has is an
//! error.

use serde::{Deserialize, Serialize};

use super::{syscalls, Action, ArgCmp, Error, Op, Resolved, Rule};
use crate::caps::CapSet;

/// A profile in Docker's format. Unknown fields are ignored (as Docker does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// What a call no rule matches gets.
    pub default_action: String,
    /// The errno of an `SCMP_ACT_ERRNO` default (EPERM when absent).
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    /// The architectures the filter covers (OCI's field).
    #[serde(default)]
    pub architectures: Option<Vec<String>>,
    /// Docker's architecture map (`architecture` + `subArchitectures`).
    #[serde(default)]
    pub arch_map: Option<Vec<ArchMap>>,
    /// `seccomp(2)` flags (`SECCOMP_FILTER_FLAG_LOG`, `_SPEC_ALLOW`, `_TSYNC`).
    #[serde(default)]
    pub flags: Option<Vec<String>>,
    /// A user-notification socket (not supported).
    #[serde(default)]
    pub listener_path: Option<String>,
    /// The rules.
    #[serde(default)]
    pub syscalls: Option<Vec<Syscall>>,
}

/// One `archMap` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    /// The main architecture.
    pub architecture: String,
    /// Its companions.
    #[serde(default)]
    pub sub_architectures: Option<Vec<String>>,
}

/// One `syscalls` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Syscall {
    /// The calls.
    #[serde(default)]
    pub names: Option<Vec<String>>,
    /// One call (Docker's older spelling).
    #[serde(default)]
    pub name: Option<String>,
    /// What they get.
    pub action: String,
    /// The errno of `SCMP_ACT_ERRNO` (EPERM when absent), the value of
    /// `SCMP_ACT_TRACE`.
    #[serde(default)]
    pub errno_ret: Option<u32>,
    /// Conditions, all of which must hold.
    #[serde(default)]
    pub args: Option<Vec<Arg>>,
    /// When the entry applies.
    #[serde(default)]
    pub includes: Option<Filter>,
    /// When it does not.
    #[serde(default)]
    pub excludes: Option<Filter>,
}

/// An argument condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    /// Argument index (0 to 5).
    pub index: u64,
    /// The value (the mask, for `SCMP_CMP_MASKED_EQ`).
    pub value: u64,
    /// The masked value, for `SCMP_CMP_MASKED_EQ`.
    #[serde(default)]
    pub value_two: Option<u64>,
    /// `SCMP_CMP_EQ`, `_NE`, `_LT`, `_LE`, `_GT`, `_GE`, `_MASKED_EQ`.
    pub op: String,
}

/// `includes` / `excludes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// Capabilities.
    #[serde(default)]
    pub caps: Option<Vec<String>>,
    /// Architectures (Go's names: amd64, x86, x32, arm64...).
    #[serde(default)]
    pub arches: Option<Vec<String>>,
    /// A kernel version, `MAJOR.MINOR`.
    #[serde(default)]
    pub min_kernel: Option<String>,
}

/// `SECCOMP_FILTER_FLAG_LOG` (linux/seccomp.h).
const FLAG_LOG: u32 = 1 << 1;
/// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`.
const FLAG_SPEC_ALLOW: u32 = 1 << 2;

/// The host kernel's (major, minor), (0, 0) when unreadable.
pub fn host_kernel() -> (u32, u32) {
    nix::sys::utsname::uname()
        .ok()
        .and_then(|u| parse_version(&u.release().to_string_lossy()))
        .unwrap_or((0, 0))
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut it = text.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// x86_64's names in `arches` lists: Go's, the kernel's, libseccomp's.
fn is_x86_64(arch: &str) -> bool {
    matches!(arch, "amd64" | "x86_64" | "SCMP_ARCH_X86_64")
}

fn action(source_name: &str, name: &str, errno: Option<u32>) -> Result<Action, Error> {
    let eperm = libc::EPERM as u32;
    Ok(match name {
        "SCMP_ACT_ALLOW" => Action::Allow,
        "SCMP_ACT_ERRNO" => Action::Errno(errno.unwrap_or(eperm)),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
        "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
        "SCMP_ACT_TRAP" => Action::Trap,
        "SCMP_ACT_TRACE" => Action::Trace(errno.unwrap_or(eperm)),
        "SCMP_ACT_LOG" => Action::Log,
        _ => {
            return Err(Error::Action {
                source_name: source_name.to_string(),
                action: name.to_string(),
            })
        }
    })
}

impl Profile {
    /// Parses a profile file's text (`source_name` names it in messages) and
    /// checks it: every action, operator, index, capability and call name.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, Error> {
        let p: Profile = serde_json::from_str(text).map_err(|e| Error::Parse {
            source_name: source_name.to_string(),
            reason: e.to_string(),
        })?;
        p.resolve(source_name, CapSet(0), (0, 0))?;
        Ok(p)
    }

    /// The rules for a container holding `caps` on a `kernel` (major, minor).
    pub fn resolve(
        &self,
        source_name: &str,
        caps: CapSet,
        kernel: (u32, u32),
    ) -> Result<Resolved, Error> {
        let src = || source_name.to_string();
        self.check_arches(source_name)?;
        if self.listener_path.as_deref().is_some_and(|p| !p.is_empty()) {
            return Err(Error::Unsupported {
                source_name: src(),
                what: "listenerPath (SCMP_ACT_NOTIFY)".into(),
            });
        }
        let mut flags = 0;
        for f in self.flags.iter().flatten() {
            flags |= match f.as_str() {
                "SECCOMP_FILTER_FLAG_LOG" => FLAG_LOG,
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => FLAG_SPEC_ALLOW,
                // The container's process has one thread when it installs.
                "SECCOMP_FILTER_FLAG_TSYNC" => 0,
                other => {
                    return Err(Error::Unsupported {
                        source_name: src(),
                        what: format!("the flag {other}"),
                    })
                }
            };
        }
        let default = action(source_name, &self.default_action, self.default_errno_ret)?;
        let mut rules = Vec::new();
        for entry in self.syscalls.iter().flatten() {
            let act = action(source_name, &entry.action, entry.errno_ret)?;
            let names: Vec<&str> = entry
                .names
                .iter()
                .flatten()
                .map(String::as_str)
                .chain(entry.name.as_deref())
                .collect();
            let args = entry
                .args
                .iter()
                .flatten()
                .map(|a| arg_cmp(source_name, names.first().copied().unwrap_or("?"), a))
                .collect::<Result<Vec<_>, _>>()?;
            let applies = applies(source_name, entry, caps, kernel)?;
            for name in names {
                let nr = match syscalls::number(name) {
                    Some(nr) => nr,
                    None if syscalls::foreign(name) => continue,
                    None => {
                        return Err(Error::UnknownSyscall {
                            source_name: src(),
                            name: name.to_string(),
                        })
                    }
                };
                if applies && act != default {
                    rules.push(Rule {
                        nr,
                        action: act,
                        args: args.clone(),
                    });
                }
            }
        }
        Ok(Resolved {
            default,
            rules,
            flags,
        })
    }

    fn check_arches(&self, source_name: &str) -> Result<(), Error> {
        let mut listed: Vec<String> = self.architectures.clone().unwrap_or_default();
        for m in self.arch_map.iter().flatten() {
            listed.push(m.architecture.clone());
            listed.extend(m.sub_architectures.iter().flatten().cloned());
        }
        if listed.is_empty() || listed.iter().any(|a| a == "SCMP_ARCH_X86_64") {
            Ok(())
        } else {
            Err(Error::Architecture {
                source_name: source_name.to_string(),
                arches: listed,
            })
        }
    }
}

fn arg_cmp(source_name: &str, name: &str, a: &Arg) -> Result<ArgCmp, Error> {
    let index = u8::try_from(a.index)
        .ok()
        .filter(|i| *i <= 5)
        .ok_or_else(|| Error::ArgIndex {
            source_name: source_name.to_string(),
            name: name.to_string(),
            index: a.index,
        })?;
    let (op, value) = match a.op.as_str() {
        "SCMP_CMP_EQ" => (Op::Eq, a.value),
        "SCMP_CMP_NE" => (Op::Ne, a.value),
        "SCMP_CMP_LT" => (Op::Lt, a.value),
        "SCMP_CMP_LE" => (Op::Le, a.value),
        "SCMP_CMP_GT" => (Op::Gt, a.value),
        "SCMP_CMP_GE" => (Op::Ge, a.value),
        "SCMP_CMP_MASKED_EQ" => (Op::MaskedEq(a.value), a.value_two.unwrap_or(0)),
        other => {
            return Err(Error::Operator {
                source_name: source_name.to_string(),
                name: name.to_string(),
                op: other.to_string(),
            })
        }
    };
    Ok(ArgCmp { index, op, value })
}

/// Whether an entry applies to this container and host (Docker's rules).
fn applies(
    source_name: &str,
    entry: &Syscall,
    caps: CapSet,
    kernel: (u32, u32),
) -> Result<bool, Error> {
    let caps_of = |list: &Option<Vec<String>>| {
        CapSet::from_names(list.iter().flatten()).map_err(|source| Error::Capability {
            source_name: source_name.to_string(),
            source,
        })
    };
    let version = |v: &Option<String>| -> Result<Option<(u32, u32)>, Error> {
        match v.as_deref() {
            None | Some("") => Ok(None),
            Some(text) => parse_version(text).map(Some).ok_or_else(|| Error::Parse {
                source_name: source_name.to_string(),
                reason: format!("minKernel {text:?} is not MAJOR.MINOR"),
            }),
        }
    };
    let empty = Filter::default();
    let inc = entry.includes.as_ref().unwrap_or(&empty);
    let exc = entry.excludes.as_ref().unwrap_or(&empty);
    let need = caps_of(&inc.caps)?;
    let refuse = caps_of(&exc.caps)?;
    let (min_in, min_ex) = (version(&inc.min_kernel)?, version(&exc.min_kernel)?);
    let arch_in = inc
        .arches
        .as_ref()
        .is_none_or(|a| a.is_empty() || a.iter().any(|x| is_x86_64(x)));
    let arch_ex = exc
        .arches
        .as_ref()
        .is_some_and(|a| a.iter().any(|x| is_x86_64(x)));
    Ok(caps.0 & need.0 == need.0
        && caps.0 & refuse.0 == 0
        && arch_in
        && !arch_ex
        && min_in.is_none_or(|m| kernel >= m)
        && min_ex.is_none_or(|m| kernel < m))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKER_LIKE: &str = r#"{
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
        "syscalls": [
            {"names": ["getpid", "chown32", "_llseek"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}],
             "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
            {"names": ["set_tls"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm", "arm64"]}},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
            {"names": ["keyctl"], "action": "SCMP_ACT_ERRNO"}
        ]}"#;

    fn nr(n: &str) -> i64 {
        syscalls::number(n).unwrap()
    }

    #[test]
    fn docker_format_resolves_like_docker() {
        let p = Profile::parse(DOCKER_LIKE, "t.json").unwrap();
        let r = p
            .resolve("t.json", CapSet::docker_default(), (6, 1))
            .unwrap();
        assert_eq!(r.default, Action::Errno(1));
        let names: Vec<i64> = r.rules.iter().map(|r| r.nr).collect();
        // chown32/_llseek (i386) skipped, mount needs CAP_SYS_ADMIN, keyctl
        // repeats the default, set_tls is arm's.
        assert_eq!(
            names,
            [
                nr("getpid"),
                nr("clone"),
                nr("clone3"),
                nr("arch_prctl"),
                nr("ptrace")
            ]
        );
        let clone = &r.rules[1];
        assert_eq!(
            clone.args,
            [ArgCmp {
                index: 0,
                op: Op::MaskedEq(0x7E02_0000),
                value: 0
            }]
        );
        assert_eq!(r.rules[2].action, Action::Errno(38));
        let old = p
            .resolve("t.json", CapSet::docker_default(), (4, 4))
            .unwrap();
        assert!(!old.rules.iter().any(|r| r.nr == nr("ptrace")));
        let admin = CapSet::from_names(["CAP_SYS_ADMIN"]).unwrap();
        let a = p.resolve("t.json", admin, (6, 1)).unwrap();
        assert!(a.rules.iter().any(|r| r.nr == nr("mount")));
        assert!(!a
            .rules
            .iter()
            .any(|r| r.nr == nr("clone") || r.nr == nr("clone3")));
    }

    #[test]
    fn bad_profiles_name_what_is_wrong() {
        let resolve = |json: &str| {
            Profile::parse(json, "p.json")
                .and_then(|p| p.resolve("p.json", CapSet::docker_default(), (6, 1)))
                .unwrap_err()
                .to_string()
        };
        let cases = [
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpidd"], "action": "SCMP_ACT_ERRNO"}]}"#,
                "\"getpidd\"",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_NOTIFY"}]}"#,
                "SCMP_ACT_NOTIFY",
            ),
            (r#"{"defaultAction": "SCMP_ACT_BOGUS"}"#, "SCMP_ACT_BOGUS"),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
                "index 6",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}"#,
                "SCMP_CMP_ABOUT",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_AARCH64"]}"#,
                "SCMP_ARCH_X86_64",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_NOPE"]}}]}"#,
                "CAP_NOPE",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock"}"#,
                "listenerPath",
            ),
            ("{ nope", "not valid JSON"),
        ];
        for (json, needle) in cases {
            let msg = resolve(json);
            assert!(
                msg.contains(needle) && msg.contains("p.json"),
                "{json}: {msg}"
            );
            assert!(!msg.contains('\n'), "{msg}");
        }
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_version("6.18.44-fc-v1045"), Some((6, 18)));
        assert_eq!(parse_version("4.8"), Some((4, 8)));
        assert_eq!(parse_version("x"), None);
        assert!(host_kernel() >= (3, 17), "seccomp(2) needs Linux 3.17");
    }
}
