//! Step 3: the kernel image (ELF vmlinux or bzImage, through linux-loader),
//! the initrd, the command line and the zero page (`boot_params`).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use linux_loader::elf::{Elf64_Ehdr, Elf64_Nhdr, Elf64_Phdr, PT_LOAD, PT_NOTE};
use linux_loader::loader::bootparam::{boot_e820_entry, boot_params, setup_header};
use linux_loader::loader::{BzImage, Elf, KernelLoader};
use vm_memory::{Address, ByteValued, Bytes, GuestAddress, GuestMemoryMmap};

use crate::layout;

/// The setup header's magic "HdrS" at file offset 0x202.
const HDRS_MAGIC: u32 = 0x5372_6448;
/// Offset of `struct setup_header` in a bzImage (and in the zero page).
const SETUP_HEADER_OFFSET: usize = 0x1f1;
/// `type_of_loader` value for a loader without an assigned id.
const LOADER_TYPE_UNDEFINED: u8 = 0xff;
/// The boot sector signature the kernel checks in `boot_flag`.
const BOOT_FLAG: u16 = 0xaa55;
/// e820 type of usable RAM.
const E820_RAM: u32 = 1;
/// The 64-bit entry of a bzImage sits 0x200 bytes after its 32-bit entry
/// (boot protocol, "64-bit BOOT PROTOCOL").
const BZIMAGE_64BIT_ENTRY_OFFSET: u64 = 0x200;
/// Page size used to align the initrd.
const PAGE_SIZE: u64 = 0x1000;
/// ELF note type of the Linux build-salt note (include/linux/build-salt.h);
/// any note named "Linux" marks a Linux kernel.
const LINUX_NOTE_NAME: &[u8] = b"Linux";
/// Size of an ELF note header (`n_namesz`, `n_descsz`, `n_type`).
const NHDR_SIZE: usize = std::mem::size_of::<Elf64_Nhdr>();
/// Alignment of a note's name and descriptor.
const NOTE_ALIGN: usize = 4;
/// Program headers looked at, at most (a vmlinux has 5).
const MAX_PHDRS: u16 = 64;
/// Bytes of one notes segment read, at most.
const MAX_NOTES_BYTES: u64 = 64 * 1024;

/// Errors of loading the kernel, initrd, command line and zero page.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kernel file could not be opened or read.
    #[error("cannot read kernel {path}: {err} (check the path given to --kernel)")]
    ReadKernel {
        /// The kernel path.
        path: PathBuf,
        /// The I/O error.
        err: std::io::Error,
    },
    /// Neither ELF nor bzImage.
    #[error("kernel {0} is neither an ELF vmlinux nor a bzImage; pass a kernel image")]
    NotAKernel(PathBuf),
    /// linux-loader refused the image or it does not fit.
    #[error("cannot load kernel {path} into {mem_mib} MiB of guest memory: {err} (is it an x86-64 kernel, and is --mem large enough?)")]
    Load {
        /// The kernel path.
        path: PathBuf,
        /// Guest memory size.
        mem_mib: u64,
        /// What linux-loader said.
        err: linux_loader::loader::Error,
    },
    /// The kernel ends beyond low memory.
    #[error("kernel {path} ends at {end:#x}, beyond the {mem_mib} MiB of guest memory; {}", more_mem_hint(*end))]
    KernelTooBig {
        /// The kernel path.
        path: PathBuf,
        /// End address.
        end: u64,
        /// Guest memory size.
        mem_mib: u64,
    },
    /// A directory, FIFO, device or socket where a kernel or initrd file is expected.
    #[error("cannot read {what} {path}: it is {kind}, not a file; give {flag} an image file")]
    NotAFile {
        /// "kernel" or "initrd".
        what: &'static str,
        /// The option naming it.
        flag: &'static str,
        /// The path.
        path: PathBuf,
        /// What it is instead ("a directory", "a FIFO"...).
        kind: &'static str,
    },
    /// The initrd could not be read.
    #[error("cannot read initrd {path}: {err} (check the path given to --initrd)")]
    ReadInitrd {
        /// The initrd path.
        path: PathBuf,
        /// The I/O error.
        err: std::io::Error,
    },
    /// The initrd does not fit.
    #[error("initrd {path} ({size} bytes) does not fit in guest memory between the kernel end ({kernel_end:#x}) and {limit:#x}; use a larger --mem or a smaller initrd")]
    InitrdTooBig {
        /// The initrd path.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// End of the kernel.
        kernel_end: u64,
        /// Highest end address allowed.
        limit: u64,
    },
    /// Guest memory write failed (a layout bug or memory too small).
    #[error("cannot write the {what} into guest memory at {addr:#x}; use a larger --mem")]
    Write {
        /// What was written.
        what: &'static str,
        /// Where.
        addr: u64,
    },
}

/// What to do about a kernel that ends at `end`: a larger `--mem`, unless it does not fit
/// below the MMIO gap at all.
fn more_mem_hint(end: u64) -> String {
    if end > layout::MMIO_GAP_START {
        format!(
            "no --mem helps: the kernel must end below {:#x} (the MMIO gap); give a smaller kernel",
            layout::MMIO_GAP_START
        )
    } else {
        format!("use --mem {} or more", end.div_ceil(1 << 20))
    }
}

/// The two kernel formats the VMM boots (named in the report; defined in
/// `vclab-contract`).
pub use vclab_contract::KernelFormat;

/// What the VMM learns about a kernel file before loading it.
#[derive(Debug, Clone)]
pub struct KernelInfo {
    /// ELF or bzImage.
    pub format: KernelFormat,
    /// A Linux kernel (a bzImage, or an ELF with a "Linux" note).
    pub is_linux: bool,
    /// The kernel version string of a bzImage (setup header `kernel_version`).
    pub version: Option<String>,
    /// The bzImage setup header.
    pub setup_header: Option<setup_header>,
}

impl KernelInfo {
    /// Room for the command line including its NUL (`cmdline_size` of
    /// boot protocol ≥ 2.06, else 256), capped at the VMM's own area.
    pub fn cmdline_size(&self) -> usize {
        match self.setup_header {
            Some(h) if h.version >= 0x0206 => {
                (h.cmdline_size as usize).min(layout::CMDLINE_MAX_SIZE)
            }
            Some(_) => 256,
            None => layout::CMDLINE_MAX_SIZE,
        }
    }

    /// Highest address the initrd may occupy.
    pub fn initrd_addr_max(&self) -> u64 {
        match self.setup_header {
            Some(h) if h.version >= 0x0203 && h.initrd_addr_max != 0 => {
                u64::from(h.initrd_addr_max)
            }
            Some(_) => 0x37ff_ffff,
            None => layout::INITRD_ADDR_MAX_DEFAULT,
        }
    }
}

/// Where the kernel was put.
#[derive(Debug, Clone, Copy)]
pub struct Loaded {
    /// The 64-bit entry point (RIP of the boot vCPU).
    pub entry: GuestAddress,
    /// First byte after the kernel image.
    pub kernel_end: u64,
}

/// Parses a bzImage setup header out of the first bytes of a file. Returns
/// `None` when the "HdrS" magic is missing.
pub fn parse_setup_header(head: &[u8]) -> Option<setup_header> {
    let size = std::mem::size_of::<setup_header>();
    let bytes = head.get(SETUP_HEADER_OFFSET..SETUP_HEADER_OFFSET + size)?;
    let mut hdr = setup_header::default();
    // setup_header is plain old data (linux-loader implements ByteValued).
    hdr.as_mut_slice().copy_from_slice(bytes);
    (hdr.header == HDRS_MAGIC).then_some(hdr)
}

/// Reads the NUL-terminated kernel version string a bzImage header points to
/// (`kernel_version` + 0x200 in the file).
pub fn bzimage_version(file: &mut File, hdr: &setup_header) -> Option<String> {
    let ptr = hdr.kernel_version;
    if ptr == 0 {
        return None;
    }
    file.seek(SeekFrom::Start(u64::from(ptr) + 0x200)).ok()?;
    let mut buf = [0u8; 256];
    let n = file.read(&mut buf).ok()?;
    let end = buf[..n].iter().position(|&b| b == 0).unwrap_or(n);
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// True when the bytes of an ELF `PT_NOTE` segment hold a note named "Linux". Each note is an
/// `Elf64_Nhdr`, then the name and the descriptor, each padded to 4 bytes (the ELF gABI,
/// "Note Section"; x86-64 notes use 4-byte alignment, as linux-loader's own PVH-note walk does).
pub fn notes_name_linux(notes: &[u8]) -> bool {
    let mut off = 0usize;
    while let Some(nhdr) = notes.get(off..off + NHDR_SIZE).map(pod_from::<Elf64_Nhdr>) {
        let name_start = off + NHDR_SIZE;
        let Some(name) = notes.get(name_start..name_start + nhdr.n_namesz as usize) else {
            return false;
        };
        if name.strip_suffix(&[0]).unwrap_or(name) == LINUX_NOTE_NAME {
            return true;
        }
        off = name_start
            + (nhdr.n_namesz as usize).next_multiple_of(NOTE_ALIGN)
            + (nhdr.n_descsz as usize).next_multiple_of(NOTE_ALIGN);
    }
    false
}

/// A plain-old-data structure copied out of exactly `size_of::<T>()` bytes (any alignment).
fn pod_from<T: ByteValued + Default>(bytes: &[u8]) -> T {
    let mut value = T::default();
    value.as_mut_slice().copy_from_slice(bytes);
    value
}

/// Reads a plain-old-data ELF structure at `offset` of `file`.
fn read_pod<T: ByteValued + Default>(file: &mut File, offset: u64) -> Option<T> {
    let mut value = T::default();
    file.seek(SeekFrom::Start(offset)).ok()?;
    file.read_exact(value.as_mut_slice()).ok()?;
    Some(value)
}

/// Scans the `PT_NOTE` segments of a 64-bit little-endian ELF for a Linux note.
fn elf_has_linux_note(file: &mut File) -> bool {
    let Some(ehdr) = read_pod::<Elf64_Ehdr>(file, 0) else {
        return false;
    };
    if usize::from(ehdr.e_phentsize) != std::mem::size_of::<Elf64_Phdr>() {
        return false;
    }
    for i in 0..u64::from(ehdr.e_phnum.min(MAX_PHDRS)) {
        let at = ehdr.e_phoff + i * u64::from(ehdr.e_phentsize);
        let Some(phdr) = read_pod::<Elf64_Phdr>(file, at) else {
            return false;
        };
        if phdr.p_type != PT_NOTE {
            continue;
        }
        let mut notes = vec![0u8; phdr.p_filesz.min(MAX_NOTES_BYTES) as usize];
        if file.seek(SeekFrom::Start(phdr.p_offset)).is_ok()
            && file.read_exact(&mut notes).is_ok()
            && notes_name_linux(&notes)
        {
            return true;
        }
    }
    false
}

/// What a file type is called in an error, when it is not a regular file.
fn not_a_file(kind: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_socket() {
        Some("a socket")
    } else if kind.is_block_device() || kind.is_char_device() {
        Some("a device")
    } else {
        Some("not a regular file")
    }
}

/// Opens an image file for reading: non-blocking, so that a FIFO cannot hang the open (a
/// regular file ignores the flag), then refuses anything but a regular file.
fn open_image(
    path: &Path,
    what: &'static str,
    flag: &'static str,
    read_err: impl Fn(std::io::Error) -> Error,
) -> Result<File, Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(&read_err)?;
    let kind = file.metadata().map_err(&read_err)?.file_type();
    match not_a_file(kind) {
        None => Ok(file),
        Some(kind) => Err(Error::NotAFile {
            what,
            flag,
            path: path.to_path_buf(),
            kind,
        }),
    }
}

/// Opens the kernel and tells its format; errors clearly on anything else.
pub fn probe(path: &Path) -> Result<(File, KernelInfo), Error> {
    let read_err = |err| Error::ReadKernel {
        path: path.to_path_buf(),
        err,
    };
    let mut file = open_image(path, "kernel", "--kernel", read_err)?;
    let mut head = Vec::with_capacity(1024);
    (&mut file)
        .take(1024)
        .read_to_end(&mut head)
        .map_err(read_err)?;
    let info = if head.starts_with(b"\x7fELF") {
        let is_linux = elf_has_linux_note(&mut file);
        KernelInfo {
            format: KernelFormat::Elf,
            is_linux,
            version: None,
            setup_header: None,
        }
    } else if let Some(hdr) = parse_setup_header(&head) {
        KernelInfo {
            format: KernelFormat::BzImage,
            is_linux: true,
            version: bzimage_version(&mut file, &hdr),
            setup_header: Some(hdr),
        }
    } else {
        return Err(Error::NotAKernel(path.to_path_buf()));
    };
    Ok((file, info))
}

/// The end of the guest memory a kernel image occupies once loaded, read from the file
/// before loading it: an ELF's highest `PT_LOAD` end (`p_paddr + p_memsz`, as linux-loader
/// loads it), a bzImage's protected-mode payload at `HIMEM_START`. `None` when the headers
/// cannot tell (linux-loader then reports what is wrong).
fn image_end(file: &mut File, info: &KernelInfo) -> Option<u64> {
    match (info.format, info.setup_header) {
        (KernelFormat::Elf, _) => {
            let ehdr = read_pod::<Elf64_Ehdr>(file, 0)?;
            let mut end = None;
            for i in 0..u64::from(ehdr.e_phnum.min(MAX_PHDRS)) {
                let at = ehdr.e_phoff.checked_add(i * u64::from(ehdr.e_phentsize))?;
                let phdr = read_pod::<Elf64_Phdr>(file, at)?;
                if phdr.p_type == PT_LOAD {
                    let seg_end = phdr.p_paddr.saturating_add(phdr.p_memsz);
                    end = Some(end.map_or(seg_end, |e: u64| e.max(seg_end)));
                }
            }
            end
        }
        (KernelFormat::BzImage, Some(hdr)) => {
            let setup_sects = if hdr.setup_sects == 0 {
                4
            } else {
                u64::from(hdr.setup_sects)
            };
            let payload = file
                .metadata()
                .ok()?
                .len()
                .checked_sub((setup_sects + 1) * 512)?;
            Some(layout::HIMEM_START.saturating_add(payload))
        }
        (KernelFormat::BzImage, None) => None,
    }
}

/// Loads the kernel image into guest memory.
pub fn load_kernel(
    mem: &GuestMemoryMmap,
    path: &Path,
    file: &mut File,
    info: &KernelInfo,
    mem_mib: u64,
) -> Result<Loaded, Error> {
    let load_err = |err| Error::Load {
        path: path.to_path_buf(),
        mem_mib,
        err,
    };
    let low_end = low_mem_end(mem_mib);
    // Said before loading: linux-loader only reports "unable to read kernel image" when a
    // segment falls outside guest memory.
    match image_end(file, info) {
        Some(end) if end > low_end => {
            return Err(Error::KernelTooBig {
                path: path.to_path_buf(),
                end,
                mem_mib,
            })
        }
        _ => {}
    }
    let himem = Some(GuestAddress(layout::HIMEM_START));
    let result = match info.format {
        KernelFormat::Elf => Elf::load(mem, None, file, himem).map_err(load_err)?,
        KernelFormat::BzImage => BzImage::load(mem, None, file, himem).map_err(load_err)?,
    };
    let entry = match info.format {
        KernelFormat::Elf => result.kernel_load,
        KernelFormat::BzImage => result.kernel_load.unchecked_add(BZIMAGE_64BIT_ENTRY_OFFSET),
    };
    if result.kernel_end > low_end {
        return Err(Error::KernelTooBig {
            path: path.to_path_buf(),
            end: result.kernel_end,
            mem_mib,
        });
    }
    Ok(Loaded {
        entry,
        kernel_end: result.kernel_end,
    })
}

/// End of RAM below the MMIO gap.
pub fn low_mem_end(mem_mib: u64) -> u64 {
    (mem_mib << 20).min(layout::MMIO_GAP_START)
}

/// The initrd address: the highest page-aligned address such that the
/// initrd ends at or below min(low memory end, initrd_addr_max + 1) and
/// starts at or above the kernel end. `None` when it does not fit.
pub fn initrd_address(low_end: u64, addr_max: u64, kernel_end: u64, size: u64) -> Option<u64> {
    let limit = low_end.min(addr_max.saturating_add(1));
    let start = limit.checked_sub(size)? & !(PAGE_SIZE - 1);
    (start >= kernel_end.next_multiple_of(PAGE_SIZE)).then_some(start)
}

/// Opens the initrd: a regular file this process can read.
pub fn open_initrd(path: &Path) -> Result<File, Error> {
    let read_err = |err| Error::ReadInitrd {
        path: path.to_path_buf(),
        err,
    };
    open_image(path, "initrd", "--initrd", read_err)
}

/// Loads the initrd; returns (address, size).
pub fn load_initrd(
    mem: &GuestMemoryMmap,
    path: &Path,
    info: &KernelInfo,
    kernel_end: u64,
    mem_mib: u64,
) -> Result<(u64, u64), Error> {
    let read_err = |err| Error::ReadInitrd {
        path: path.to_path_buf(),
        err,
    };
    let mut file = open_initrd(path)?;
    let size = file.metadata().map_err(read_err)?.len();
    let low_end = low_mem_end(mem_mib);
    let addr_max = info.initrd_addr_max();
    let addr =
        initrd_address(low_end, addr_max, kernel_end, size).ok_or_else(|| Error::InitrdTooBig {
            path: path.to_path_buf(),
            size,
            kernel_end,
            limit: low_end.min(addr_max.saturating_add(1)),
        })?;
    mem.read_exact_volatile_from(GuestAddress(addr), &mut file, size as usize)
        .map_err(|e| read_err(std::io::Error::other(e.to_string())))?;
    Ok((addr, size))
}

/// Writes the NUL-terminated command line at `CMDLINE_START`.
pub fn write_cmdline(mem: &GuestMemoryMmap, cmdline: &str) -> Result<(), Error> {
    let mut bytes = cmdline.as_bytes().to_vec();
    bytes.push(0);
    mem.write_slice(&bytes, GuestAddress(layout::CMDLINE_START))
        .map_err(|_| Error::Write {
            what: "command line",
            addr: layout::CMDLINE_START,
        })
}

/// The e820 map of a guest of `mem_mib` MiB: base memory below the EBDA,
/// then RAM from 1 MiB to the gap, then RAM above 4 GiB.
pub fn e820_map(mem_mib: u64) -> Vec<boot_e820_entry> {
    let size = mem_mib << 20;
    let ram = |addr: u64, end: u64| boot_e820_entry {
        addr,
        size: end - addr,
        r#type: E820_RAM,
    };
    let mut map = vec![ram(0, layout::EBDA_START)];
    let low_end = low_mem_end(mem_mib);
    if low_end > layout::HIMEM_START {
        map.push(ram(layout::HIMEM_START, low_end));
    }
    if size > layout::MMIO_GAP_START {
        map.push(ram(
            layout::MMIO_GAP_END,
            layout::MMIO_GAP_END + (size - layout::MMIO_GAP_START),
        ));
    }
    map
}

/// Builds the zero page: the bzImage's own setup header (or a minimal one
/// for ELF), command line pointer, initrd and e820 map.
pub fn zero_page(
    hdr: Option<setup_header>,
    cmdline_len: usize,
    initrd: Option<(u64, u64)>,
    mem_mib: u64,
) -> boot_params {
    let mut params = boot_params::default();
    if let Some(h) = hdr {
        params.hdr = h;
    } else {
        params.hdr.header = HDRS_MAGIC;
        params.hdr.kernel_alignment = 0x0100_0000;
    }
    params.hdr.type_of_loader = LOADER_TYPE_UNDEFINED;
    params.hdr.boot_flag = BOOT_FLAG;
    params.hdr.cmd_line_ptr = layout::CMDLINE_START as u32;
    params.hdr.cmdline_size = (cmdline_len + 1) as u32;
    if let Some((addr, size)) = initrd {
        params.hdr.ramdisk_image = addr as u32;
        params.hdr.ramdisk_size = size as u32;
    }
    let map = e820_map(mem_mib);
    for (slot, entry) in params.e820_table.iter_mut().zip(&map) {
        *slot = *entry;
    }
    params.e820_entries = map.len() as u8;
    params
}

/// Writes the zero page at `ZERO_PAGE_START`.
pub fn write_zero_page(mem: &GuestMemoryMmap, params: &boot_params) -> Result<(), Error> {
    mem.write_obj(*params, GuestAddress(layout::ZERO_PAGE_START))
        .map_err(|_| Error::Write {
            what: "zero page",
            addr: layout::ZERO_PAGE_START,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_bzimage_head(version: u16) -> Vec<u8> {
        let mut head = vec![0u8; 1024];
        head[0x1f1] = 4; // setup_sects
        head[0x1fe..0x200].copy_from_slice(&BOOT_FLAG.to_le_bytes());
        head[0x202..0x206].copy_from_slice(&HDRS_MAGIC.to_le_bytes());
        head[0x206..0x208].copy_from_slice(&version.to_le_bytes());
        head[0x20e..0x210].copy_from_slice(&0x0200u16.to_le_bytes()); // kernel_version: file offset 0x400
        head[0x211] = 1; // loadflags: LOADED_HIGH
        head[0x214..0x218].copy_from_slice(&0x10_0000u32.to_le_bytes());
        head[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        head[0x238..0x23c].copy_from_slice(&4096u32.to_le_bytes());
        head
    }

    #[test]
    fn setup_header_parsing() {
        let head = fake_bzimage_head(0x020f);
        let hdr = parse_setup_header(&head).unwrap();
        assert_eq!({ hdr.setup_sects }, 4);
        assert_eq!({ hdr.version }, 0x020f);
        assert_eq!({ hdr.code32_start }, 0x10_0000);
        assert_eq!({ hdr.kernel_version }, 0x200);
        let info = KernelInfo {
            format: KernelFormat::BzImage,
            is_linux: true,
            version: None,
            setup_header: Some(hdr),
        };
        assert_eq!(info.cmdline_size(), 2048);
        assert_eq!(info.initrd_addr_max(), 0x7fff_ffff);
        let old = KernelInfo {
            setup_header: parse_setup_header(&fake_bzimage_head(0x0202)),
            ..info
        };
        assert_eq!(old.cmdline_size(), 256);
        assert_eq!(old.initrd_addr_max(), 0x37ff_ffff);

        let mut bad = head.clone();
        bad[0x202] = b'X';
        assert!(parse_setup_header(&bad).is_none());
        assert!(parse_setup_header(&head[..0x210]).is_none());
    }

    #[test]
    fn probe_rejects_other_files_and_reads_bzimage_version() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("text");
        std::fs::write(&text, b"hello, not a kernel").unwrap();
        assert!(matches!(probe(&text), Err(Error::NotAKernel(_))));
        assert!(matches!(
            probe(&dir.path().join("missing")),
            Err(Error::ReadKernel { .. })
        ));
        let bz = dir.path().join("bz");
        let mut img = fake_bzimage_head(0x020f);
        img.resize(0x400, 0);
        img.extend_from_slice(b"6.1.0-vclab (root@x) #1\0");
        std::fs::write(&bz, &img).unwrap();
        let (_, info) = probe(&bz).unwrap();
        assert_eq!(info.format, KernelFormat::BzImage);
        assert!(info.is_linux);
        assert_eq!(info.version.as_deref(), Some("6.1.0-vclab (root@x) #1"));
    }

    #[test]
    fn probe_refuses_directories_and_fifos_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        // Opened non-blocking: this returns at once instead of waiting for a writer.
        let err = probe(&fifo).unwrap_err();
        assert!(
            matches!(err, Error::NotAFile { kind: "a FIFO", .. }),
            "{err}"
        );
        let err = probe(dir.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains("it is a directory, not a file; give --kernel"),
            "{err}"
        );
    }

    #[test]
    fn a_kernel_beyond_guest_memory_is_refused_before_loading() {
        let mut ehdr = Elf64_Ehdr::default();
        ehdr.e_ident[..4].copy_from_slice(b"\x7fELF");
        ehdr.e_phoff = std::mem::size_of::<Elf64_Ehdr>() as u64;
        ehdr.e_phentsize = std::mem::size_of::<Elf64_Phdr>() as u16;
        ehdr.e_phnum = 1;
        let phdr = Elf64_Phdr {
            p_type: PT_LOAD,
            p_paddr: layout::HIMEM_START,
            p_memsz: 5 << 20,
            ..Default::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.elf");
        let mut bytes = ehdr.as_slice().to_vec();
        bytes.extend_from_slice(phdr.as_slice());
        std::fs::write(&path, bytes).unwrap();
        let (mut file, info) = probe(&path).unwrap();
        assert_eq!(
            image_end(&mut file, &info),
            Some(layout::HIMEM_START + (5 << 20))
        );
        let mem = crate::memory::create(4).unwrap();
        let err = load_kernel(&mem, &path, &mut file, &info, 4).unwrap_err();
        assert!(matches!(err, Error::KernelTooBig { .. }), "{err}");
        assert!(err.to_string().contains("use --mem 6 or more"), "{err}");
        assert!(more_mem_hint(u64::MAX).contains("no --mem helps"));
    }

    #[test]
    fn linux_notes_are_found() {
        let notes = notes(&[(b"GNU\0", &[1, 2, 3, 4, 5]), (b"Linux\0", &[0; 4])]);
        assert!(notes_name_linux(&notes));
        assert!(!notes_name_linux(&notes[..20]));
        assert!(!notes_name_linux(&[]));
    }

    fn notes(entries: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut notes = Vec::new();
        for (name, desc) in entries {
            notes.extend_from_slice(&(name.len() as u32).to_le_bytes());
            notes.extend_from_slice(&(desc.len() as u32).to_le_bytes());
            notes.extend_from_slice(&1u32.to_le_bytes());
            notes.extend_from_slice(name);
            notes.resize(notes.len().next_multiple_of(4), 0);
            notes.extend_from_slice(desc);
            notes.resize(notes.len().next_multiple_of(4), 0);
        }
        notes
    }

    /// An ELF file with one PT_NOTE program header over `notes` (nothing to load).
    fn elf_with_notes(notes: &[u8]) -> Vec<u8> {
        let ehdr_size = std::mem::size_of::<Elf64_Ehdr>();
        let phdr_size = std::mem::size_of::<Elf64_Phdr>();
        let mut ehdr = Elf64_Ehdr::default();
        ehdr.e_ident[..4].copy_from_slice(b"\x7fELF");
        ehdr.e_ident[4] = 2; // ELFCLASS64
        ehdr.e_ident[5] = 1; // ELFDATA2LSB
        ehdr.e_phoff = ehdr_size as u64;
        ehdr.e_phentsize = phdr_size as u16;
        ehdr.e_phnum = 1;
        let phdr = Elf64_Phdr {
            p_type: PT_NOTE,
            p_offset: (ehdr_size + phdr_size) as u64,
            p_filesz: notes.len() as u64,
            ..Default::default()
        };
        let mut file = ehdr.as_slice().to_vec();
        file.extend_from_slice(phdr.as_slice());
        file.extend_from_slice(notes);
        file
    }

    #[test]
    fn elf_probe_reads_pt_note_segments() {
        let dir = tempfile::tempdir().unwrap();
        let linux = dir.path().join("linux.elf");
        let xen_pvh = notes(&[(b"Xen\0", &0x100_0000u32.to_le_bytes())]);
        let mut both = xen_pvh.clone();
        both.extend(notes(&[(b"Linux\0", &[0; 4])]));
        std::fs::write(&linux, elf_with_notes(&both)).unwrap();
        let (_, info) = probe(&linux).unwrap();
        assert_eq!(info.format, KernelFormat::Elf);
        assert!(info.is_linux);
        let other = dir.path().join("unikernel.elf");
        std::fs::write(&other, elf_with_notes(&xen_pvh)).unwrap();
        assert!(!probe(&other).unwrap().1.is_linux);
        // A header that claims program headers past the end of the file.
        let mut cut = elf_with_notes(&both);
        cut.truncate(70);
        std::fs::write(&other, &cut).unwrap();
        assert!(!probe(&other).unwrap().1.is_linux);
    }

    #[test]
    fn initrd_goes_high_and_aligned() {
        let mib = 1 << 20;
        assert_eq!(
            initrd_address(128 * mib, 0x7fff_ffff, 2 * mib, 5000),
            Some(128 * mib - 0x2000)
        );
        // initrd_addr_max below memory end limits it.
        assert_eq!(
            initrd_address(4096 * mib, 0x37ff_ffff, 2 * mib, 4096),
            Some(0x3800_0000 - 4096)
        );
        // Does not fit above the kernel.
        assert_eq!(
            initrd_address(128 * mib, u64::MAX, 100 * mib, 40 * mib),
            None
        );
        assert_eq!(initrd_address(128 * mib, u64::MAX, mib, 200 * mib), None);
    }

    #[test]
    fn zero_page_in_guest_memory() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 64 << 20)]).unwrap();
        let params = zero_page(None, 10, Some((0x300_0000, 0x1234)), 64);
        write_zero_page(&mem, &params).unwrap();
        write_cmdline(&mem, "console=x").unwrap();
        let back: boot_params = mem.read_obj(GuestAddress(layout::ZERO_PAGE_START)).unwrap();
        assert_eq!({ back.hdr.boot_flag }, 0xaa55);
        assert_eq!({ back.hdr.header }, HDRS_MAGIC);
        assert_eq!({ back.hdr.type_of_loader }, 0xff);
        assert_eq!({ back.hdr.cmd_line_ptr }, 0x20000);
        assert_eq!({ back.hdr.ramdisk_image }, 0x300_0000);
        assert_eq!({ back.hdr.ramdisk_size }, 0x1234);
        assert_eq!(back.e820_entries, 2);
        let e0 = back.e820_table[0];
        let e1 = back.e820_table[1];
        assert_eq!(({ e0.addr }, { e0.size }, { e0.r#type }), (0, 0x9fc00, 1));
        assert_eq!(
            ({ e1.addr }, { e1.size }, { e1.r#type }),
            (0x10_0000, (64 << 20) - 0x10_0000, 1)
        );
        let mut cmd = [0u8; 10];
        mem.read_slice(&mut cmd, GuestAddress(layout::CMDLINE_START))
            .unwrap();
        assert_eq!(&cmd, b"console=x\0");
    }

    #[test]
    fn e820_above_the_gap() {
        let map = e820_map(4096);
        assert_eq!(map.len(), 3);
        assert_eq!(
            { map[1].size },
            layout::MMIO_GAP_START - layout::HIMEM_START
        );
        assert_eq!({ map[2].addr }, layout::MMIO_GAP_END);
        assert_eq!({ map[2].size }, (4096u64 << 20) - layout::MMIO_GAP_START);
    }
}
