//! The VM's devices, made the same way for a boot and a restore: COM1 (vm-superio, its
//! interrupt an irqfd; a restore gives it its saved registers), the i8042, the lab control
//! device, and the MMIO bus of the virtio disks.

use std::sync::Arc;

use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::attach;
use crate::boot::Error;
use crate::config::{Output, VmConfig};
use crate::devices::serial::{self, IrqTrigger};
use crate::devices::{i8042::I8042, labctl::LabCtl, Clock, Devices, Sink, Unclaimed};
use crate::snapshot::SerialRegs;
use crate::{console_file, layout};

/// The port devices (COM1 with its irqfd, the i8042, the lab control device) and the MMIO
/// bus; `serial` is a restored UART's registers.
pub fn build(
    config: &VmConfig,
    vm: &kvm_ioctls::VmFd,
    mem: &GuestMemoryMmap,
    disks: &attach::Disks,
    clock: Clock,
    serial: Option<&SerialRegs>,
) -> Result<Devices, Error> {
    let serial_evt = EventFd::new(EFD_NONBLOCK).map_err(|e| Error::SerialIrq(e.to_string()))?;
    vm.register_irqfd(&serial_evt, layout::SERIAL_IRQ)
        .map_err(|e| Error::SerialIrq(e.to_string()))?;
    let trigger = IrqTrigger(Some(serial_evt));
    let out = serial::ConsoleSink::new(sink(&config.console)?, clock);
    let mut console = match serial {
        Some(regs) => serial::restore(&regs.into(), trigger, out)
            .map_err(|e| Error::SerialIrq(format!("restoring the UART's registers: {e}")))?,
        None => vm_superio::Serial::new(trigger, out),
    };
    console.writer_mut().watch = config.stop_at_console.clone();
    let mut labctl = LabCtl::new(Some(mem.clone()), sink(&config.lines)?, clock);
    labctl.present = config.lab_device;
    Ok(Devices {
        serial: console,
        i8042: I8042::default(),
        labctl,
        mmio: disks.bus(),
        unclaimed: Unclaimed::default(),
        exits: Default::default(),
        clock,
    })
}

/// Where a guest byte stream goes.
fn sink(output: &Output) -> Result<Sink, Error> {
    Ok(match output {
        Output::Stdout => Sink::Stdout,
        Output::Off => Sink::Off,
        Output::Memory(buf) => Sink::Memory(buf.clone()),
        Output::Opened(file) => Sink::File(file.clone()),
        Output::File(path) => Sink::File(Arc::new(console_file::create(path).map_err(|err| {
            Error::ConsoleFile {
                path: path.display().to_string(),
                hint: console_file::hint(&err),
                err,
            }
        })?)),
    })
}
