//! Docker's default profile compiled ahead of time for the lab's default
//! capability set ([`CapSet::lab_default`]), as Firecracker ships its filters
//! compiled at build time: a `--rootfs` container with the default policy
//! then installs these programs as they are, and the launcher neither
//! resolves the profile table nor runs seccompiler (less code and heap
//! touched, so a smaller peak RSS and a faster start).
//!
//! `default.bpf` is generated: the test below compiles the same profile with
//! [`compile`](super::compile) and fails when the two differ; run it with
//! `VCLAB_REGENERATE_SECCOMP=1` to write the file again
//! (`VCLAB_REGENERATE_SECCOMP=1 cargo test -p vclab-container --lib prebuilt`).
//!
//! Format, little-endian: the capability set (u64), the `seccomp(2)` flags
//! (u32), the number of programs (u32), then each program as its length in
//! instructions (u32) followed by its `struct sock_filter`s (code u16, jt u8,
//! jf u8, k u32).

use super::Filter;
use crate::caps::CapSet;

/// The compiled programs.
static DEFAULT: &[u8] = include_bytes!("default.bpf");

/// Reads little-endian fields off the front of a byte slice.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }
}

/// Decodes `bytes` (the format above) into the capability set and filter.
fn decode(bytes: &[u8]) -> Option<(u64, Filter)> {
    let mut r = Reader(bytes);
    let caps = u64::from_le_bytes(r.take()?);
    let flags = r.u32()?;
    let count = r.u32()?;
    let mut programs = Vec::with_capacity(count.min(64) as usize);
    for _ in 0..count {
        let len = r.u32()?;
        let mut prog = Vec::with_capacity(len.min(4096) as usize);
        for _ in 0..len {
            let [c0, c1, jt, jf, k0, k1, k2, k3] = r.take()?;
            prog.push(seccompiler::sock_filter {
                code: u16::from_le_bytes([c0, c1]),
                jt,
                jf,
                k: u32::from_le_bytes([k0, k1, k2, k3]),
            });
        }
        programs.push(prog);
    }
    r.0.is_empty().then_some((caps, Filter { programs, flags }))
}

/// The filter for the default policy, when the container holds exactly the
/// capabilities it was compiled for (`None` otherwise: compile at run time).
pub fn filter(caps: CapSet) -> Option<Filter> {
    decode(DEFAULT).and_then(|(for_caps, f)| (for_caps == caps.0).then_some(f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::{compile, default};

    /// `filter` for `caps` in the file's format.
    fn encode(caps: CapSet, f: &Filter) -> Vec<u8> {
        let mut out = caps.0.to_le_bytes().to_vec();
        out.extend(f.flags.to_le_bytes());
        out.extend((f.programs.len() as u32).to_le_bytes());
        for p in &f.programs {
            out.extend((p.len() as u32).to_le_bytes());
            for i in p {
                out.extend(i.code.to_le_bytes());
                out.extend([i.jt, i.jf]);
                out.extend(i.k.to_le_bytes());
            }
        }
        out
    }

    #[test]
    fn prebuilt_filter_is_the_default_profile_compiled_now() {
        let caps = CapSet::lab_default();
        let compiled = compile(&default::resolve(caps), "the default profile").unwrap();
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/seccomp/prebuilt/default.bpf"
        );
        if std::env::var_os("VCLAB_REGENERATE_SECCOMP").is_some() {
            std::fs::write(path, encode(caps, &compiled)).unwrap();
            return;
        }
        let prebuilt = filter(caps).expect("default.bpf decodes, for CapSet::lab_default()");
        assert!(
            prebuilt == compiled,
            "{path} is stale ({prebuilt:?}, the profile compiles to {compiled:?}): run \
             VCLAB_REGENERATE_SECCOMP=1 cargo test -p vclab-container --lib prebuilt"
        );
        assert_eq!(DEFAULT, encode(caps, &compiled).as_slice());
    }

    #[test]
    fn other_capability_sets_compile_at_run_time() {
        let mut caps = CapSet::lab_default();
        caps.0 |= 1 << 21; // CAP_SYS_ADMIN
        assert!(filter(caps).is_none());
    }

    #[test]
    fn a_truncated_or_padded_file_decodes_to_nothing() {
        assert!(decode(&DEFAULT[..DEFAULT.len().saturating_sub(1)]).is_none());
        let mut padded = DEFAULT.to_vec();
        padded.push(0);
        assert!(decode(&padded).is_none());
        assert!(decode(&[]).is_none());
    }
}
