//! Golden checksums: one pinned result per kernel at its default parameters.
//!
//! The other checksum tests compare two runtimes of the same code (host binary vs unikernel,
//! std vs freestanding build), so a change to a kernel's output passes them when host and guest
//! change together. These values do not move with the code: a failure here means the kernel's
//! output (or its defaults) changed, which breaks comparisons with every earlier `results.json`.
//! If the change is intended, say so in the commit and update the values.
//!
//! How they were obtained (2026-12-01, commit c8cd3f0): `vclab-workload run cpu|mem-bw|mem-lat`
//! (no options: the defaults) built from the workspace, and the unikernel guest under QEMU
//! microvm with `vclab.kernel=cpu|mem-bw|mem-lat`; both printed these checksums and ops.

use vclab_workload::{run, Kernel, Params};

/// (kernel, default size, default iterations, checksum, ops) at the default seed 1.
const GOLDEN: [(Kernel, u64, u64, &str, u64); 3] = [
    (
        Kernel::Cpu,
        1 << 20,
        24,
        "ac9cd39fcce7062eb787268bbf3dd133d4b636f35828e92af00b23295146d297",
        25_165_824,
    ),
    (
        Kernel::MemBw,
        16 << 20,
        64,
        "580d81a3288ad45a67151d21363e62f8ea77f1da8e84e07776f4905407ef8160",
        1_789_568_000,
    ),
    (
        Kernel::MemLat,
        8 << 20,
        6,
        "dfff754889f0e070ea1cc010d37b4799ae491ca17898db085dd1738134973a06",
        786_432,
    ),
];

#[test]
fn defaults_are_the_pinned_ones() {
    for (kernel, size, iterations, _, _) in GOLDEN {
        assert_eq!(
            Params::new(kernel),
            Params {
                kernel,
                size,
                iterations,
                seed: 1,
            },
            "{kernel}: the defaults changed; the golden checksums below are for the old ones"
        );
    }
}

#[test]
fn every_kernel_gives_its_golden_checksum() {
    for (kernel, size, iterations, checksum, ops) in GOLDEN {
        let params = Params {
            kernel,
            size,
            iterations,
            seed: 1,
        };
        let mut scratch = vec![0u8; params.scratch_len().unwrap()];
        let outcome = run(&params, &mut scratch).unwrap();
        assert_eq!(
            outcome.checksum.to_string(),
            checksum,
            "{kernel}: the kernel's output changed"
        );
        assert_eq!(outcome.ops, ops, "{kernel}: the op count changed");
    }
}

/// The io kernel at its defaults (16 MiB region, 1,024 random reads, seed 1) on the 16 MiB image
/// of `vclab-workload io-image --size 16777216 --seed 1`: the host binary on that file (O_DIRECT)
/// and the unikernel under QEMU on it as a virtio-blk disk printed this checksum and op count
/// (2026-12-01).
const GOLDEN_IO: (&str, u64) = (
    "468edc982c95608757297e655b14889b117062a3004ba862172e2e66ab4cf1ec",
    5184,
);

#[test]
fn io_gives_its_golden_checksum_on_the_default_image() {
    use vclab_workload::io::{image_block, SliceDisk, BLOCK_SIZE};
    let params = Params::new(Kernel::Io);
    assert_eq!(
        (params.size, params.iterations, params.seed),
        (16 << 20, 1024, 1)
    );
    let mut image = vec![0u8; params.size as usize];
    for (b, block) in image.chunks_exact_mut(BLOCK_SIZE).enumerate() {
        image_block(1, b as u64, block);
    }
    let mut scratch = vec![0u8; params.scratch_len().unwrap()];
    let outcome = vclab_workload::run_io(
        &params,
        &mut scratch,
        &mut SliceDisk::new(&mut image),
        &mut || 0u64,
    )
    .unwrap();
    assert_eq!(
        outcome.checksum.to_string(),
        GOLDEN_IO.0,
        "io: the kernel's output changed"
    );
    assert_eq!(outcome.ops, GOLDEN_IO.1, "io: the op count changed");
}
