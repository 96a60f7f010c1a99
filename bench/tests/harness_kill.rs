//! SIGKILL of `vclab compare` in the middle of a run leaves nothing behind:
//! its instances die with it (PR_SET_PDEATHSIG; the container launcher passes
//! it on to its container), and its guard process deletes what outlives it
//! (the OCI peers' containers, bundles, cgroups, the state entry). Once per
//! kind of row, killed while that row's instance runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vclab_bench::runtime::{self, Env, RuntimeId};
use vclab_bench::spawn::tree;

fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

fn alive(pid: i32) -> bool {
    tree::state(pid).is_some_and(|s| s != 'Z')
}

/// Directories named `vclab*` below `dir`, at most `depth` levels down.
fn named_vclab(dir: &Path, depth: u32, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(t) = e.file_type() else { continue };
        if !t.is_dir() || t.is_symlink() {
            continue;
        }
        let p = e.path();
        if e.file_name().to_string_lossy().starts_with("vclab") {
            out.push(p.clone());
        }
        if depth > 0 {
            named_vclab(&p, depth - 1, out);
        }
    }
}

/// What a run of harness `pid` may leave: its processes, state, cgroups, OCI state, mounts.
fn leftovers(pid: i32, tree_before: &[(i32, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (p, c) in tree_before {
        if alive(*p) && comm(*p).as_deref() == Some(c) {
            out.push(format!("process {p} ({c})"));
        }
    }
    let entry = Path::new("/run/vclab").join(format!("harness-{pid}"));
    if entry.exists() {
        out.push(format!("state entry {}", entry.display()));
    }
    let mut cgroups = Vec::new();
    named_vclab(Path::new("/sys/fs/cgroup"), 6, &mut cgroups);
    out.extend(cgroups.iter().map(|c| format!("cgroup {}", c.display())));
    for root in ["/run/runc", "/run/crun"] {
        if let Ok(entries) = std::fs::read_dir(root) {
            for e in entries.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with(&format!("vclab-compare-{pid}-")) {
                    out.push(format!("OCI container {root}/{n}"));
                }
            }
        }
    }
    if let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") {
        out.extend(
            mounts
                .lines()
                .filter(|l| l.contains(" /run/vclab"))
                .map(|l| format!("mount {l}")),
        );
    }
    // Launcher state of dead launchers (the container row's).
    if let Ok(entries) = std::fs::read_dir("/run/vclab") {
        out.extend(
            entries
                .flatten()
                .map(|e| format!("state {}", e.path().display())),
        );
    }
    out
}

/// The tests look at the whole host's state: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn sigkill_of_the_harness_leaves_nothing() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = {
        let manifest =
            vclab_vmm::cache::Manifest::load(&vclab_vmm::cache::dir()).map_err(|e| e.to_string());
        let mut env = Env::bare(PathBuf::from(env!("CARGO_BIN_EXE_vclab")));
        env.workload = runtime::env::find_workload(&manifest, &env.vclab);
        env.manifest = manifest;
        env.host = vclab_bench::host::HostRecord::detect(&[]);
        env
    };
    // The row, and the process that shows its instance is running.
    let cases = [
        (RuntimeId::Container, "vclab-workload"),
        (RuntimeId::Runc, "vclab-workload"),
        (RuntimeId::Crun, "vclab-workload"),
        (RuntimeId::MicrovmUnikernel, "vclab-vmm"),
        (RuntimeId::QemuMicrovm, "qemu-system-x86"),
    ];
    // What other runs left before this test is not this test's to judge.
    let before = leftovers(0, &[]);
    let mut tried = 0;
    for (row, marker) in cases {
        if let Some(why) = runtime::of(row).unavailable(&env) {
            eprintln!("{row}: not run here ({why})");
            continue;
        }
        tried += 1;
        let out = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_vclab"))
            .args([
                "compare", "--quick", "--runs", "200", "--warmup", "0", "--only",
            ])
            .arg(row.name())
            .arg("--out")
            .arg(out.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // Wait for the row's instance to be running under the harness.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut snapshot = Vec::new();
        while Instant::now() < deadline {
            snapshot = tree::tree(pid)
                .into_iter()
                .filter_map(|p| comm(p).map(|c| (p, c)))
                .collect();
            if snapshot.iter().any(|(_, c)| c == marker) {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(
            snapshot.iter().any(|(_, c)| c == marker),
            "{row}: no {marker} under the harness within 60 s: {snapshot:?}"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        // The guard and the parent-death signals act within a few seconds.
        let deadline = Instant::now() + Duration::from_secs(15);
        let new = || -> Vec<String> {
            leftovers(pid, &snapshot)
                .into_iter()
                .filter(|l| !before.contains(l))
                .collect()
        };
        let mut left = new();
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            left = new();
        }
        assert!(
            left.is_empty(),
            "{row}: SIGKILL of vclab compare left {left:#?}"
        );
    }
    assert!(tried > 0, "no row could run here: nothing was tested");
}

/// The same for `vclab density` holding detached vclab containers (no
/// launcher process stays for them): the guard deletes them.
#[test]
fn sigkill_of_a_density_ramp_leaves_no_detached_container() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = {
        let manifest =
            vclab_vmm::cache::Manifest::load(&vclab_vmm::cache::dir()).map_err(|e| e.to_string());
        let mut env = Env::bare(PathBuf::from(env!("CARGO_BIN_EXE_vclab")));
        env.manifest = manifest;
        env
    };
    if let Some(why) = runtime::of(RuntimeId::Container).unavailable(&env) {
        eprintln!("container: not run here ({why})");
        return;
    }
    let before = leftovers(0, &[]);
    let out = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vclab"))
        .args([
            "density",
            "--runtimes",
            "container",
            "--max",
            "400",
            "--step",
            "5",
            "--out",
        ])
        .arg(out.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    // Wait until a few detached containers are held (their inits are children of the harness).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut snapshot = Vec::new();
    while Instant::now() < deadline {
        snapshot = tree::tree(pid)
            .into_iter()
            .filter_map(|p| comm(p).map(|c| (p, c)))
            .collect();
        if snapshot
            .iter()
            .filter(|(_, c)| c == "vclab-workload")
            .count()
            >= 5
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        snapshot
            .iter()
            .filter(|(_, c)| c == "vclab-workload")
            .count()
            >= 5,
        "no held containers within 60 s: {snapshot:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let new = || -> Vec<String> {
        leftovers(pid, &snapshot)
            .into_iter()
            .filter(|l| !before.contains(l))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut left = new();
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        left = new();
    }
    assert!(left.is_empty(), "SIGKILL of vclab density left {left:#?}");
}
