//! The snapshot directory:
//! - `snapshot.json`: the [`Manifest`] (magic, format version, VMM version, memory size
//!   and region layout, vCPU count, each file's size, the state file's FNV-1a 64 hash);
//! - `state.json`: the [`State`] (VM-wide KVM state, every vCPU, the devices);
//! - `memory`: guest RAM (`memory.rs`).
//!
//! [`prepare`] removes an old manifest first, sets the older files aside (deleted later by
//! [`remove_stale`]) and creates the new ones; [`commit`] writes them and renames the
//! manifest in last: a crash at any point leaves a directory without `snapshot.json`,
//! which [`load`] refuses as incomplete. [`load`] checks all of
//! it before a byte of state is used. Files are not fsynced (a snapshot survives a VMM
//! crash, not a host power loss).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vm_memory::GuestMemoryMmap;

use super::memory::{self, RegionEntry, SaveMode};
use super::{vcpu::VcpuState, vm::VmState, DeviceStates};

/// The manifest's magic string.
pub const MAGIC: &str = "vclab-snapshot";
/// The format version this VMM writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The manifest's file name.
pub const MANIFEST_FILE: &str = "snapshot.json";
/// The state file's name.
pub const STATE_FILE: &str = "state.json";
/// The memory file's name.
pub const MEMORY_FILE: &str = "memory";
/// What every refusal tells the user to do.
const RETAKE: &str = "take a new snapshot with --snapshot-at ready";

/// Errors of writing and loading a snapshot directory; each names the path.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The directory is not there.
    #[error("snapshot directory {0} does not exist; {RETAKE} --snapshot-dir {0}")]
    MissingDir(String),
    /// A file of the snapshot is missing.
    #[error("snapshot file {0} is missing: the snapshot is incomplete; {RETAKE}")]
    MissingFile(String),
    /// A file is shorter (or longer) than the manifest says.
    #[error("snapshot file {path} has {have} bytes, its manifest says {want}: the snapshot is truncated or was changed; {RETAKE}")]
    Size {
        /// The file.
        path: String,
        /// Its size.
        have: u64,
        /// The manifest's size.
        want: u64,
    },
    /// The manifest is not JSON of the expected shape.
    #[error("{path} is not a vclab snapshot manifest ({err}); {RETAKE}")]
    Foreign {
        /// The manifest.
        path: String,
        /// The parse error or what is wrong.
        err: String,
    },
    /// Another format version.
    #[error("{path} is snapshot format {found}, this VMM reads format {FORMAT_VERSION} (written by vclab-vmm {vmm}); {RETAKE} with this VMM")]
    Version {
        /// The manifest.
        path: String,
        /// Its version.
        found: u32,
        /// The VMM version that wrote it.
        vmm: String,
    },
    /// The state file's hash differs from the manifest's.
    #[error("snapshot state {path} does not match its manifest's checksum (corrupted); {RETAKE}")]
    Checksum {
        /// The state file.
        path: String,
    },
    /// The state file does not parse.
    #[error("snapshot state {path} cannot be read: {err}; {RETAKE}")]
    State {
        /// The state file.
        path: String,
        /// The parse error.
        err: String,
    },
    /// The snapshot does not fit the VM asked for.
    #[error("snapshot {path} has {what} {found}, the VM asked for has {asked}: restore without --{what} or {RETAKE}")]
    Mismatch {
        /// The manifest.
        path: String,
        /// "vcpus" or "mem".
        what: &'static str,
        /// The snapshot's value.
        found: u64,
        /// The value asked for.
        asked: u64,
    },
    /// Reading or writing a file failed.
    #[error(
        "cannot {what} {path}: {err} (check the snapshot directory's permissions and free space)"
    )]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: String,
        /// The error.
        err: std::io::Error,
    },
    /// Serialising the state or manifest failed.
    #[error("cannot encode the snapshot's {what}: {err}")]
    Encode {
        /// Which file.
        what: &'static str,
        /// The serde error.
        err: serde_json::Error,
    },
    /// The memory file.
    #[error(transparent)]
    Memory(#[from] memory::Error),
}

/// One file of the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Its name in the directory (a plain name, no `/`).
    pub name: String,
    /// Its size, bytes.
    pub size: u64,
    /// FNV-1a 64 of its bytes, hex (the state file; the memory file is too large to hash
    /// within the snapshot budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fnv1a64: Option<String>,
}

/// `snapshot.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MAGIC`].
    pub magic: String,
    /// [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// The writing VMM's crate version.
    pub vmm_version: String,
    /// Guest RAM, MiB.
    pub mem_mib: u64,
    /// vCPUs.
    pub vcpus: u32,
    /// Guest RAM regions and their offsets in the memory file.
    pub regions: Vec<RegionEntry>,
    /// The memory file.
    pub memory: FileEntry,
    /// The state file.
    pub state: FileEntry,
}

/// `state.json`: everything but guest RAM.
#[derive(Debug, Serialize, Deserialize)]
pub struct State {
    /// Irqchip, PIT, clock.
    pub vm: VmState,
    /// One per vCPU, in index order.
    pub vcpus: Vec<VcpuState>,
    /// The VMM's devices.
    pub devices: DeviceStates,
}

/// What [`write`] did.
#[derive(Debug, Clone)]
pub struct Written {
    /// The manifest written.
    pub manifest: Manifest,
    /// Bytes of guest RAM written (less than its size when zero pages were skipped).
    pub memory_written: u64,
    /// An older snapshot's files, set aside for [`remove_stale`].
    pub stale: Vec<PathBuf>,
}

/// What the VM to restore must match; `None` takes the snapshot's value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expect {
    /// vCPUs asked for.
    pub vcpus: Option<u32>,
    /// Guest RAM asked for, MiB.
    pub mem_mib: Option<u64>,
}

/// A checked snapshot.
#[derive(Debug)]
pub struct Loaded {
    /// The manifest.
    pub manifest: Manifest,
    /// The state.
    pub state: State,
    /// The memory file's path, for `memory::restore`.
    pub memory_path: PathBuf,
}

/// FNV-1a, 64 bits (Fowler, Noll, Vo; the IETF draft-eastlake-fnv): a fast
/// non-cryptographic hash for telling a corrupted state file from a whole one.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |err| Error::Io {
        what,
        path: path.display().to_string(),
        err,
    }
}

fn tmp_name(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// A snapshot directory made ready for [`commit`]: an older snapshot's manifest removed, its
/// files set aside, the new files created. Made before the seccomp filters go on, so the
/// snapshot itself needs no file-opening call (only writes, `ftruncate`, `lseek` and the one
/// `rename` of the manifest).
#[derive(Debug)]
pub struct Prepared {
    dir: PathBuf,
    memory: std::fs::File,
    state: std::fs::File,
    manifest_tmp: std::fs::File,
    /// An older snapshot's files, set aside for [`remove_stale`].
    pub stale: Vec<PathBuf>,
}

impl Prepared {
    /// The snapshot directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Makes `dir` ready for a snapshot (see [`Prepared`]); made if missing.
pub fn prepare(dir: &Path) -> Result<Prepared, Error> {
    std::fs::create_dir_all(dir).map_err(io("create directory", dir))?;
    let manifest_path = dir.join(MANIFEST_FILE);
    match std::fs::remove_file(&manifest_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io("remove the old", &manifest_path)(e))
        }
        _ => {}
    }
    let stale = set_aside(dir)?;
    let create = |name: &str| {
        let path = dir.join(name);
        std::fs::File::create(&path).map_err(io("create", &path))
    };
    Ok(Prepared {
        memory: create(MEMORY_FILE)?,
        state: create(STATE_FILE)?,
        manifest_tmp: create(&format!("{MANIFEST_FILE}.tmp"))?,
        dir: dir.to_path_buf(),
        stale,
    })
}

/// Writes a snapshot of `state` and `mem` into `dir` (made if missing; a snapshot there
/// is replaced): [`prepare`] then [`commit`].
pub fn write(
    dir: &Path,
    state: &State,
    mem: &GuestMemoryMmap,
    mode: SaveMode,
) -> Result<Written, Error> {
    commit(prepare(dir)?, state, mem, mode)
}

/// Writes the memory file, the state file, then the manifest under a `.tmp` name renamed
/// into place last: until then the directory has no `snapshot.json` and [`load`] refuses it
/// as incomplete.
pub fn commit(
    mut p: Prepared,
    state: &State,
    mem: &GuestMemoryMmap,
    mode: SaveMode,
) -> Result<Written, Error> {
    use std::io::Write as _;
    let memory_path = p.dir.join(MEMORY_FILE);
    let saved = memory::save_to(mem, &mut p.memory, &memory_path, mode)?;

    let state_bytes = serde_json::to_vec(state).map_err(|err| Error::Encode {
        what: STATE_FILE,
        err,
    })?;
    let state_path = p.dir.join(STATE_FILE);
    p.state
        .write_all(&state_bytes)
        .map_err(io("write", &state_path))?;

    let manifest = Manifest {
        magic: MAGIC.to_string(),
        format_version: FORMAT_VERSION,
        vmm_version: env!("CARGO_PKG_VERSION").to_string(),
        mem_mib: saved.file_size >> 20,
        vcpus: state.vcpus.len() as u32,
        regions: saved.regions,
        memory: FileEntry {
            name: MEMORY_FILE.to_string(),
            size: saved.file_size,
            fnv1a64: None,
        },
        state: FileEntry {
            name: STATE_FILE.to_string(),
            size: state_bytes.len() as u64,
            fnv1a64: Some(format!("{:016x}", fnv1a64(&state_bytes))),
        },
    };
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|err| Error::Encode {
        what: MANIFEST_FILE,
        err,
    })?;
    let manifest_path = p.dir.join(MANIFEST_FILE);
    let tmp = tmp_name(&manifest_path);
    p.manifest_tmp
        .write_all(&bytes)
        .map_err(io("write", &tmp))?;
    std::fs::rename(&tmp, &manifest_path).map_err(io("rename into", &manifest_path))?;
    Ok(Written {
        manifest,
        memory_written: saved.written,
        stale: p.stale,
    })
}

/// The suffix of an older snapshot's files set aside by [`write`].
const STALE: &str = ".stale.";

/// Renames an older snapshot's memory and state files out of the way (unique names):
/// unlinking them here would free their page cache and wait for their writeback, 3–90 ms
/// on this lab's disk for 16 MiB, inside the pause. [`remove_stale`] deletes them later.
fn set_aside(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut stale = Vec::new();
    for name in [MEMORY_FILE, STATE_FILE] {
        let path = dir.join(name);
        let aside = dir.join(format!("{name}{STALE}{}-{stamp}", std::process::id()));
        match std::fs::rename(&path, &aside) {
            Ok(()) => stale.push(aside),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("set aside the older", &path)(e)),
        }
    }
    Ok(stale)
}

/// Deletes the older snapshots' files [`write`] set aside in `dir`. Call it off the
/// critical path: once the guest runs again, or when the VMM ends.
pub fn remove_stale(dir: &Path) -> Result<usize, Error> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).map_err(io("list", dir))? {
        let entry = entry.map_err(io("list", dir))?;
        if entry.file_name().to_string_lossy().contains(STALE) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(io("remove", &path))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Reads and checks the manifest of `dir`.
pub fn read_manifest(dir: &Path) -> Result<Manifest, Error> {
    if !dir.is_dir() {
        return Err(Error::MissingDir(dir.display().to_string()));
    }
    let path = dir.join(MANIFEST_FILE);
    let shown = path.display().to_string();
    let bytes = match std::fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::MissingFile(shown))
        }
        r => r.map_err(io("read", &path))?,
    };
    // The magic and version first, so a newer format is told apart from garbage.
    #[derive(Deserialize)]
    struct Head {
        magic: String,
        format_version: u32,
        #[serde(default)]
        vmm_version: String,
    }
    let foreign = |err: String| Error::Foreign {
        path: shown.clone(),
        err,
    };
    let head: Head = serde_json::from_slice(&bytes).map_err(|e| foreign(e.to_string()))?;
    if head.magic != MAGIC {
        return Err(foreign(format!("magic {:?}, not {MAGIC:?}", head.magic)));
    }
    if head.format_version != FORMAT_VERSION {
        return Err(Error::Version {
            path: shown,
            found: head.format_version,
            vmm: head.vmm_version,
        });
    }
    let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| foreign(e.to_string()))?;
    check_layout(&m).map_err(foreign)?;
    Ok(m)
}

/// The manifest's own consistency: plain file names, regions that add up to the memory
/// size and lie inside the memory file without overlapping.
fn check_layout(m: &Manifest) -> Result<(), String> {
    for f in [&m.memory, &m.state] {
        if f.name.is_empty() || f.name.contains('/') || f.name == ".." {
            return Err(format!("file name {:?} is not a plain name", f.name));
        }
    }
    if m.vcpus == 0 {
        return Err("0 vCPUs".to_string());
    }
    let total: u64 = m.regions.iter().map(|r| r.size).sum();
    if total != m.mem_mib << 20 {
        return Err(format!(
            "regions add up to {total} bytes, not the {} MiB of mem_mib",
            m.mem_mib
        ));
    }
    let mut spans: Vec<_> = m
        .regions
        .iter()
        .map(|r| (r.file_offset, r.file_end()))
        .collect();
    spans.sort_unstable();
    for w in spans.windows(2) {
        if w[0].1 > w[1].0 {
            return Err("regions overlap in the memory file".to_string());
        }
    }
    if spans.last().is_some_and(|s| s.1 > m.memory.size) {
        return Err("a region lies past the end of the memory file".to_string());
    }
    Ok(())
}

fn check_size(path: &Path, want: u64) -> Result<(), Error> {
    let shown = path.display().to_string();
    let have = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::MissingFile(shown))
        }
        r => r.map_err(io("stat", path))?.len(),
    };
    if have != want {
        return Err(Error::Size {
            path: shown,
            have,
            want,
        });
    }
    Ok(())
}

/// Loads and checks the snapshot in `dir` against `expect`.
pub fn load(dir: &Path, expect: Expect) -> Result<Loaded, Error> {
    let m = read_manifest(dir)?;
    let mpath = dir.join(MANIFEST_FILE).display().to_string();
    let mismatch = |what, found: u64, asked: u64| Error::Mismatch {
        path: mpath.clone(),
        what,
        found,
        asked,
    };
    if let Some(v) = expect.vcpus.filter(|&v| v != m.vcpus) {
        return Err(mismatch("vcpus", m.vcpus.into(), v.into()));
    }
    if let Some(mib) = expect.mem_mib.filter(|&mib| mib != m.mem_mib) {
        return Err(mismatch("mem", m.mem_mib, mib));
    }
    let memory_path = dir.join(&m.memory.name);
    check_size(&memory_path, m.memory.size)?;
    let state_path = dir.join(&m.state.name);
    check_size(&state_path, m.state.size)?;
    let bytes = std::fs::read(&state_path).map_err(io("read", &state_path))?;
    let shown = state_path.display().to_string();
    if m.state.fnv1a64.as_deref() != Some(format!("{:016x}", fnv1a64(&bytes)).as_str()) {
        return Err(Error::Checksum { path: shown });
    }
    let state: State = serde_json::from_slice(&bytes).map_err(|e| Error::State {
        path: shown.clone(),
        err: e.to_string(),
    })?;
    if state.vcpus.len() != m.vcpus as usize {
        return Err(Error::State {
            path: shown,
            err: format!(
                "{} vCPU states, the manifest says {}",
                state.vcpus.len(),
                m.vcpus
            ),
        });
    }
    Ok(Loaded {
        manifest: m,
        state,
        memory_path,
    })
}
