//! The names in the VMM's report (`vclab-vmm --json`, DESIGN.md "CLI output"): why the VM ended
//! and which kernel format it booted. Serialised as the strings the report has always used, so old
//! `results.json` files and `--json` lines still parse.

use crate::failure::Failure;

/// Why a VM ended (`exit_reason` in the report).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "kebab-case")
)]
pub enum ExitReason {
    /// The guest wrote its status to the lab control device's exit port.
    GuestExit,
    /// The guest reset the machine through the i8042.
    Reset,
    /// A triple fault (KVM_EXIT_SHUTDOWN).
    TripleFault,
    /// KVM reported an internal error or an emulation failure.
    InternalError,
    /// Linux panicked (seen on the console) and then reset.
    GuestPanic,
    /// Stopped at Linux's init handoff (`--stop-at init-handoff`, or kvm_pvm).
    InitHandoff,
    /// A console line contained the watched text (`--stop-at-console`).
    ConsoleMatch,
    /// `--timeout` ran out.
    Timeout,
    /// The VMM was stopped by SIGINT or SIGTERM (`stop_signal` in the report names it).
    Signal,
}

names!(ExitReason, "exit reason", {
    GuestExit => "guest-exit",
    Reset => "reset",
    TripleFault => "triple-fault",
    InternalError => "internal-error",
    GuestPanic => "guest-panic",
    InitHandoff => "init-handoff",
    ConsoleMatch => "console-match",
    Timeout => "timeout",
    Signal => "signal",
});

impl ExitReason {
    /// The failure this ending is, if it is one: `None` for the endings a run can ask for
    /// (guest exit, reset, init handoff, console match; the guest's exit status is judged apart).
    pub const fn failure(self) -> Option<Failure> {
        match self {
            ExitReason::GuestExit
            | ExitReason::Reset
            | ExitReason::InitHandoff
            | ExitReason::ConsoleMatch => None,
            ExitReason::TripleFault | ExitReason::InternalError => Some(Failure::GuestFault),
            ExitReason::GuestPanic => Some(Failure::GuestPanic),
            ExitReason::Timeout => Some(Failure::Timeout),
            ExitReason::Signal => Some(Failure::Killed),
        }
    }
}

/// The two kernel formats the VMM boots (`kernel_format` in the report).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "kebab-case")
)]
pub enum KernelFormat {
    /// An ELF executable entered at `e_entry` in 64-bit mode.
    Elf,
    /// A bzImage entered at its 64-bit entry (code32_start + 0x200).
    BzImage,
}

names!(KernelFormat, "kernel format", {
    Elf => "elf",
    BzImage => "bz-image",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in ExitReason::ALL {
            assert_eq!(r.as_str().parse::<ExitReason>(), Ok(*r));
        }
        for k in KernelFormat::ALL {
            assert_eq!(k.to_string().parse::<KernelFormat>(), Ok(*k));
        }
        let e = "bzimage".parse::<KernelFormat>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown kernel format: expected one of elf bz-image"
        );
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_names_are_the_report_strings() {
        for r in ExitReason::ALL {
            let json = serde_json::to_string(r).unwrap();
            assert_eq!(json, std::format!("\"{r}\""));
            assert_eq!(serde_json::from_str::<ExitReason>(&json).unwrap(), *r);
        }
        for k in KernelFormat::ALL {
            assert_eq!(serde_json::to_string(k).unwrap(), std::format!("\"{k}\""));
        }
        assert_eq!(
            serde_json::from_str::<KernelFormat>("\"bz-image\"").unwrap(),
            KernelFormat::BzImage
        );
    }
}
