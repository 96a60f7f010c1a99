//! The snapshot the `microvm-unikernel-restore` row restores: taken once per `vclab compare`,
//! before the rounds, by booting the unikernel with `--snapshot-at ready` (the VMM pauses at the
//! guest's ready signal, writes the snapshot, resumes, and the guest runs a one-block cpu
//! kernel to its end). It lives in the harness's state entry, which its guard removes also
//! after a SIGKILL. Its cost is the course table's "image creation" figure for a VM.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::runtime::Env;

/// What taking the snapshot cost, as the VMM reported it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SnapshotFacts {
    /// The guest's pause: vCPU, VM and device state and the memory file written, ms.
    pub snapshot_ms: f64,
    /// Guest RAM, bytes (the memory file's apparent size).
    pub memory_bytes: u64,
    /// Bytes of guest memory written (zero pages are holes).
    pub memory_written_bytes: u64,
    /// The state file and manifest, bytes.
    pub state_bytes: u64,
}

/// The guest command line the snapshot is taken with: the guest reads its real parameters
/// after the restore (`--cmdline-after-restore`); this boot only runs one block of cpu.
const SNAPSHOT_CMDLINE: &str = "vclab.kernel=cpu vclab.size=4096 vclab.iterations=1";

/// Takes the snapshot into `dir` (replaced); returns what it cost, or why it failed (one line).
pub fn take(env: &Env, dir: &Path) -> Result<SnapshotFacts, String> {
    let kernel = env.artifact("unikernel")?;
    let argv = env.vmm_argv();
    let (program, rest) = argv.split_first().ok_or("no VMM command")?;
    let out = Command::new(program)
        .args(rest)
        .arg("--kernel")
        .arg(&kernel)
        .args([
            "--cmdline",
            SNAPSHOT_CMDLINE,
            "--console",
            "off",
            "--snapshot-at",
            "ready",
        ])
        .arg("--snapshot-dir")
        .arg(dir)
        .args(["--timeout", "30", "--json"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", Path::new(program).display()))?;
    let report = super::vm_report::parse(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .map(str::trim),
    );
    let taken = report.as_ref().and_then(|r| r.snapshot.clone());
    match taken {
        Some(s) if out.status.success() => Ok(SnapshotFacts {
            snapshot_ms: s.snapshot_ns as f64 / 1e6,
            memory_bytes: s.memory_bytes,
            memory_written_bytes: s.memory_written_bytes,
            state_bytes: s.state_bytes + s.manifest_bytes,
        }),
        _ => Err(format!(
            "the snapshot boot failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// Where the run's snapshot goes: `snapshot` in the harness's entry, else a temp directory.
pub fn dir_for(env: &Env) -> PathBuf {
    env.harness.as_ref().map_or_else(
        || std::env::temp_dir().join(format!("vclab-snapshot-{}", std::process::id())),
        |h| h.dir().join("snapshot"),
    )
}
