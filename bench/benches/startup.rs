//! Criterion benches of the lab's start paths: a container start
//! (`vclab container run` of /bin/true), a unikernel micro-VM boot
//! (`vclab-vmm` of the unikernel, to its exit), and the VMM's set-up: process
//! start (spawn) → first guest instruction (the first KVM_RUN), and spawn →
//! guest ready (port 0x3f0), both put on one CLOCK_MONOTONIC time line with
//! the report's `origin_monotonic_ns`. Linux boots are left out (minutes each
//! on kvm_pvm). A bench whose artifact is missing prints why and is skipped.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use vclab_vmm::cache::{self, Manifest};
use vclab_vmm::VmReport;

const VCLAB: &str = env!("CARGO_BIN_EXE_vclab");
/// The VMM alone (same code as `vclab vm run`, without the CLI around it).
const VMM: &str = env!("CARGO_BIN_EXE_vclab-vmm");
/// The smallest workload: one pass over one page.
const TINY: &str = "vclab.kernel=cpu vclab.size=4096 vclab.iterations=1 vclab.seed=1";

fn artifact(name: &str) -> Option<PathBuf> {
    let found = Manifest::load(&cache::dir()).and_then(|m| m.path(name));
    match found {
        Ok(p) if p.exists() => Some(p),
        Ok(p) => {
            eprintln!(
                "skipping: artifact '{name}' is missing at {} (run scripts/guest-images.sh)",
                p.display()
            );
            None
        }
        Err(e) => {
            eprintln!("skipping the '{name}' bench: {e}");
            None
        }
    }
}

/// Runs `cmd` to completion; false (with the reason printed) if it fails.
fn run_ok(cmd: &mut Command) -> bool {
    match cmd.stdout(Stdio::null()).stderr(Stdio::piped()).output() {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            eprintln!(
                "{cmd:?} failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            false
        }
        Err(e) => {
            eprintln!("cannot run {cmd:?}: {e}");
            false
        }
    }
}

fn container_start(c: &mut Criterion) {
    let Some(rootfs) = artifact("rootfs") else {
        return;
    };
    let cmd = || {
        let mut cmd = Command::new(VCLAB);
        cmd.args(["container", "run", "--rootfs"])
            .arg(&rootfs)
            .args(["--", "/bin/true"]);
        cmd
    };
    if !run_ok(&mut cmd()) {
        eprintln!("skipping the container start bench: vclab container run does not work here");
        return;
    }
    let mut g = c.benchmark_group("container");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    g.bench_function("vclab container run /bin/true", |b| {
        b.iter(|| run_ok(&mut cmd()))
    });
    g.finish();
}

fn unikernel_boot(c: &mut Criterion) {
    let Some(kernel) = artifact("unikernel") else {
        return;
    };
    let cmd = || {
        let mut cmd = Command::new(VMM);
        cmd.arg("--kernel")
            .arg(&kernel)
            .args(["--cmdline", TINY, "--console", "off"]);
        cmd
    };
    if !run_ok(&mut cmd()) {
        eprintln!("skipping the unikernel boot bench: vclab-vmm does not work here");
        return;
    }
    let mut g = c.benchmark_group("microvm");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    g.bench_function("vclab-vmm unikernel (spawn to exit)", |b| {
        b.iter(|| run_ok(&mut cmd()))
    });
    g.finish();
}

/// CLOCK_MONOTONIC now, ns (the clock of the report's `origin_monotonic_ns`).
fn monotonic_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always readable");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

/// One `vclab-vmm --json` run: (spawn → first KVM_RUN, spawn → guest ready).
fn spawn_to_phases(kernel: &std::path::Path) -> Result<(Duration, Duration), String> {
    let t0 = monotonic_ns();
    let out = Command::new(VMM)
        .arg("--kernel")
        .arg(kernel)
        .args(["--cmdline", TINY, "--console", "off", "--json"])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {VMM}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().ok_or("vclab-vmm printed no report")?;
    let report: VmReport =
        serde_json::from_str(last).map_err(|e| format!("bad report line {last:?}: {e}"))?;
    let origin = report
        .origin_monotonic_ns
        .ok_or_else(|| format!("the report has no origin_monotonic_ns: {last}"))?;
    let since_spawn = |name: &str, phase: Option<u64>| -> Result<Duration, String> {
        let at = origin + phase.ok_or_else(|| format!("the report has no {name}: {last}"))?;
        at.checked_sub(t0)
            .map(Duration::from_nanos)
            .ok_or_else(|| format!("{name} is before the spawn"))
    };
    Ok((
        since_spawn("first_run_ns", report.first_run_ns)?,
        since_spawn("guest_ready_ns", report.guest_ready_ns)?,
    ))
}

fn vmm_setup(c: &mut Criterion) {
    let Some(kernel) = artifact("unikernel") else {
        return;
    };
    if let Err(e) = spawn_to_phases(&kernel) {
        eprintln!("skipping the VMM set-up bench: {e}");
        return;
    }
    let mut g = c.benchmark_group("vmm");
    g.sample_size(30).measurement_time(Duration::from_secs(8));
    for (name, pick) in [
        ("process start to first guest instruction", 0),
        ("process start to guest ready", 1),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // A failed run must not count as a fast one.
                    let p = spawn_to_phases(&kernel)
                        .unwrap_or_else(|e| panic!("VMM run failed mid-bench: {e}"));
                    total += if pick == 0 { p.0 } else { p.1 };
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = container_start, unikernel_boot, vmm_setup
}
criterion_main!(benches);
