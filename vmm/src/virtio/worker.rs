//! The `vclab-vmm-io` thread: one epoll loop over the queue eventfds of every virtio device
//! (KVM signals them on the guest's QueueNotify writes) and a stop eventfd. On a queue event
//! it locks that device's transport (its own mutex: a vCPU touching another device never
//! waits), processes the queue and raises the interrupt through the irq eventfd.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

use super::MmioTransport;
use crate::seccomp::Filter;

/// The worker thread's name.
pub const THREAD_NAME: &str = "vclab-vmm-io";

/// The epoll token of the stop eventfd (queue tokens are `device << 16 | queue`).
const STOP: u64 = u64::MAX;

/// Starts the worker over `devices`; it runs until `stop` is written. The thread installs
/// `filter` on itself before anything else; this returns once it did (its failure is this
/// call's error), with every queue eventfd registered, so no notification is lost.
pub fn spawn(
    devices: Vec<Arc<Mutex<MmioTransport>>>,
    stop: EventFd,
    filter: Option<Filter>,
) -> io::Result<JoinHandle<()>> {
    let epoll = Epoll::new()?;
    epoll.ctl(
        ControlOperation::Add,
        stop.as_raw_fd(),
        EpollEvent::new(EventSet::IN, STOP),
    )?;
    // The eventfds live as long as their transports, which the thread keeps alive.
    let mut events: Vec<(u64, EventFd)> = Vec::new();
    for (d, device) in devices.iter().enumerate() {
        let transport = device.lock().unwrap_or_else(PoisonError::into_inner);
        for (q, event) in transport.queue_events().iter().enumerate() {
            let token = ((d as u64) << 16) | q as u64;
            let own = event.try_clone()?;
            epoll.ctl(
                ControlOperation::Add,
                own.as_raw_fd(),
                EpollEvent::new(EventSet::IN, token),
            )?;
            events.push((token, own));
        }
    }
    let (tx, rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name(THREAD_NAME.to_owned())
        .spawn(move || {
            let installed = filter.as_ref().map_or(Ok(()), Filter::install);
            let failed = installed.is_err();
            let _ = tx.send(installed);
            if !failed {
                run(&epoll, &devices, &events, &stop);
            }
        })?;
    match rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => {
            let _ = handle.join();
            Err(io::Error::other(e.to_string()))
        }
        Err(_) => {
            let _ = handle.join();
            Err(io::Error::other(format!(
                "{THREAD_NAME} ended before it started"
            )))
        }
    }
}

fn run(
    epoll: &Epoll,
    devices: &[Arc<Mutex<MmioTransport>>],
    events: &[(u64, EventFd)],
    stop: &EventFd,
) {
    let mut ready = vec![EpollEvent::default(); events.len() + 1];
    loop {
        let n = match epoll.wait(-1, &mut ready) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::error!("{THREAD_NAME}: epoll_wait failed, virtio I/O stops: {e}");
                return;
            }
        };
        for event in &ready[..n] {
            let token = event.data();
            if token == STOP {
                let _ = stop.read();
                return;
            }
            let Some((_, fd)) = events.iter().find(|(t, _)| *t == token) else {
                continue;
            };
            // Clears the counter; EAGAIN (already read) is harmless.
            let _ = fd.read();
            let Some(device) = devices.get((token >> 16) as usize) else {
                continue;
            };
            let mut transport = device.lock().unwrap_or_else(PoisonError::into_inner);
            transport.process_queue((token & 0xffff) as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::BusDevice;
    use crate::virtio::blk::{request, Block, Disk, VIRTIO_BLK_S_OK};
    use crate::virtio::mmio::reg;
    use crate::virtio::test_utils::*;
    use std::time::{Duration, Instant};
    use virtio_queue::mock::MockSplitQueue;
    use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
    use vmm_sys_util::eventfd::EFD_NONBLOCK;

    /// Waits up to 10 s for `event` to be written.
    fn wait_for(event: &EventFd) -> u64 {
        let start = Instant::now();
        loop {
            if let Ok(n) = event.read() {
                return n;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no interrupt within 10 s"
            );
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// A block transport over a 4 KiB image of 0x5a bytes, set up by a "driver".
    fn block_transport(
        dir: &tempfile::TempDir,
        mem: &GuestMemoryMmap,
        mock: &MockSplitQueue<'_, GuestMemoryMmap>,
    ) -> Arc<Mutex<MmioTransport>> {
        let path = dir.path().join("w.img");
        std::fs::write(&path, [0x5a; 4096]).unwrap();
        let dev = Block::new(Disk::open(&path, false).unwrap());
        let mut t = MmioTransport::new(mem.clone(), Box::new(dev)).unwrap();
        negotiate(&mut t);
        setup_queue(&mut t, 0, mock, 16);
        driver_ok(&mut t);
        assert!(t.is_activated());
        Arc::new(Mutex::new(t))
    }

    /// Puts an IN of sector 1 on `mock` (a new mock would clear the rings).
    fn queue_read(mem: &GuestMemoryMmap, mock: &MockSplitQueue<'_, GuestMemoryMmap>, round: u16) {
        let h = request::Header {
            kind: request::VIRTIO_BLK_T_IN.into(),
            reserved: 0.into(),
            sector: 1.into(),
        };
        mem.write_obj(h, GuestAddress(0x1_0000)).unwrap();
        mem.write_obj(0xffu8, GuestAddress(0x3_0000)).unwrap();
        // Like Linux with VIRTIO_RING_F_EVENT_IDX: interrupt me once this chain is used.
        mem.write_obj(round, used_event(mock, 16)).unwrap();
        let first = round * 3;
        mock.add_desc_chains(
            &[
                desc(0x1_0000, 16, NEXT, first + 1),
                desc(0x2_0000, 512, WRITE | NEXT, first + 2),
                desc(0x3_0000, 1, WRITE, 0),
            ],
            first,
        )
        .unwrap();
    }

    #[test]
    fn the_worker_does_the_io_and_raises_the_interrupt_until_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let mem = memory(0x10_0000);
        let mock = MockSplitQueue::new(&mem, 16);
        let transport = block_transport(&dir, &mem, &mock);
        let irq = transport.lock().unwrap().irq_event().try_clone().unwrap();
        let stop = EventFd::new(EFD_NONBLOCK).unwrap();

        // A notification before the thread exists is not lost (the eventfd keeps it).
        queue_read(&mem, &mock, 0);
        write32(&mut transport.lock().unwrap(), reg::QUEUE_NOTIFY, 0);
        let handle = spawn(vec![transport.clone()], stop.try_clone().unwrap(), None).unwrap();
        assert_eq!(handle.thread().name(), Some(THREAD_NAME));
        assert_eq!(wait_for(&irq), 1);
        assert_eq!(
            mem.read_obj::<u8>(GuestAddress(0x3_0000)).unwrap(),
            VIRTIO_BLK_S_OK
        );
        let mut data = [0u8; 512];
        mem.read_slice(&mut data, GuestAddress(0x2_0000)).unwrap();
        assert_eq!(data, [0x5a; 512]);

        // And one while it runs, through the queue eventfd as KVM would signal it.
        queue_read(&mem, &mock, 1);
        transport.lock().unwrap().queue_events()[0]
            .write(1)
            .unwrap();
        assert_eq!(wait_for(&irq), 1);
        assert_eq!(used_idx(&mem), 2);
        let mut status = [0u8; 4];
        transport
            .lock()
            .unwrap()
            .read(reg::INTERRUPT_STATUS, &mut status);
        assert_eq!(u32::from_le_bytes(status), 1);

        stop.write(1).unwrap();
        let start = Instant::now();
        while !handle.is_finished() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the worker did not stop"
            );
            thread::sleep(Duration::from_millis(1));
        }
        handle.join().unwrap();
    }

    #[test]
    fn the_worker_idles_without_devices_and_stops() {
        let stop = EventFd::new(EFD_NONBLOCK).unwrap();
        let handle = spawn(Vec::new(), stop.try_clone().unwrap(), None).unwrap();
        stop.write(1).unwrap();
        handle.join().unwrap();
    }
}
