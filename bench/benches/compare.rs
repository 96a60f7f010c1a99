//! `cargo bench` as a comparison: one criterion group per workload kernel
//! (`cpu`, `mem-bw`, `mem-lat`, default parameters), and in each the same
//! rows as `vclab compare` from the same registry: bare, container, crun,
//! runc, the unikernel VM (lab device and UART), QEMU microvm, plus
//! Firecracker and Cloud Hypervisor when `VCLAB_FIRECRACKER` /
//! `VCLAB_CLOUD_HYPERVISOR` name their binaries. Each iteration is one
//! launch → exit of the row's instance (timed by the harness's handle, the
//! same way for every row), its checksum checked. Criterion's report then
//! shows the rows side by side. A row that cannot run here is skipped with
//! its reason printed. Select one group with a filter:
//! `cargo bench -p vclab-bench --bench compare -- cpu/`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use vclab_bench::compare::default_workloads;
use vclab_bench::host::HostRecord;
use vclab_bench::runtime::{self, Env, RuntimeId};
use vclab_bench::spawn::guard::Harness;

const VCLAB: &str = env!("CARGO_BIN_EXE_vclab");

/// The rows benched, in the report's order.
const ROWS: &[RuntimeId] = &[
    RuntimeId::Bare,
    RuntimeId::Container,
    RuntimeId::Crun,
    RuntimeId::Runc,
    RuntimeId::MicrovmUnikernel,
    RuntimeId::MicrovmUnikernelUart,
    RuntimeId::MicrovmUnikernelRestore,
    RuntimeId::QemuMicrovm,
    RuntimeId::Firecracker,
    RuntimeId::CloudHypervisor,
];

fn env() -> Env {
    let fc = std::env::var_os("VCLAB_FIRECRACKER").map(PathBuf::from);
    let ch = std::env::var_os("VCLAB_CLOUD_HYPERVISOR").map(PathBuf::from);
    let manifest =
        vclab_vmm::cache::Manifest::load(&vclab_vmm::cache::dir()).map_err(|e| e.to_string());
    let mut env = Env::bare(PathBuf::from(VCLAB));
    env.workload = runtime::env::find_workload(&manifest, &env.vclab);
    env.manifest = manifest;
    env.host = HostRecord::detect(&[
        ("firecracker", fc.as_deref()),
        ("cloud-hypervisor", ch.as_deref()),
    ]);
    env.tsc_khz = runtime::env::host_tsc_khz();
    match Harness::start(Some(std::path::Path::new(VCLAB))) {
        Ok(h) => env.harness = Some(Arc::new(h)),
        Err(e) => eprintln!("warning: {e}; instance files go to the temp directory"),
    }
    env
}

fn workloads(c: &mut Criterion) {
    let mut env = env();
    let mut seq = 0u64;
    // The io kernel's image, removed when the benches end (a killed bench leaves it in /var/tmp).
    let specs = default_workloads();
    let image = specs.iter().find(|s| s.kernel == "io").and_then(|s| {
        let dir = std::path::Path::new(vclab_bench::compare::io_image::DEFAULT_DIR);
        vclab_bench::compare::io_image::IoImage::create(dir, s.size, s.seed, None)
            .map_err(|e| eprintln!("io: skipped: {e}"))
            .ok()
    });
    env.io_disk = image.as_ref().map(|i| i.path().to_path_buf());
    // The restore row's snapshot (in the harness's entry, removed with it).
    let snapshot = vclab_bench::compare::vm_snapshot::dir_for(&env);
    env.snapshot = vclab_bench::compare::vm_snapshot::take(&env, &snapshot).map(|_| snapshot);
    for spec in specs {
        let mut g = c.benchmark_group(spec.kernel.as_str());
        g.sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for id in ROWS {
            let rt = runtime::of(*id);
            let io_skip = (spec.kernel == "io").then(|| rt.io_skip(&env)).flatten();
            if let Some(why) = rt.unavailable(&env).or(io_skip) {
                eprintln!("{}/{id}: skipped: {why}", spec.kernel);
                continue;
            }
            seq += 1;
            if let Err(f) = rt.measure(&env, &spec, seq) {
                eprintln!("{}/{id}: skipped: a trial run failed: {f}", spec.kernel);
                continue;
            }
            g.bench_function(BenchmarkId::from_parameter(id.name()), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        seq += 1;
                        // A failed run must not count as a fast one.
                        let s = rt
                            .measure(&env, &spec, seq)
                            .unwrap_or_else(|f| panic!("{id} {}: {f}", spec.kernel));
                        total += Duration::from_secs_f64(s.total_ms / 1e3);
                    }
                    total
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, workloads);
criterion_main!(benches);
