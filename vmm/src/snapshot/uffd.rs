//! userfaultfd lazy loading (`Documentation/admin-guide/mm/userfaultfd.rst`): guest RAM is
//! anonymous memory registered for missing-page faults; a handler thread answers each
//! fault (the guest's through KVM, or the VMM's own) by copying that page in from the
//! memory file (`UFFDIO_COPY`).
//!
//! The descriptor comes from `userfaultfd(2)`, or from `/dev/userfaultfd` (Linux 6.1+)
//! where the syscall is refused: unprivileged users need `vm.unprivileged_userfaultfd=1`
//! or access to `/dev/userfaultfd`. When neither works, [`Error::Unsupported`] says why.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::memory::{host_ranges, RegionEntry, PAGE};

/// `UFFD_API` (linux/userfaultfd.h).
const UFFD_API: u64 = 0xaa;
/// `_IOWR(0xAA, 0x3F, struct uffdio_api)` (24 bytes).
const UFFDIO_API: u64 = 0xc018_aa3f;
/// `_IOWR(0xAA, 0x00, struct uffdio_register)` (32 bytes).
const UFFDIO_REGISTER: u64 = 0xc020_aa00;
/// `_IOWR(0xAA, 0x03, struct uffdio_copy)` (40 bytes).
const UFFDIO_COPY: u64 = 0xc028_aa03;
/// `_IO(0xAA, 0x00)` on `/dev/userfaultfd`.
const USERFAULTFD_IOC_NEW: u64 = 0xaa00;
const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;
const UFFD_EVENT_PAGEFAULT: u8 = 0x12;
/// `sizeof(struct uffd_msg)`.
const MSG_BYTES: usize = 32;

/// Errors of the userfaultfd restore mode.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The host gives this process no userfaultfd.
    #[error(
        "userfaultfd restore is not available on this host: {0}; use --restore-mode mmap or eager"
    )]
    Unsupported(String),
    /// A userfaultfd ioctl failed.
    #[error("userfaultfd {what} failed: {err} (use --restore-mode mmap or eager)")]
    Ioctl {
        /// Which ioctl.
        what: &'static str,
        /// The error.
        err: std::io::Error,
    },
    /// The handler thread could not start.
    #[error("cannot start the userfaultfd handler thread: {0}")]
    Thread(std::io::Error),
}

#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioRegister {
    start: u64,
    len: u64,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioCopy {
    dst: u64,
    src: u64,
    len: u64,
    mode: u64,
    copy: i64,
}

fn last_err() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// Opens a userfaultfd (non-blocking, close-on-exec): the syscall, else /dev/userfaultfd.
pub fn open() -> Result<OwnedFd, Error> {
    let flags = libc::O_CLOEXEC | libc::O_NONBLOCK;
    // SAFETY: userfaultfd(2) takes only flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, flags) };
    if fd >= 0 {
        // SAFETY: `fd` is a new descriptor this process owns and nothing else holds.
        return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    }
    let sys_err = last_err();
    let dev = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/userfaultfd")
        .map_err(|e| {
            Error::Unsupported(format!(
                "userfaultfd(2) failed ({sys_err}; for non-root users vm.unprivileged_userfaultfd must be 1) and /dev/userfaultfd cannot be opened ({e})"
            ))
        })?;
    // SAFETY: USERFAULTFD_IOC_NEW on /dev/userfaultfd takes the flags as its argument
    // and returns a new descriptor or -1.
    let fd = unsafe { libc::ioctl(dev.as_raw_fd(), USERFAULTFD_IOC_NEW as _, flags) };
    if fd < 0 {
        return Err(Error::Unsupported(format!(
            "userfaultfd(2) failed ({sys_err}) and /dev/userfaultfd refused a new descriptor ({})",
            last_err()
        )));
    }
    // SAFETY: as above, a new descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether this process can get a userfaultfd, and why not.
pub fn probe() -> Result<(), Error> {
    let fd = open()?;
    handshake(&fd)
}

fn ioctl<T>(fd: &impl AsRawFd, req: u64, arg: &mut T, what: &'static str) -> Result<(), Error> {
    // SAFETY: `req` is the userfaultfd ioctl whose argument is a `T` (the repr(C)
    // structs above match linux/userfaultfd.h); `arg` is a live exclusive reference.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg as *mut T) };
    if rc < 0 {
        return Err(Error::Ioctl {
            what,
            err: last_err(),
        });
    }
    Ok(())
}

fn handshake(fd: &impl AsRawFd) -> Result<(), Error> {
    let mut api = UffdioApi {
        api: UFFD_API,
        features: 0,
        ioctls: 0,
    };
    ioctl(fd, UFFDIO_API, &mut api, "UFFDIO_API")
}

/// Where one registered region's bytes are.
#[derive(Clone, Copy)]
struct Span {
    host: u64,
    len: u64,
    file_offset: u64,
}

/// The running handler; dropping it stops and joins the thread.
pub struct Handler {
    stop: EventFd,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// What the handler thread reports.
#[derive(Default)]
struct Shared {
    faults: AtomicU64,
    failure: Mutex<Option<String>>,
}

impl Handler {
    /// Registers `mem` (anonymous, untouched) for missing-page faults and starts the
    /// thread that fills it from `file` laid out as `regions`.
    pub fn start(
        file: File,
        regions: &[RegionEntry],
        mem: &GuestMemoryMmap,
    ) -> Result<Self, Error> {
        let uffd = File::from(open()?);
        handshake(&uffd)?;
        let spans: Vec<Span> = host_ranges(mem)
            .into_iter()
            .zip(regions)
            .map(|((host, len), r)| Span {
                host,
                len: len as u64,
                file_offset: r.file_offset,
            })
            .collect();
        for s in &spans {
            let mut reg = UffdioRegister {
                start: s.host,
                len: s.len,
                mode: UFFDIO_REGISTER_MODE_MISSING,
                ioctls: 0,
            };
            ioctl(&uffd, UFFDIO_REGISTER, &mut reg, "UFFDIO_REGISTER")?;
        }
        let stop = EventFd::new(EFD_NONBLOCK).map_err(Error::Thread)?;
        let stop_rx = stop.try_clone().map_err(Error::Thread)?;
        let shared = Arc::new(Shared::default());
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("vclab-uffd".to_string())
            .spawn(move || serve(uffd, file, spans, stop_rx, theirs))
            .map_err(Error::Thread)?;
        Ok(Handler {
            stop,
            shared,
            thread: Some(thread),
        })
    }

    /// Page faults answered so far.
    pub fn faults(&self) -> u64 {
        self.shared.faults.load(Ordering::Relaxed)
    }

    /// Why the handler stopped answering faults, if it did (one line).
    pub fn failure(&self) -> Option<String> {
        self.shared.failure.lock().ok().and_then(|f| f.clone())
    }
}

impl Drop for Handler {
    fn drop(&mut self) {
        let _ = self.stop.write(1);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The handler loop: wait for a fault or the stop event, copy the page in. A failure
/// ends the loop and is kept for [`Handler::failure`]: the faulting thread then stays
/// blocked (better than a guest running on zero pages), so the run ends by its timeout.
fn serve(uffd: File, file: File, spans: Vec<Span>, stop: EventFd, shared: Arc<Shared>) {
    if let Err(e) = serve_loop(&uffd, &file, &spans, &stop, &shared) {
        log::error!("{e}");
        if let Ok(mut slot) = shared.failure.lock() {
            *slot = Some(e);
        }
        // Keep the descriptor open until the handler is dropped: closing it would let
        // the blocked thread go on with a zero page in place of guest data.
        let mut fd = [libc::pollfd {
            fd: stop.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: `fd` is a live array of one pollfd struct.
        while unsafe { libc::poll(fd.as_mut_ptr(), 1, -1) } < 0 {}
    }
}

fn serve_loop(
    uffd: &File,
    file: &File,
    spans: &[Span],
    stop: &EventFd,
    shared: &Shared,
) -> Result<(), String> {
    let mut page = vec![0u8; PAGE];
    let mut reader = uffd;
    loop {
        let mut fds = [uffd.as_raw_fd(), stop.as_raw_fd()].map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
        // SAFETY: `fds` is a live array of two pollfd structs for the length given.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if rc < 0 {
            let e = last_err();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("userfaultfd handler: poll failed: {e}"));
        }
        if fds[1].revents != 0 {
            return Ok(());
        }
        let mut msg = [0u8; MSG_BYTES];
        match reader.read(&mut msg) {
            Ok(MSG_BYTES) => {}
            Ok(n) => return Err(format!("userfaultfd handler: short message of {n} bytes")),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => return Err(format!("userfaultfd handler: read failed: {e}")),
        }
        if msg[0] != UFFD_EVENT_PAGEFAULT {
            continue;
        }
        let addr = fault_address(&msg) & !(PAGE as u64 - 1);
        // Counted before the copy wakes the faulting thread, so it sees its own fault.
        shared.faults.fetch_add(1, Ordering::Relaxed);
        match fill(uffd, file, spans, addr, &mut page) {
            Ok(true) => {}
            Ok(false) => {
                shared.faults.fetch_sub(1, Ordering::Relaxed);
            }
            Err(e) => return Err(e),
        }
    }
}

/// The faulting address of a `struct uffd_msg` (its `arg.pagefault.address`).
fn fault_address(msg: &[u8; MSG_BYTES]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&msg[16..24]);
    u64::from_ne_bytes(b)
}

/// Copies the page at host address `addr` in from the file: `Ok(false)` when another
/// fault on it was answered first (EEXIST).
fn fill(
    uffd: &File,
    file: &File,
    spans: &[Span],
    addr: u64,
    page: &mut [u8],
) -> Result<bool, String> {
    let s = spans
        .iter()
        .find(|s| addr >= s.host && addr < s.host + s.len)
        .ok_or_else(|| format!("userfaultfd handler: fault at {addr:#x} outside guest memory"))?;
    let off = s.file_offset + (addr - s.host);
    // The file's size was checked against the regions before the handler started.
    file.read_exact_at(page, off).map_err(|e| {
        format!("userfaultfd handler: cannot read the memory file at offset {off:#x}: {e}")
    })?;
    let mut copy = UffdioCopy {
        dst: addr,
        src: page.as_ptr() as u64,
        len: page.len() as u64,
        mode: 0,
        copy: 0,
    };
    match ioctl(uffd, UFFDIO_COPY, &mut copy, "UFFDIO_COPY") {
        Ok(()) => Ok(true),
        Err(Error::Ioctl { err, .. }) if err.raw_os_error() == Some(libc::EEXIST) => Ok(false),
        Err(e) => Err(format!("userfaultfd handler: page {addr:#x}: {e}")),
    }
}
