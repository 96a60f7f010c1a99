//! What the loader tells the guest: the command line and the RAM map, from Linux `boot_params`
//! (64-bit boot protocol) or PVH `hvm_start_info`. Every pointer is checked against the mapped
//! range before it is read, so a bad loader gives an error, not a fault.

use core::fmt;

/// The guest-physical memory the guest's RAM use is limited to (boot information, scratch).
pub const MAPPED_END: u64 = 1 << 30;
/// The shim identity-maps this much guest-physical memory (`shim.s`, page tables): the RAM the
/// guest uses and, above it, the space `vclab.fault=mmio` probes.
pub const IDENTITY_END: u64 = 4 << 30;

/// Longest command line read, in bytes.
const MAX_CMDLINE: usize = 4096;

/// Boot protocols, as `shim.s` passes them to `ring3_main`.
pub const PROTOCOL_LINUX: u64 = 0;
/// PVH: `info` is an `hvm_start_info`.
pub const PROTOCOL_PVH: u64 = 1;

// Linux boot_params (Documentation/arch/x86/zero-page.rst).
const BP_EXT_CMD_LINE_PTR: u64 = 0x0c8;
const BP_E820_ENTRIES: u64 = 0x1e8;
const BP_CMD_LINE_PTR: u64 = 0x228;
const BP_E820_TABLE: u64 = 0x2d0;
const BP_E820_MAX: u64 = 128;
const E820_ENTRY_LEN: u64 = 20;

// PVH hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h).
const PVH_MAGIC: u32 = 0x336e_c578;
const PVH_VERSION: u64 = 4;
const PVH_CMDLINE_PADDR: u64 = 24;
const PVH_MEMMAP_PADDR: u64 = 40;
const PVH_MEMMAP_ENTRIES: u64 = 48;
const PVH_MEMMAP_ENTRY_LEN: u64 = 24;
const PVH_MEMMAP_MAX: u64 = 128;

/// e820 / PVH memory map type of usable RAM.
const RAM_TYPE: u32 = 1;

/// Why the boot information could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    /// The shim passed an unknown protocol number (a shim bug).
    Protocol(u64),
    /// The boot information pointer is null or outside the mapped first GiB.
    InfoPointer(u64),
    /// The PVH start info does not carry the PVH magic.
    PvhMagic(u32),
}

impl fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BootInfoError::Protocol(p) => write!(f, "unknown boot protocol {p} from the shim"),
            BootInfoError::InfoPointer(p) => write!(
                f,
                "boot information pointer {p:#x} is outside guest RAM's first GiB: check the VMM's boot setup"
            ),
            BootInfoError::PvhMagic(m) => write!(
                f,
                "PVH start info magic is {m:#x}, not {PVH_MAGIC:#x}: the loader does not follow the PVH boot ABI"
            ),
        }
    }
}

/// The boot information the guest uses.
#[derive(Clone, Copy, Debug)]
pub struct BootInfo {
    /// The command line (empty when the loader gave none); not NUL-terminated.
    pub cmdline: &'static [u8],
    /// Usable RAM regions as (start, end) pairs; only the first `ram_len` are valid.
    ram: [(u64, u64); 16],
    ram_len: usize,
}

impl BootInfo {
    /// Reads the boot information the shim was entered with.
    pub fn read(info: u64, protocol: u64) -> Result<BootInfo, BootInfoError> {
        if info == 0 || read_u8(info).is_none() {
            return Err(BootInfoError::InfoPointer(info));
        }
        let mut out = BootInfo {
            cmdline: &[],
            ram: [(0, 0); 16],
            ram_len: 0,
        };
        match protocol {
            PROTOCOL_LINUX => {
                let low = u64::from(read_u32(info + BP_CMD_LINE_PTR).unwrap_or(0));
                let high = u64::from(read_u32(info + BP_EXT_CMD_LINE_PTR).unwrap_or(0));
                out.cmdline = c_string(high << 32 | low);
                let n = u64::from(read_u8(info + BP_E820_ENTRIES).unwrap_or(0)).min(BP_E820_MAX);
                for i in 0..n {
                    let entry = info + BP_E820_TABLE + i * E820_ENTRY_LEN;
                    out.add_region(entry);
                }
            }
            PROTOCOL_PVH => {
                let magic = read_u32(info).unwrap_or(0);
                if magic != PVH_MAGIC {
                    return Err(BootInfoError::PvhMagic(magic));
                }
                out.cmdline = c_string(read_u64(info + PVH_CMDLINE_PADDR).unwrap_or(0));
                if read_u32(info + PVH_VERSION).unwrap_or(0) >= 1 {
                    let map = read_u64(info + PVH_MEMMAP_PADDR).unwrap_or(0);
                    let n = u64::from(read_u32(info + PVH_MEMMAP_ENTRIES).unwrap_or(0));
                    for i in 0..n.min(PVH_MEMMAP_MAX) {
                        out.add_region(map + i * PVH_MEMMAP_ENTRY_LEN);
                    }
                }
            }
            p => return Err(BootInfoError::Protocol(p)),
        }
        Ok(out)
    }

    /// Adds the map entry at `entry` (addr u64, size u64, type u32: the e820 and PVH layouts
    /// agree on these fields) when it is usable RAM.
    fn add_region(&mut self, entry: u64) {
        let (Some(addr), Some(size), Some(kind)) =
            (read_u64(entry), read_u64(entry + 8), read_u32(entry + 16))
        else {
            return;
        };
        if kind != RAM_TYPE {
            return;
        }
        if let Some(slot) = self.ram.get_mut(self.ram_len) {
            *slot = (addr, addr.saturating_add(size));
            self.ram_len += 1;
        }
    }

    /// The end of the highest usable RAM region that starts below `limit`, capped at `limit`.
    pub fn ram_top_below(&self, limit: u64) -> u64 {
        self.ram
            .get(..self.ram_len)
            .unwrap_or_default()
            .iter()
            .filter(|&&(start, _)| start < limit)
            .map(|&(_, end)| end.min(limit))
            .max()
            .unwrap_or(0)
    }

    /// The end of the usable RAM region that holds `addr`, capped at [`MAPPED_END`]; `None` when
    /// `addr` is not in usable RAM.
    pub fn ram_end_from(&self, addr: u64) -> Option<u64> {
        self.ram
            .get(..self.ram_len)
            .unwrap_or_default()
            .iter()
            .find(|&&(start, end)| start <= addr && addr < end)
            .map(|&(_, end)| end.min(MAPPED_END))
    }
}

/// Reads a `T` at guest-physical (= virtual) `addr` when it lies inside the mapped range.
fn read<T: Copy>(addr: u64) -> Option<T> {
    let end = addr.checked_add(core::mem::size_of::<T>() as u64)?;
    if addr == 0 || end > MAPPED_END {
        return None;
    }
    // SAFETY: [addr, end) is inside the shim's identity map of the first GiB, which is readable
    // at CPL 3; the value is plain old data and may be unaligned.
    Some(unsafe { (addr as *const T).read_unaligned() })
}

fn read_u8(addr: u64) -> Option<u8> {
    read(addr)
}

fn read_u32(addr: u64) -> Option<u32> {
    read(addr)
}

fn read_u64(addr: u64) -> Option<u64> {
    read(addr)
}

/// The NUL-terminated string at `addr` (at most [`MAX_CMDLINE`] bytes, inside the mapped range).
fn c_string(addr: u64) -> &'static [u8] {
    if addr == 0 || addr >= MAPPED_END {
        return &[];
    }
    let max = (MAPPED_END - addr).min(MAX_CMDLINE as u64) as usize;
    // SAFETY: [addr, addr + max) is inside the identity-mapped first GiB, readable at CPL 3, and
    // nothing in the guest writes the loader's command line.
    let bytes = unsafe { core::slice::from_raw_parts(addr as *const u8, max) };
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(max);
    bytes.get(..len).unwrap_or_default()
}
