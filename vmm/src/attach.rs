//! Step 6b: the VM's disks. Each `--disk` becomes a virtio-blk device on a virtio-mmio
//! transport (`layout::VIRTIO_MMIO_BASE + n` pages, GSI `VIRTIO_IRQ_BASE + n`): on the MMIO bus,
//! its queue-notify register bound to an ioeventfd and its interrupt to an irqfd, so a guest
//! notification wakes the I/O thread (`vclab-vmm-io`) without a vCPU exit to the VMM, and the
//! vCPU threads never do disk I/O. A VM without disks gets none of this: no thread, no fd.
//!
//! The image files are opened (and checked) first, before KVM is touched and before a jail
//! drops privileges ([`open`]); [`attach`] then builds the devices on the VM.

use std::fs::File;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use kvm_ioctls::{IoEventAddress, VmFd};
use vclab_contract::MmioDevice;
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::bus::{self, Bus};
use crate::config::DiskSpec;
use crate::layout;
use crate::seccomp::Filter;
use crate::virtio::blk::{Block, Disk};
use crate::virtio::{worker, MmioTransport};

/// The queue-notify register of a virtio-mmio transport (virtio 1.2 §4.2.2).
const QUEUE_NOTIFY: u64 = 0x50;

/// Errors of attaching disks.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// More disks than interrupt lines.
    #[error("{0} disks given, at most {max} fit (one IOAPIC line each): attach fewer", max = layout::VIRTIO_MAX_DEVICES)]
    TooMany(usize),
    /// An image that cannot be used (missing, not a multiple of 512, read-only without `,ro`).
    #[error(transparent)]
    Disk(#[from] crate::virtio::blk::Error),
    /// The transport could not be built.
    #[error("disk {index}: {err}")]
    Transport {
        /// The disk's index.
        index: usize,
        /// What failed.
        err: String,
    },
    /// Two devices on one MMIO range (a layout bug).
    #[error(transparent)]
    Bus(#[from] bus::Error),
    /// KVM refused an ioeventfd or irqfd.
    #[error("cannot register the {what} of disk {index} with KVM: {err}")]
    Kvm {
        /// ioeventfd or irqfd.
        what: &'static str,
        /// The disk's index.
        index: usize,
        /// The ioctl error.
        err: kvm_ioctls::Error,
    },
    /// The I/O thread's stop eventfd or the thread itself.
    #[error("cannot start the VMM's I/O thread: {0}")]
    Thread(std::io::Error),
}

/// The image files, opened and checked.
pub struct Opened(Vec<Disk>);

/// Opens and checks every disk (before KVM, filters or a jail); `files` are the images opened
/// already (by the jail), in the order of `specs`.
pub fn open(specs: &[DiskSpec], files: &[Arc<File>]) -> Result<Opened, Error> {
    if specs.len() > layout::VIRTIO_MAX_DEVICES {
        return Err(Error::TooMany(specs.len()));
    }
    let disks = specs
        .iter()
        .enumerate()
        .map(|(i, s)| match files.get(i) {
            Some(f) => {
                let file = f.try_clone().map_err(|e| Error::Transport {
                    index: i,
                    err: format!("cannot duplicate the image fd of {}: {e}", s.path.display()),
                })?;
                Ok(Disk::from_file(file, &s.path, s.read_only)?)
            }
            None => Ok(Disk::open_with(&s.path, s.read_only, s.direct)?),
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Opened(disks))
}

/// The attached devices and their I/O thread.
pub struct Disks {
    transports: Vec<Arc<Mutex<MmioTransport>>>,
    bus: Arc<Bus>,
    /// Each transport's window and line, for the command line.
    slots: Vec<MmioDevice>,
    stop: Option<EventFd>,
    thread: Option<JoinHandle<()>>,
}

/// Builds a transport per disk on `vm`: bus range, ioeventfd, irqfd.
pub fn attach(opened: Opened, vm: &VmFd, mem: &GuestMemoryMmap) -> Result<Disks, Error> {
    let mut bus = Bus::new();
    let mut transports = Vec::new();
    let mut slots = Vec::new();
    for (index, disk) in opened.0.into_iter().enumerate() {
        let base = layout::VIRTIO_MMIO_BASE + index as u64 * layout::VIRTIO_MMIO_SIZE;
        let irq = layout::VIRTIO_IRQ_BASE + index as u32;
        let transport =
            MmioTransport::new(mem.clone(), Box::new(Block::new(disk))).map_err(|e| {
                Error::Transport {
                    index,
                    err: e.to_string(),
                }
            })?;
        for (queue, evt) in transport.queue_events().iter().enumerate() {
            vm.register_ioevent(
                evt,
                &IoEventAddress::Mmio(base + QUEUE_NOTIFY),
                queue as u32,
            )
            .map_err(|err| Error::Kvm {
                what: "queue-notify ioeventfd",
                index,
                err,
            })?;
        }
        vm.register_irqfd(transport.irq_event(), irq)
            .map_err(|err| Error::Kvm {
                what: "irqfd",
                index,
                err,
            })?;
        let transport = Arc::new(Mutex::new(transport));
        bus.insert(base, layout::VIRTIO_MMIO_SIZE, transport.clone())?;
        transports.push(transport);
        slots.push(MmioDevice {
            size: layout::VIRTIO_MMIO_SIZE,
            base,
            irq,
        });
    }
    Ok(Disks {
        transports,
        bus: Arc::new(bus),
        slots,
        stop: None,
        thread: None,
    })
}

impl Disks {
    /// No disks (nothing attached, nothing to run).
    pub fn none() -> Disks {
        Disks {
            transports: Vec::new(),
            bus: Arc::new(Bus::new()),
            slots: Vec::new(),
            stop: None,
            thread: None,
        }
    }

    /// Whether a disk is attached (then the VM needs its I/O thread).
    pub fn any(&self) -> bool {
        !self.transports.is_empty()
    }

    /// Each device's window and line, for `virtio_mmio.device=` on the command line.
    pub fn mmio_devices(&self) -> &[MmioDevice] {
        &self.slots
    }

    /// The MMIO bus holding the devices.
    pub fn bus(&self) -> Arc<Bus> {
        self.bus.clone()
    }

    /// Starts the I/O thread (it installs `filter` on itself first). Nothing without disks.
    pub fn start(&mut self, filter: Option<Filter>) -> Result<(), Error> {
        if !self.any() {
            return Ok(());
        }
        let stop = EventFd::new(EFD_NONBLOCK).map_err(Error::Thread)?;
        let theirs = stop.try_clone().map_err(Error::Thread)?;
        let thread =
            worker::spawn(self.transports.clone(), theirs, filter).map_err(Error::Thread)?;
        self.stop = Some(stop);
        self.thread = Some(thread);
        Ok(())
    }
}

impl Drop for Disks {
    /// Stops and joins the I/O thread (an in-flight request finishes first).
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            if let Err(e) = stop.write(1) {
                log::warn!("cannot stop the VMM's I/O thread: {e}");
                return;
            }
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
