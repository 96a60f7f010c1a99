//! Step 2: guest RAM. One anonymous mapping per region, split around the
//! 32-bit MMIO gap (see `layout`), registered with KVM as memory slots.

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use vm_memory::{Address, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

use crate::layout::{MMIO_GAP_END, MMIO_GAP_START};

/// The smallest guest the boot layout fits in (page tables, zero page,
/// command line and a kernel at 1 MiB).
pub const MIN_MEM_MIB: u64 = 2;

/// Errors of sizing, mapping and registering guest RAM.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--mem 0` or below the minimum.
    #[error("guest memory of {0} MiB is too small; use --mem {MIN_MEM_MIB} or more")]
    TooSmall(u64),
    /// More memory asked for than the host has.
    #[error("guest memory of {asked_mib} MiB is more than this host's {host_mib} MiB (MemTotal in /proc/meminfo); use a smaller --mem")]
    MoreThanHost {
        /// Asked for, MiB.
        asked_mib: u64,
        /// Host MemTotal, MiB.
        host_mib: u64,
    },
    /// /proc/meminfo could not be read.
    #[error("cannot read MemTotal from /proc/meminfo: {0}")]
    MemInfo(String),
    /// mmap of guest RAM failed.
    #[error("cannot map {mib} MiB of guest memory: {err} (is the host short of memory or address space?)")]
    Map {
        /// Size asked for, MiB.
        mib: u64,
        /// What vm-memory said.
        err: String,
    },
    /// madvise(MADV_HUGEPAGE) failed.
    #[error("cannot ask for huge pages on guest memory (madvise MADV_HUGEPAGE): {0} (is transparent huge page support built into the host kernel? else use --hugepages off)")]
    HugePages(std::io::Error),
    /// KVM_SET_USER_MEMORY_REGION failed.
    #[error("cannot register guest memory slot {slot} with KVM: {err}")]
    Register {
        /// Slot number.
        slot: u32,
        /// The ioctl error.
        err: kvm_ioctls::Error,
    },
}

/// Reads MemTotal (in MiB) out of the text of /proc/meminfo.
pub fn parse_mem_total_mib(meminfo: &str) -> Option<u64> {
    crate::procstat::field(meminfo, "MemTotal:").map(|kib| kib / 1024)
}

/// Checks `mib` against the minimum and the host's MemTotal.
pub fn check_size(mib: u64) -> Result<(), Error> {
    if mib < MIN_MEM_MIB {
        return Err(Error::TooSmall(mib));
    }
    let meminfo =
        std::fs::read_to_string("/proc/meminfo").map_err(|e| Error::MemInfo(e.to_string()))?;
    let host_mib = parse_mem_total_mib(&meminfo)
        .ok_or_else(|| Error::MemInfo("no MemTotal line".to_string()))?;
    if mib > host_mib {
        return Err(Error::MoreThanHost {
            asked_mib: mib,
            host_mib,
        });
    }
    Ok(())
}

/// The RAM ranges (start, length) of a guest of `mib` MiB: everything below
/// the MMIO gap first, the rest from 4 GiB up.
pub fn ranges(mib: u64) -> Vec<(GuestAddress, usize)> {
    let size = mib << 20;
    if size <= MMIO_GAP_START {
        vec![(GuestAddress(0), size as usize)]
    } else {
        vec![
            (GuestAddress(0), MMIO_GAP_START as usize),
            (GuestAddress(MMIO_GAP_END), (size - MMIO_GAP_START) as usize),
        ]
    }
}

/// Maps guest RAM of `mib` MiB; callers check the size with [`check_size`]
/// first (before they open anything).
pub fn create(mib: u64) -> Result<GuestMemoryMmap, Error> {
    GuestMemoryMmap::from_ranges(&ranges(mib)).map_err(|e| Error::Map {
        mib,
        err: e.to_string(),
    })
}

/// Asks for transparent huge pages on every region of `mem` (`MADV_HUGEPAGE`): with THP
/// `madvise` (this lab's hosts) a touched, 2 MiB-aligned 2 MiB of guest RAM then gets one huge
/// page, and KVM can map it with one large page-table entry. The anonymous mappings of a whole
/// number of 2 MiB are 2 MiB-aligned by the host kernel (since Linux 6.7), so guest-physical and
/// host addresses share that alignment.
pub fn advise_hugepages(mem: &GuestMemoryMmap) -> Result<(), Error> {
    for (start, end) in host_ranges(mem) {
        let len = (end - start) as usize;
        // SAFETY: [start, end) is a live anonymous mapping owned by `mem`; MADV_HUGEPAGE
        // changes only how the kernel backs it, never its contents or validity.
        let rc = unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_HUGEPAGE) };
        if rc != 0 {
            return Err(Error::HugePages(std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Host virtual address ranges (start, end) of the guest RAM mappings.
pub fn host_ranges(mem: &GuestMemoryMmap) -> Vec<(u64, u64)> {
    mem.iter()
        .filter_map(|r| {
            let host = mem.get_host_address(r.start_addr()).ok()? as u64;
            Some((host, host + r.len()))
        })
        .collect()
}

/// Registers every region of `mem` as a KVM memory slot.
pub fn register(vm: &VmFd, mem: &GuestMemoryMmap) -> Result<(), Error> {
    for (slot, region) in mem.iter().enumerate() {
        let slot = slot as u32;
        let host = mem
            .get_host_address(region.start_addr())
            .map_err(|e| Error::Map {
                mib: region.len() >> 20,
                err: e.to_string(),
            })?;
        let kvm_region = kvm_userspace_memory_region {
            slot,
            flags: 0,
            guest_phys_addr: region.start_addr().raw_value(),
            memory_size: region.len(),
            userspace_addr: host as u64,
        };
        // SAFETY: the region is a live mapping of exactly `memory_size` bytes
        // owned by `mem`, which the caller keeps alive as long as the VM.
        unsafe { vm.set_user_memory_region(kvm_region) }
            .map_err(|err| Error::Register { slot, err })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_parsing() {
        assert_eq!(
            parse_mem_total_mib("MemTotal:       24684096 kB\nMemFree: 1 kB\n"),
            Some(24105)
        );
        assert_eq!(parse_mem_total_mib("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn ranges_split_around_the_gap() {
        assert_eq!(ranges(128), vec![(GuestAddress(0), 128 << 20)]);
        let r = ranges(4096);
        assert_eq!(r[0], (GuestAddress(0), MMIO_GAP_START as usize));
        assert_eq!(
            r[1],
            (
                GuestAddress(MMIO_GAP_END),
                (4096 << 20) - MMIO_GAP_START as usize
            )
        );
    }

    #[test]
    fn sizes_are_checked() {
        assert!(matches!(check_size(0), Err(Error::TooSmall(0))));
        assert!(matches!(
            check_size(u64::MAX >> 21),
            Err(Error::MoreThanHost { .. })
        ));
        assert!(check_size(16).is_ok());
    }
}
