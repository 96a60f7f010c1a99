//! Criterion benches of the lab's start paths: a container start
//! (`vclab container run` of /bin/true), a unikernel micro-VM boot
//! (`vclab vm run` of the unikernel, to its exit), and the VMM's own set-up
//! (the library's time from start to the first KVM_RUN). Linux boots are left
//! out (30-60 s each on kvm_pvm). A bench whose artifact is missing prints why
//! and is skipped.

#[path = "../src/artifacts.rs"]
#[allow(dead_code)]
mod artifacts;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

const VCLAB: &str = env!("CARGO_BIN_EXE_vclab");
/// The smallest workload: one pass over one page.
const TINY: &str = "vclab.kernel=cpu vclab.size=4096 vclab.iterations=1 vclab.seed=1";

fn artifact(name: &str) -> Option<PathBuf> {
    let found = artifacts::Manifest::load().and_then(|m| m.path(name));
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
        let mut cmd = Command::new(VCLAB);
        cmd.args(["vm", "run", "--kernel"]).arg(&kernel).args([
            "--cmdline",
            TINY,
            "--console",
            "off",
        ]);
        cmd
    };
    if !run_ok(&mut cmd()) {
        eprintln!("skipping the unikernel boot bench: vclab vm run does not work here");
        return;
    }
    let mut g = c.benchmark_group("microvm");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    g.bench_function("vclab vm run unikernel (spawn to exit)", |b| {
        b.iter(|| run_ok(&mut cmd()))
    });
    g.finish();
}

fn vmm_setup(c: &mut Criterion) {
    let Some(kernel) = artifact("unikernel") else {
        return;
    };
    let boot = || {
        let mut cfg = vclab_vmm::VmConfig::new(&kernel);
        cfg.cmdline = TINY.to_string();
        cfg.console = vclab_vmm::Output::Off;
        cfg.lines = vclab_vmm::Output::Off;
        cfg.origin = Instant::now();
        vclab_vmm::run(&cfg)
    };
    match boot() {
        Ok(r) if r.first_run_ns.is_some() => {}
        Ok(r) => {
            eprintln!(
                "skipping the VMM set-up bench: the report has no first_run_ns ({})",
                r.exit_reason
            );
            return;
        }
        Err(e) => {
            eprintln!("skipping the VMM set-up bench: {e}");
            return;
        }
    }
    let mut g = c.benchmark_group("vmm");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    // Time from VmConfig::origin to the first KVM_RUN, as the VMM reports it.
    g.bench_function("setup to first KVM_RUN (library)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                match boot() {
                    Ok(r) => total += Duration::from_nanos(r.first_run_ns.unwrap_or(0)),
                    Err(e) => eprintln!("boot failed: {e}"),
                }
            }
            total
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = container_start, unikernel_boot, vmm_setup
}
criterion_main!(benches);
