//! Guest memory as a file: the regions one after another, each at the file offset the
//! manifest records. Untouched (zero) pages can be left as holes ([`SaveMode::SkipZero`]).
//!
//! Restore modes ([`RestoreMode`]):
//! - `mmap`: the file mapped `MAP_PRIVATE`; pages come in on first touch, guest writes
//!   stay in this process (copy on write), never reach the file;
//! - `eager`: anonymous memory with the file's data read in (holes skipped with
//!   `SEEK_DATA`/`SEEK_HOLE`, so they stay untouched zero pages);
//! - `uffd`: anonymous memory filled on first touch by a userfaultfd handler thread
//!   (`uffd.rs`).

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use vm_memory::mmap::MmapRegion;
use vm_memory::{
    Address, Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap,
    GuestMemoryRegion, GuestRegionMmap,
};

use super::uffd;

/// The page size the zero-page scan and the holes use.
pub const PAGE: usize = 4096;
/// Bytes copied out of guest memory per step of the zero-page scan.
const SCAN_CHUNK: usize = 1 << 20;

/// Errors of writing and mapping the memory file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O call on the memory file failed.
    #[error("cannot {what} memory file {path}: {err} (is the snapshot directory on a writable file system with room?)")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: String,
        /// The error.
        err: std::io::Error,
    },
    /// Guest memory could not be read or written.
    #[error("cannot copy guest memory at {addr:#x} ({len} bytes) {dir} memory file {path}: {err}")]
    Copy {
        /// Guest address.
        addr: u64,
        /// Bytes.
        len: usize,
        /// "to" or "from".
        dir: &'static str,
        /// The file.
        path: String,
        /// What vm-memory said.
        err: String,
    },
    /// A mapping could not be made.
    #[error("cannot map {len} bytes of guest memory at {addr:#x} from {path}: {err} (is the host short of memory or address space?)")]
    Map {
        /// Guest address.
        addr: u64,
        /// Bytes.
        len: u64,
        /// The file.
        path: String,
        /// What vm-memory said.
        err: String,
    },
    /// madvise(MADV_HUGEPAGE) failed on eagerly restored memory.
    #[error("cannot ask for huge pages (madvise MADV_HUGEPAGE) on guest memory restored from {path}: {err} (is transparent huge page support built into the host kernel? else restore with --hugepages off)")]
    HugePages {
        /// The memory file.
        path: String,
        /// The error.
        err: std::io::Error,
    },
    /// The memory file is shorter than the regions need.
    #[error("memory file {path} has {have} bytes, the regions need {need}: the snapshot is truncated; take a new snapshot with --snapshot-at ready")]
    Short {
        /// The file.
        path: String,
        /// Its size.
        have: u64,
        /// What the regions need.
        need: u64,
    },
    /// A restore mode name that is none of mmap, eager, uffd.
    #[error("unknown restore mode {0:?}: use mmap, eager or uffd")]
    UnknownMode(String),
    /// The userfaultfd mode failed.
    #[error(transparent)]
    Uffd(#[from] uffd::Error),
}

/// One guest RAM region in the memory file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionEntry {
    /// Guest-physical start.
    pub guest_addr: u64,
    /// Length, bytes.
    pub size: u64,
    /// Where its bytes start in the memory file.
    pub file_offset: u64,
}

impl RegionEntry {
    /// The end of this region's bytes in the file.
    pub fn file_end(&self) -> u64 {
        self.file_offset.saturating_add(self.size)
    }
}

/// The layout of `mem` in a memory file: regions packed in guest-address order.
pub fn layout(mem: &GuestMemoryMmap) -> Vec<RegionEntry> {
    let mut offset = 0;
    mem.iter()
        .map(|r| {
            let e = RegionEntry {
                guest_addr: r.start_addr().raw_value(),
                size: r.len(),
                file_offset: offset,
            };
            offset += r.len();
            e
        })
        .collect()
}

/// How the memory file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaveMode {
    /// One write per region.
    Full,
    /// Zero pages left as holes of a sparse file (a scan through a 1 MiB buffer).
    SkipZero,
}

/// What a save wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// The regions and their file offsets.
    pub regions: Vec<RegionEntry>,
    /// The file's size.
    pub file_size: u64,
    /// Bytes actually written (less than `file_size` with holes).
    pub written: u64,
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |err| Error::Io {
        what,
        path: path.display().to_string(),
        err,
    }
}

/// Writes `mem` to a new file at `path` (replaced if there).
pub fn save(mem: &GuestMemoryMmap, path: &Path, mode: SaveMode) -> Result<Saved, Error> {
    let mut file = File::create(path).map_err(io_err("create", path))?;
    save_to(mem, &mut file, path, mode)
}

/// Writes `mem` into `file`, an empty file opened for writing (before the seccomp filters:
/// this needs only ftruncate, lseek, write and pwrite64); `path` names it in errors.
pub fn save_to(
    mem: &GuestMemoryMmap,
    file: &mut File,
    path: &Path,
    mode: SaveMode,
) -> Result<Saved, Error> {
    let regions = layout(mem);
    let file_size = regions.last().map_or(0, RegionEntry::file_end);
    file.set_len(file_size).map_err(io_err("size", path))?;
    let mut written = 0;
    for r in &regions {
        written += match mode {
            SaveMode::Full => write_full(mem, r, file, path)?,
            SaveMode::SkipZero => write_sparse(mem, r, file, path)?,
        };
    }
    Ok(Saved {
        regions,
        file_size,
        written,
    })
}

fn copy_err(r: &RegionEntry, dir: &'static str, path: &Path, err: impl ToString) -> Error {
    Error::Copy {
        addr: r.guest_addr,
        len: r.size as usize,
        dir,
        path: path.display().to_string(),
        err: err.to_string(),
    }
}

fn write_full(
    mem: &GuestMemoryMmap,
    r: &RegionEntry,
    file: &mut File,
    path: &Path,
) -> Result<u64, Error> {
    file.seek(SeekFrom::Start(r.file_offset))
        .map_err(io_err("seek in", path))?;
    mem.write_all_volatile_to(GuestAddress(r.guest_addr), file, r.size as usize)
        .map_err(|e| copy_err(r, "to", path, e))?;
    Ok(r.size)
}

fn write_sparse(
    mem: &GuestMemoryMmap,
    r: &RegionEntry,
    file: &File,
    path: &Path,
) -> Result<u64, Error> {
    let mut buf = vec![0u8; SCAN_CHUNK];
    let mut written = 0;
    let mut done = 0u64;
    while done < r.size {
        let len = (r.size - done).min(SCAN_CHUNK as u64) as usize;
        let chunk = &mut buf[..len];
        mem.read_slice(chunk, GuestAddress(r.guest_addr + done))
            .map_err(|e| copy_err(r, "to", path, e))?;
        for (start, end) in nonzero_runs(chunk) {
            file.write_all_at(&chunk[start..end], r.file_offset + done + start as u64)
                .map_err(io_err("write", path))?;
            written += (end - start) as u64;
        }
        done += len as u64;
    }
    Ok(written)
}

/// The byte ranges of `buf`'s non-zero pages, adjacent pages merged.
pub fn nonzero_runs(buf: &[u8]) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, page) in buf.chunks(PAGE).enumerate() {
        // An OR fold vectorizes; `iter().all()` stops early but scans byte by byte.
        if page.iter().fold(0u8, |a, b| a | b) == 0 {
            continue;
        }
        let (start, end) = (i * PAGE, i * PAGE + page.len());
        match runs.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => runs.push((start, end)),
        }
    }
    runs
}

/// How restored guest memory gets its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RestoreMode {
    /// `MAP_PRIVATE` file mapping, pages read on first touch.
    #[default]
    Mmap,
    /// Anonymous memory, the file read in before the guest runs.
    Eager,
    /// Anonymous memory, pages copied in on first touch by a userfaultfd handler.
    Uffd,
}

impl RestoreMode {
    /// The mode's command-line name.
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreMode::Mmap => "mmap",
            RestoreMode::Eager => "eager",
            RestoreMode::Uffd => "uffd",
        }
    }
}

impl std::fmt::Display for RestoreMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RestoreMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mmap" => Ok(RestoreMode::Mmap),
            "eager" => Ok(RestoreMode::Eager),
            "uffd" => Ok(RestoreMode::Uffd),
            _ => Err(Error::UnknownMode(s.to_string())),
        }
    }
}

/// Restored guest memory. Keep it alive as long as the VM (the uffd handler thread, if
/// any, stops when it is dropped).
pub struct Restored {
    /// The guest memory, ready to be registered with KVM (`memory::register`).
    pub mem: GuestMemoryMmap,
    /// The userfaultfd handler of [`RestoreMode::Uffd`].
    pub uffd: Option<uffd::Handler>,
}

/// Maps the memory file at `path` as `regions` in `mode`. `hugepages` asks for
/// transparent huge pages (`MADV_HUGEPAGE`) on eager memory before the file is read in:
/// here it cut an eager restore of fully used memory by 2–3× (one fault per 2 MiB) but
/// tripled it for a mostly empty one (each 4 KiB of data costs a zeroed 2 MiB page). The
/// lazy modes ignore it (a private file mapping takes no anonymous huge pages; userfaultfd
/// fills 4 KiB pages).
pub fn restore(
    path: &Path,
    regions: &[RegionEntry],
    mode: RestoreMode,
    hugepages: bool,
) -> Result<Restored, Error> {
    let file = File::open(path).map_err(io_err("open", path))?;
    let have = file.metadata().map_err(io_err("stat", path))?.len();
    let need = regions.iter().map(RegionEntry::file_end).max().unwrap_or(0);
    if have < need {
        return Err(Error::Short {
            path: path.display().to_string(),
            have,
            need,
        });
    }
    match mode {
        RestoreMode::Mmap => Ok(Restored {
            mem: map_private(&file, regions, path)?,
            uffd: None,
        }),
        RestoreMode::Eager => {
            let mem = anonymous(regions, path, 0)?;
            if hugepages {
                advise_hugepages(&mem, path)?;
            }
            read_data(&file, regions, &mem, path)?;
            Ok(Restored { mem, uffd: None })
        }
        RestoreMode::Uffd => {
            let mem = anonymous(regions, path, 0)?;
            let handler = uffd::Handler::start(file, regions, &mem)?;
            Ok(Restored {
                mem,
                uffd: Some(handler),
            })
        }
    }
}

fn map_err(r: &RegionEntry, path: &Path, err: impl ToString) -> Error {
    Error::Map {
        addr: r.guest_addr,
        len: r.size,
        path: path.display().to_string(),
        err: err.to_string(),
    }
}

fn collect(regions: Vec<GuestRegionMmap>, path: &Path) -> Result<GuestMemoryMmap, Error> {
    GuestMemoryMmap::from_regions(regions).map_err(|e| Error::Map {
        addr: 0,
        len: 0,
        path: path.display().to_string(),
        err: e.to_string(),
    })
}

fn map_private(
    file: &File,
    regions: &[RegionEntry],
    path: &Path,
) -> Result<GuestMemoryMmap, Error> {
    let mut mapped = Vec::with_capacity(regions.len());
    for r in regions {
        let dup = file.try_clone().map_err(io_err("duplicate", path))?;
        let region = MmapRegion::build(
            Some(FileOffset::new(dup, r.file_offset)),
            r.size as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_NORESERVE,
        )
        .map_err(|e| map_err(r, path, e))?;
        mapped.push(
            GuestRegionMmap::new(region, GuestAddress(r.guest_addr))
                .ok_or_else(|| map_err(r, path, "region overflows the address space"))?,
        );
    }
    collect(mapped, path)
}

/// Anonymous private memory for `regions`; `extra` adds mmap flags (`MAP_POPULATE`).
fn anonymous(regions: &[RegionEntry], path: &Path, extra: i32) -> Result<GuestMemoryMmap, Error> {
    let mut mapped = Vec::with_capacity(regions.len());
    for r in regions {
        let region = MmapRegion::build(
            None,
            r.size as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_ANONYMOUS | libc::MAP_PRIVATE | libc::MAP_NORESERVE | extra,
        )
        .map_err(|e| map_err(r, path, e))?;
        mapped.push(
            GuestRegionMmap::new(region, GuestAddress(r.guest_addr))
                .ok_or_else(|| map_err(r, path, "region overflows the address space"))?,
        );
    }
    collect(mapped, path)
}

fn advise_hugepages(mem: &GuestMemoryMmap, path: &Path) -> Result<(), Error> {
    for (host, len) in host_ranges(mem) {
        // SAFETY: [host, host + len) is a live anonymous mapping owned by `mem`;
        // MADV_HUGEPAGE changes only how the kernel backs it, never its contents.
        let rc = unsafe { libc::madvise(host as *mut libc::c_void, len, libc::MADV_HUGEPAGE) };
        if rc != 0 {
            return Err(Error::HugePages {
                path: path.display().to_string(),
                err: std::io::Error::last_os_error(),
            });
        }
    }
    Ok(())
}

/// Reads the data extents of each region's file range into `mem`, skipping holes.
fn read_data(
    file: &File,
    regions: &[RegionEntry],
    mem: &GuestMemoryMmap,
    path: &Path,
) -> Result<(), Error> {
    for r in regions {
        for (start, end) in data_extents(file, r.file_offset, r.file_end()) {
            let mut f = file;
            f.seek(SeekFrom::Start(start))
                .map_err(io_err("seek in", path))?;
            let addr = GuestAddress(r.guest_addr + (start - r.file_offset));
            mem.read_exact_volatile_from(addr, &mut f, (end - start) as usize)
                .map_err(|e| copy_err(r, "from", path, e))?;
        }
    }
    Ok(())
}

/// The data (non-hole) extents of `file` within [start, end). A file system without
/// SEEK_DATA gives the whole range.
pub fn data_extents(file: &File, start: u64, end: u64) -> Vec<(u64, u64)> {
    let fd = file.as_raw_fd();
    let seek = |off: u64, whence| -> Option<u64> {
        // SAFETY: lseek on a descriptor `file` owns; it moves only the file position.
        let r = unsafe { libc::lseek(fd, off as libc::off_t, whence) };
        (r >= 0).then_some(r as u64)
    };
    let mut out = Vec::new();
    let mut pos = start;
    while pos < end {
        let Some(data) = seek(pos, libc::SEEK_DATA) else {
            // ENXIO: no data after `pos`; EINVAL: SEEK_DATA unsupported (only before any
            // extent was found, else the file changed under us: read what is left).
            if out.is_empty() && std::io::Error::last_os_error().raw_os_error() != Some(libc::ENXIO)
            {
                out.push((pos, end));
            }
            break;
        };
        if data >= end {
            break;
        }
        let hole = seek(data, libc::SEEK_HOLE).unwrap_or(end).min(end);
        out.push((data, hole));
        pos = hole;
    }
    out
}

/// Host address ranges (start, length) of `mem`'s regions, in region order.
pub fn host_ranges(mem: &GuestMemoryMmap) -> Vec<(u64, usize)> {
    mem.iter()
        .filter_map(|r| {
            let host = mem.get_host_address(r.start_addr()).ok()? as u64;
            Some((host, r.len() as usize))
        })
        .collect()
}
