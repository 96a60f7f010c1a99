//! Step 3a: the guest command line the VMM composes: Linux defaults, the
//! kvm_pvm work-arounds, the lab's `vclab.*` parameters (written by
//! `vclab_contract::cmdline`), then the user's text.

use vclab_contract::cmdline::Word;
use vclab_contract::MmioDevice;

/// Linux defaults: console on COM1, reboot through the keyboard controller
/// (the VMM ends the VM on the i8042 reset), reboot 1 s after a panic.
pub const LINUX_DEFAULTS: &str = "console=ttyS0 reboot=k panic=1";
/// Added for Linux on kvm_pvm, where guest ring 0 is emulated and some
/// instructions fail (see /work/shared/HOST-NOTES.md): XSAVE, POPCNT,
/// FSGSBASE and SMAP are hidden; the lab kernel's INT3 self-test and FWAIT in
/// fpu__drop() are switched off by its own opt-in parameters.
pub const PVM_LINUX_QUIRKS: &str =
    "noxsave clearcpuid=popcnt,fsgsbase,smap vclab.no_int3_selftest vclab.no_fwait";

/// Added for Linux on kvm_pvm with more than one vCPU: KVM's paravirtual
/// IPIs (a hypercall) hang the secondary CPU's bring-up there, so the guest
/// runs as a generic one (`nopv`, which also drops kvmclock); the TSC rate
/// KVM reports replaces the PIT calibration that fails without it, and
/// `tsc=reliable` skips the TSC sync loops, which are slow in emulated ring 0.
pub const PVM_LINUX_SMP_QUIRKS: &str = "nopv tsc=reliable";

/// Errors of composing the command line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Longer than the kernel accepts.
    #[error(
        "kernel command line is {len} bytes, the kernel accepts at most {max}; shorten --cmdline"
    )]
    TooLong {
        /// Length without the NUL.
        len: usize,
        /// Longest allowed (cmdline_size - 1).
        max: usize,
    },
    /// A NUL byte inside the user's text.
    #[error("kernel command line contains a NUL byte; remove it from --cmdline")]
    Nul,
}

/// What the command line is made of.
#[derive(Debug, Clone, Default)]
pub struct Parts<'a> {
    /// The guest is Linux (adds `LINUX_DEFAULTS`).
    pub linux: bool,
    /// Add `quiet` (Linux only).
    pub quiet: bool,
    /// Add `PVM_LINUX_QUIRKS` (Linux on kvm_pvm only).
    pub pvm_quirks: bool,
    /// Add `PVM_LINUX_SMP_QUIRKS` and `tsc_early_khz` (Linux on kvm_pvm with
    /// more than one vCPU).
    pub pvm_smp_quirks: bool,
    /// KVM_GET_TSC_KHZ of the boot vCPU, passed as `vclab.tsc_khz`.
    pub tsc_khz: Option<u32>,
    /// The virtio-mmio devices: each becomes Linux's `virtio_mmio.device=SIZE@BASE:IRQ`,
    /// which the unikernel reads too (the format is `vclab_contract::MmioDevice`'s).
    pub virtio_mmio: &'a [MmioDevice],
    /// The user's `--cmdline`, appended last so it can override.
    pub user: &'a str,
}

/// Composes the command line and checks it fits `cmdline_size` bytes
/// (including the terminating NUL).
pub fn build(parts: &Parts<'_>, cmdline_size: usize) -> Result<String, Error> {
    let mut words: Vec<String> = Vec::new();
    if parts.linux {
        words.push(LINUX_DEFAULTS.to_string());
        if parts.quiet {
            words.push("quiet".to_string());
        }
        if parts.pvm_quirks {
            words.push(PVM_LINUX_QUIRKS.to_string());
        }
        if parts.pvm_smp_quirks {
            words.push(PVM_LINUX_SMP_QUIRKS.to_string());
            if let Some(khz) = parts.tsc_khz {
                words.push(format!("tsc_early_khz={khz}"));
            }
        }
    }
    if let Some(khz) = parts.tsc_khz {
        words.push(Word::TscKhz(u64::from(khz)).to_string());
    }
    for device in parts.virtio_mmio {
        words.push(device.to_string());
    }
    let user = parts.user.trim();
    if user.contains('\0') {
        return Err(Error::Nul);
    }
    if !user.is_empty() {
        words.push(user.to_string());
    }
    let line = words.join(" ");
    let max = cmdline_size.saturating_sub(1);
    if line.len() > max {
        return Err(Error::TooLong {
            len: line.len(),
            max,
        });
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_on_pvm() {
        let p = Parts {
            linux: true,
            quiet: true,
            pvm_quirks: true,
            pvm_smp_quirks: false,
            tsc_khz: Some(2_000_000),
            virtio_mmio: &[],
            user: "vclab.kernel=cpu",
        };
        let s = build(&p, 2048).unwrap();
        assert_eq!(
            s,
            "console=ttyS0 reboot=k panic=1 quiet noxsave clearcpuid=popcnt,fsgsbase,smap \
             vclab.no_int3_selftest vclab.no_fwait vclab.tsc_khz=2000000 vclab.kernel=cpu"
        );
    }

    #[test]
    fn linux_smp_on_pvm() {
        let p = Parts {
            linux: true,
            pvm_quirks: true,
            pvm_smp_quirks: true,
            tsc_khz: Some(7),
            ..Default::default()
        };
        let s = build(&p, 2048).unwrap();
        assert!(
            s.ends_with("vclab.no_fwait nopv tsc=reliable tsc_early_khz=7 vclab.tsc_khz=7"),
            "{s}"
        );
    }

    #[test]
    fn unikernel_gets_only_lab_params() {
        let p = Parts {
            tsc_khz: Some(5),
            user: " vclab.exit=3 ",
            ..Default::default()
        };
        assert_eq!(build(&p, 2048).unwrap(), "vclab.tsc_khz=5 vclab.exit=3");
        let p = Parts::default();
        assert_eq!(build(&p, 2048).unwrap(), "");
    }

    #[test]
    fn virtio_devices_come_before_the_user_text() {
        let p = Parts {
            virtio_mmio: &[
                MmioDevice {
                    base: 0xd000_0000,
                    size: 0x1000,
                    irq: 5,
                },
                MmioDevice {
                    base: 0xd000_1000,
                    size: 0x200,
                    irq: 6,
                },
            ],
            user: "root=/dev/vda",
            ..Default::default()
        };
        assert_eq!(
            build(&p, 2048).unwrap(),
            "virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=512@0xd0001000:6 root=/dev/vda"
        );
    }

    #[test]
    fn length_limit_counts_the_nul() {
        let user = "x".repeat(2047);
        let p = Parts {
            user: &user,
            ..Default::default()
        };
        assert!(build(&p, 2048).is_ok());
        let user = "x".repeat(2048);
        let p = Parts {
            user: &user,
            ..Default::default()
        };
        assert!(matches!(
            build(&p, 2048),
            Err(Error::TooLong {
                len: 2048,
                max: 2047
            })
        ));
        let p = Parts {
            user: "a\0b",
            ..Default::default()
        };
        assert!(matches!(build(&p, 2048), Err(Error::Nul)));
    }
}
