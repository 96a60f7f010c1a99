//! Why a run failed, as a kind rather than a message prefix: it decides a CLI's exit code and is
//! stored in the harness's report (`{"kind":"checksum-mismatch","detail":"..."}`).

/// What kind of failure ended (or spoiled) a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "kebab-case")
)]
pub enum Failure {
    /// The runtime could not be prepared (missing artifact, bad configuration, host cannot run it).
    SetupFailed,
    /// The instance could not be started (spawn or exec failed, the launcher gave up).
    LaunchFailed,
    /// The instance did not finish in time and was stopped.
    Timeout,
    /// The workload's checksum differs from another runtime's for the same params.
    ChecksumMismatch,
    /// The instance ended without printing a workload result line (or printed a bad one).
    NoResultLine,
    /// The instance ended with a non-zero exit status.
    BadExitStatus,
    /// The guest kernel panicked.
    GuestPanic,
    /// The guest faulted: a triple fault or a KVM internal error.
    GuestFault,
    /// The start moment the measurement needs (ready line, exec time, init handoff) was not seen.
    NoStartTime,
    /// The instance was killed by a signal.
    Killed,
}

names!(Failure, "failure kind", {
    SetupFailed => "setup-failed",
    LaunchFailed => "launch-failed",
    Timeout => "timeout",
    ChecksumMismatch => "checksum-mismatch",
    NoResultLine => "no-result-line",
    BadExitStatus => "bad-exit-status",
    GuestPanic => "guest-panic",
    GuestFault => "guest-fault",
    NoStartTime => "no-start-time",
    Killed => "killed",
});

impl Failure {
    /// One line that says what happened, for tables and messages.
    pub const fn describe(self) -> &'static str {
        match self {
            Failure::SetupFailed => "could not be set up",
            Failure::LaunchFailed => "could not be launched",
            Failure::Timeout => "timed out",
            Failure::ChecksumMismatch => "checksum differs from the other runtimes'",
            Failure::NoResultLine => "printed no workload result line",
            Failure::BadExitStatus => "exited with a non-zero status",
            Failure::GuestPanic => "the guest kernel panicked",
            Failure::GuestFault => "the guest faulted (triple fault or KVM internal error)",
            Failure::NoStartTime => "the start moment was not seen",
            Failure::Killed => "was killed by a signal",
        }
    }

    /// The exit code a CLI ends with for this failure. Where a convention exists it is kept:
    /// 1 setup (as `vclab-vmm`), 125 launcher failure (as `vclab-container`, docker, podman),
    /// 124 timeout (as `timeout(1)` and `vclab-vmm`), 3 checksum mismatch (as `vclab compare`),
    /// 123 guest panic and 121 guest fault (as `vclab-vmm`, which itself reports a KVM internal
    /// error as 122), 137 killed (128 + SIGKILL); the others are 4, 5 and 6.
    pub const fn exit_code(self) -> i32 {
        match self {
            Failure::SetupFailed => 1,
            Failure::ChecksumMismatch => 3,
            Failure::NoResultLine => 4,
            Failure::BadExitStatus => 5,
            Failure::NoStartTime => 6,
            Failure::GuestFault => 121,
            Failure::GuestPanic => 123,
            Failure::Timeout => 124,
            Failure::LaunchFailed => 125,
            Failure::Killed => 137,
        }
    }
}

/// A failure with its details, as the harness stores it:
/// `{"kind":"checksum-mismatch","detail":"..."}`.
#[cfg(feature = "alloc")]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FailureReport {
    /// What kind of failure.
    pub kind: Failure,
    /// What exactly happened (which runtime, which values, the last output lines...).
    pub detail: alloc::string::String,
}

#[cfg(feature = "alloc")]
impl FailureReport {
    /// A report of `kind` with `detail`.
    pub fn new(kind: Failure, detail: impl Into<alloc::string::String>) -> FailureReport {
        FailureReport {
            kind,
            detail: detail.into(),
        }
    }
}

/// `<kind>: <detail>`, e.g. `checksum-mismatch: bare cpu gave 1a..., vm gave 2b...`.
#[cfg(feature = "alloc")]
impl core::fmt::Display for FailureReport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.detail.is_empty() {
            write!(f, "{}: {}", self.kind, self.kind.describe())
        } else {
            write!(f, "{}: {}", self.kind, self.detail)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes() {
        let mut codes = std::vec::Vec::new();
        for f in Failure::ALL {
            assert_eq!(f.as_str().parse::<Failure>(), Ok(*f));
            assert!(!f.describe().contains('\n'));
            assert_ne!(f.exit_code(), 0);
            codes.push(f.exit_code());
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Failure::ALL.len(), "exit codes are distinct");
        assert_eq!(Failure::ChecksumMismatch.as_str(), "checksum-mismatch");
    }

    #[cfg(all(feature = "serde", feature = "alloc"))]
    #[test]
    fn report_serialises_with_kind_and_detail() {
        let r = FailureReport::new(Failure::ChecksumMismatch, "bare cpu gave 1, vm gave 2");
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"checksum-mismatch","detail":"bare cpu gave 1, vm gave 2"}"#
        );
        assert_eq!(serde_json::from_str::<FailureReport>(&json).unwrap(), r);
        for f in Failure::ALL {
            let j = serde_json::to_string(f).unwrap();
            assert_eq!(j, std::format!("\"{f}\""));
        }
        assert_eq!(
            r.to_string(),
            "checksum-mismatch: bare cpu gave 1, vm gave 2"
        );
    }
}
