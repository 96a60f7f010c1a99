//! VM-wide KVM state: the in-kernel interrupt controllers (PIC master and slave,
//! IOAPIC: `KVM_GET_IRQCHIP`), the PIT (`KVM_GET_PIT2`) and the KVM clock
//! (`KVM_GET_CLOCK`). Restore order: PIT, clock, then the three irqchips, into a VM
//! whose irqchip and PIT were created (`kvm::create_irqchip`) and whose vCPUs have not
//! run yet.

use kvm_bindings::{
    kvm_clock_data, kvm_irqchip, kvm_pit_state2, KVM_CLOCK_REALTIME, KVM_IRQCHIP_IOAPIC,
    KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE,
};
use kvm_ioctls::{Cap, VmFd};
use serde::{Deserialize, Serialize};

/// Errors of saving and restoring the VM-wide state.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A read failed.
    #[error(
        "cannot read the VM's {what} for a snapshot: {err} (were the irqchip and PIT created?)"
    )]
    Get {
        /// Which state.
        what: &'static str,
        /// The ioctl error.
        err: kvm_ioctls::Error,
    },
    /// A write failed.
    #[error("cannot restore the VM's {what}: {err} (create the irqchip and PIT before restoring; else take a new snapshot with --snapshot-at ready)")]
    Set {
        /// Which state.
        what: &'static str,
        /// The ioctl error.
        err: kvm_ioctls::Error,
    },
}

/// The VM-wide state.
#[derive(Serialize, Deserialize)]
pub struct VmState {
    /// The master 8259 PIC.
    pub pic_master: kvm_irqchip,
    /// The slave 8259 PIC.
    pub pic_slave: kvm_irqchip,
    /// The IOAPIC.
    pub ioapic: kvm_irqchip,
    /// The 8254 PIT, its three channels and flags.
    pub pit: kvm_pit_state2,
    /// The KVM clock (kvmclock's base) when saved.
    pub clock: kvm_clock_data,
}

impl std::fmt::Debug for VmState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // kvm_irqchip (a union) has no Debug; the rest is enough to tell states apart.
        f.debug_struct("VmState")
            .field("pit", &self.pit)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

fn read_chip(vm: &VmFd, chip_id: u32, what: &'static str) -> Result<kvm_irqchip, Error> {
    let mut chip = kvm_irqchip {
        chip_id,
        ..Default::default()
    };
    vm.get_irqchip(&mut chip)
        .map_err(|err| Error::Get { what, err })?;
    Ok(chip)
}

/// Saves the irqchip, PIT and clock of a VM whose vCPUs are paused.
pub fn save(vm: &VmFd) -> Result<VmState, Error> {
    Ok(VmState {
        pic_master: read_chip(vm, KVM_IRQCHIP_PIC_MASTER, "master PIC")?,
        pic_slave: read_chip(vm, KVM_IRQCHIP_PIC_SLAVE, "slave PIC")?,
        ioapic: read_chip(vm, KVM_IRQCHIP_IOAPIC, "IOAPIC")?,
        pit: vm
            .get_pit2()
            .map_err(|err| Error::Get { what: "PIT", err })?,
        clock: vm.get_clock().map_err(|err| Error::Get {
            what: "KVM clock",
            err,
        })?,
    })
}

/// The flags to restore the clock with: only those KVM_SET_CLOCK takes on this host
/// (KVM_CAP_ADJUST_CLOCK lists them). With `KVM_CLOCK_REALTIME` KVM moves the clock on
/// by the wall time spent paused; `KVM_CLOCK_TSC_STABLE` is a read-only flag.
pub fn clock_flags(saved: u32, host_supported: u32) -> u32 {
    saved & host_supported & KVM_CLOCK_REALTIME
}

/// Restores `state` into `vm`.
pub fn restore(vm: &VmFd, state: &VmState) -> Result<(), Error> {
    let set = |what| move |err| Error::Set { what, err };
    vm.set_pit2(&state.pit).map_err(set("PIT"))?;
    let supported = vm.check_extension_int(Cap::AdjustClock).max(0) as u32;
    let mut clock = state.clock;
    clock.flags = clock_flags(clock.flags, supported);
    vm.set_clock(&clock).map_err(set("KVM clock"))?;
    vm.set_irqchip(&state.pic_master)
        .map_err(set("master PIC"))?;
    vm.set_irqchip(&state.pic_slave).map_err(set("slave PIC"))?;
    vm.set_irqchip(&state.ioapic).map_err(set("IOAPIC"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvm_bindings::{KVM_CLOCK_HOST_TSC, KVM_CLOCK_TSC_STABLE};

    #[test]
    fn clock_flags_keep_only_supported_realtime() {
        let all = KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC;
        assert_eq!(clock_flags(all, all), KVM_CLOCK_REALTIME);
        assert_eq!(clock_flags(all, KVM_CLOCK_TSC_STABLE), 0);
        assert_eq!(clock_flags(KVM_CLOCK_TSC_STABLE, all), 0);
    }
}
