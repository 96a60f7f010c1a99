//! Kernel-level tests: determinism, seed sensitivity, alignment independence, op counts.

use super::*;
use crate::sha256::Sha256;

/// Small params so the tests stay fast in debug builds.
fn small(kernel: Kernel, seed: u64) -> Params {
    Params {
        kernel,
        size: 64 * 1024,
        iterations: 3,
        seed,
    }
}

fn run_vec(p: &Params) -> Outcome {
    let mut scratch = vec![0u8; p.scratch_len().unwrap()];
    run(p, &mut scratch).unwrap()
}

#[test]
fn same_params_same_checksum() {
    for k in Kernel::ALL {
        let p = small(k, 42);
        assert_eq!(run_vec(&p), run_vec(&p), "{k}");
    }
}

#[test]
fn different_seed_different_checksum() {
    for k in Kernel::ALL {
        let a = run_vec(&small(k, 1));
        let b = run_vec(&small(k, 2));
        assert_ne!(a.checksum, b.checksum, "{k}");
        assert_eq!(a.ops, b.ops, "{k}");
    }
}

#[test]
fn different_iterations_different_checksum() {
    for k in Kernel::ALL {
        let mut p = small(k, 5);
        let a = run_vec(&p);
        p.iterations += 1;
        assert_ne!(a.checksum, run_vec(&p).checksum, "{k}");
    }
}

#[test]
fn checksum_ignores_scratch_alignment_and_contents() {
    for k in Kernel::ALL {
        let p = small(k, 9);
        let expected = run_vec(&p);
        let mut big = vec![0xa5u8; p.scratch_len().unwrap() + 64];
        for shift in [1, 3, 8, 33] {
            let got = run(&p, &mut big[shift..]).unwrap();
            assert_eq!(got, expected, "{k} shifted by {shift}");
        }
    }
}

#[test]
fn ops_counts() {
    let cpu = small(Kernel::Cpu, 0);
    assert_eq!(run_vec(&cpu).ops, cpu.size * cpu.iterations);
    let bw = small(Kernel::MemBw, 0);
    assert_eq!(run_vec(&bw).ops, (bw.size / 24) * 40 * bw.iterations);
    let lat = small(Kernel::MemLat, 0);
    assert_eq!(run_vec(&lat).ops, (lat.size / 64) * lat.iterations);
}

#[test]
fn cpu_checksum_is_the_chained_digest() {
    // Recompute the cpu kernel independently from its definition.
    let p = Params {
        kernel: Kernel::Cpu,
        size: 4096,
        iterations: 2,
        seed: 77,
    };
    let mut buf = vec![0u8; 4096];
    prng::SplitMix64::new(77).fill(&mut buf);
    let first = Sha256::digest(&buf);
    buf[..32].copy_from_slice(&first);
    let second = Sha256::digest(&buf);
    assert_eq!(run_vec(&p).checksum, Checksum(second));
}

#[test]
fn mem_lat_visits_one_cycle_through_every_node() {
    // Rebuild the permutation the kernel uses and check it is a single cycle (Sattolo).
    let p = small(Kernel::MemLat, 3);
    let mut scratch = vec![0u8; p.scratch_len().unwrap()];
    run(&p, &mut scratch).unwrap();
    let offset = scratch.as_ptr().align_offset(64);
    let buf = &scratch[offset..offset + p.size as usize];
    let nodes = buf.len() / 64;
    let mut seen = vec![false; nodes];
    let mut at = 0usize;
    for _ in 0..nodes {
        let node = at / 64;
        assert!(!seen[node], "node {node} visited twice");
        seen[node] = true;
        at = u64::from_le_bytes(buf[at..at + 8].try_into().unwrap()) as usize;
        assert_eq!(at % 64, 0);
    }
    assert_eq!(at, 0, "the chase returns to the start after one lap");
    assert!(seen.iter().all(|s| *s));
}

#[test]
fn bad_params_and_short_scratch_are_errors() {
    let mut p = small(Kernel::Cpu, 0);
    let mut scratch = vec![0u8; p.scratch_len().unwrap() - 1];
    assert!(matches!(
        run(&p, &mut scratch),
        Err(ParamsError::ScratchTooSmall { .. })
    ));
    p.size = MAX_SIZE + 1;
    assert!(matches!(
        run(&p, &mut scratch),
        Err(ParamsError::SizeTooLarge { .. })
    ));
}

#[test]
fn odd_sizes_work() {
    for k in Kernel::ALL {
        let p = Params {
            kernel: k,
            size: MIN_SIZE + 13,
            iterations: 1,
            seed: 0,
        };
        assert!(run_vec(&p).ops > 0, "{k}");
    }
}
