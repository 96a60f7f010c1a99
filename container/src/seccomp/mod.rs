//! The container's seccomp filter: Docker's default profile, a profile file
//! in Docker's format (`--seccomp FILE`), or a bundle's `linux.seccomp`.
//!
//! Steps, each in its own file: a profile (`default.rs`: Docker's default
//! profile as a table; `docker.rs`: Docker's JSON format, which OCI's
//! `linux.seccomp` also is, `oci.rs`) is resolved against the container's
//! capability set and the host kernel into a flat list of rules, one per
//! system call number (`syscalls.rs`: the x86_64 table) → `compile.rs` turns
//! the rules into classic BPF with seccompiler, in the launcher (parent) →
//! `install.rs` loads it in the container's process, the last step before
//! `execve` (or before the identity changes when no_new_privs is off, while
//! CAP_SYS_ADMIN is still held, as runc does).
//!
//! The default profile for the lab's default capabilities is compiled ahead
//! of time (`prebuilt/`, checked against `compile.rs` by a test), so a
//! default `--rootfs` run skips resolving and compiling.
//!
//! x86_64 only: the filter checks the architecture first, and a system call
//! of another ABI (i386 through `int 0x80`) kills the process; x32 calls
//! (`nr | 0x40000000`) get the profile's default action, and the same
//! action as their x86_64 twin in a profile whose default is to allow.

mod compile;
mod default;
mod docker;
mod install;
mod oci;
mod prebuilt;
mod syscalls;

pub use compile::compile;
pub use docker::Profile;
pub use install::install;

use crate::caps::CapSet;

/// Errors of this module: a profile that cannot be read, parsed, resolved or
/// compiled. All are bad input (exit code 1) except [`Error::Compile`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The profile file could not be read.
    #[error("cannot read the seccomp profile {path}: {reason} (give a JSON file in Docker's format, or unconfined)")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// The profile is not JSON in Docker's format.
    #[error("seccomp profile {source_name} is not valid JSON in Docker's format: {reason}")]
    Parse {
        /// Where the profile came from.
        source_name: String,
        /// The parser's message.
        reason: String,
    },
    /// A system call name that no Linux architecture has.
    #[error("seccomp profile {source_name}: unknown system call {name:?} (not a Linux system call name: check the spelling)")]
    UnknownSyscall {
        /// Where the profile came from.
        source_name: String,
        /// The name.
        name: String,
    },
    /// An action seccompiler cannot express, or that is not an action.
    #[error("seccomp profile {source_name}: unsupported action {action:?} (use SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_TRACE or SCMP_ACT_LOG)")]
    Action {
        /// Where the profile came from.
        source_name: String,
        /// The action as written.
        action: String,
    },
    /// An argument comparison that is not one of libseccomp's.
    #[error("seccomp profile {source_name}: unsupported argument operator {op:?} for {name} (use SCMP_CMP_EQ, _NE, _LT, _LE, _GT, _GE or _MASKED_EQ)")]
    Operator {
        /// Where the profile came from.
        source_name: String,
        /// The system call.
        name: String,
        /// The operator as written.
        op: String,
    },
    /// An argument index past the sixth.
    #[error(
        "seccomp profile {source_name}: argument index {index} of {name} is out of range (0 to 5)"
    )]
    ArgIndex {
        /// Where the profile came from.
        source_name: String,
        /// The system call.
        name: String,
        /// The index.
        index: u64,
    },
    /// A capability name in `includes`/`excludes` that does not exist.
    #[error("seccomp profile {source_name}: {source}")]
    Capability {
        /// Where the profile came from.
        source_name: String,
        /// The capability error.
        source: crate::caps::Error,
    },
    /// The profile does not cover x86_64.
    #[error("seccomp profile {source_name} lists the architectures {arches:?} but not SCMP_ARCH_X86_64: add it")]
    Architecture {
        /// Where the profile came from.
        source_name: String,
        /// The architectures it lists.
        arches: Vec<String>,
    },
    /// The launcher runs on another architecture.
    #[error("seccomp filters are built for x86_64 only and this host is {0}: run with --seccomp unconfined")]
    HostArchitecture(&'static str),
    /// A profile feature the launcher does not implement.
    #[error("seccomp profile {source_name}: {what} is not supported by vclab")]
    Unsupported {
        /// Where the profile came from.
        source_name: String,
        /// What.
        what: String,
    },
    /// seccompiler refused the rules.
    #[error("cannot compile the seccomp filter from {source_name}: {reason}")]
    Compile {
        /// Where the profile came from.
        source_name: String,
        /// seccompiler's message.
        reason: String,
    },
}

/// What a system call gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Runs.
    Allow,
    /// Fails with this errno.
    Errno(u32),
    /// Kills the thread (`SCMP_ACT_KILL`, `SCMP_ACT_KILL_THREAD`).
    KillThread,
    /// Kills the process.
    KillProcess,
    /// Sends SIGSYS.
    Trap,
    /// Notifies a ptrace tracer with this value (fails with ENOSYS without one).
    Trace(u32),
    /// Runs and is logged.
    Log,
}

/// An argument comparison (libseccomp's, on the full 64-bit register).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `arg & mask == value`.
    MaskedEq(u64),
}

/// One condition on an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgCmp {
    /// Argument index, 0 to 5.
    pub index: u8,
    /// The comparison.
    pub op: Op,
    /// The value compared with.
    pub value: u64,
}

/// One rule: system call `nr` gets `action` when every condition holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The x86_64 system call number.
    pub nr: i64,
    /// What it gets.
    pub action: Action,
    /// Conditions, all of which must hold (none: always).
    pub args: Vec<ArgCmp>,
}

/// A profile resolved for one container (its capabilities, this host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// What a call no rule matches gets.
    pub default: Action,
    /// The rules.
    pub rules: Vec<Rule>,
    /// `seccomp(2)` flags (`SECCOMP_FILTER_FLAG_LOG`, `_SPEC_ALLOW`).
    pub flags: u32,
}

/// The compiled filter: BPF programs installed in order (the kernel runs
/// them all and takes the strictest answer), and the `seccomp(2)` flags.
#[derive(Clone, PartialEq)]
pub struct Filter {
    /// The programs.
    pub programs: Vec<seccompiler::BpfProgram>,
    /// Flags for `seccomp(SECCOMP_SET_MODE_FILTER, flags, ...)`.
    pub flags: u32,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lens: Vec<usize> = self.programs.iter().map(Vec::len).collect();
        write!(
            f,
            "Filter {{ instructions: {lens:?}, flags: {} }}",
            self.flags
        )
    }
}

/// The container's seccomp policy.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Policy {
    /// Docker's default profile (the `--rootfs` default).
    #[default]
    Default,
    /// No filter (`--seccomp unconfined`; a bundle without `linux.seccomp`).
    Unconfined,
    /// A profile in Docker's format (a `--seccomp` file or `linux.seccomp`).
    Profile {
        /// Where it came from, for messages.
        source_name: String,
        /// The profile.
        profile: Profile,
    },
}

impl Policy {
    /// `--seccomp VALUE`: `unconfined`, else a Docker-format JSON file.
    pub fn from_arg(value: &str) -> Result<Self, Error> {
        if value == "unconfined" {
            return Ok(Policy::Unconfined);
        }
        let text = std::fs::read_to_string(value).map_err(|e| Error::Read {
            path: value.to_string(),
            reason: e.to_string(),
        })?;
        let profile = Profile::parse(&text, value)?;
        Ok(Policy::Profile {
            source_name: value.to_string(),
            profile,
        })
    }

    /// A bundle's `linux.seccomp` (`path` names config.json in messages).
    pub fn from_oci(
        seccomp: &oci_spec::runtime::LinuxSeccomp,
        path: &std::path::Path,
    ) -> Result<Self, Error> {
        let source_name = format!("linux.seccomp in {}", path.display());
        let profile = oci::profile(seccomp, &source_name)?;
        Ok(Policy::Profile {
            source_name,
            profile,
        })
    }

    /// Resolves the policy for a container holding `caps` on this host:
    /// `None` when unconfined.
    pub fn resolve(&self, caps: CapSet) -> Result<Option<Resolved>, Error> {
        if !matches!(self, Policy::Unconfined) && std::env::consts::ARCH != "x86_64" {
            return Err(Error::HostArchitecture(std::env::consts::ARCH));
        }
        match self {
            Policy::Unconfined => Ok(None),
            Policy::Default => Ok(Some(default::resolve(caps))),
            Policy::Profile {
                source_name,
                profile,
            } => profile
                .resolve(source_name, caps, docker::host_kernel())
                .map(Some),
        }
    }

    /// Resolves and compiles: the filter the container's process installs
    /// (`None` when unconfined).
    pub fn build(&self, caps: CapSet) -> Result<Option<Filter>, Error> {
        let source_name = match self {
            Policy::Profile { source_name, .. } => source_name.as_str(),
            _ => "the default profile",
        };
        if matches!(self, Policy::Default) && std::env::consts::ARCH == "x86_64" {
            if let Some(f) = prebuilt::filter(caps) {
                return Ok(Some(f));
            }
        }
        match self.resolve(caps)? {
            None => Ok(None),
            Some(r) => compile(&r, source_name).map(Some),
        }
    }
}
