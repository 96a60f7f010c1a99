//! Step 5a: CPUID. The VMM starts from KVM_GET_SUPPORTED_CPUID and changes
//! only what describes this VM's topology (Intel SDM vol. 2A, CPUID):
//! - leaf 0x1: EBX[31:24] initial APIC id = vCPU index, EBX[23:16] logical
//!   processor count, EDX[28] HTT when more than one vCPU, ECX[31] hypervisor;
//! - leaf 0x4: EAX[31:26] cores per package − 1;
//! - leaves 0xB and 0x1F: one SMT level (1 thread) and one core level
//!   (`vcpus` cores), EDX = x2APIC id.
//!
//! On kvm_pvm the guest sees the host's CPUID whatever is set here; the call
//! still has to succeed.

use kvm_bindings::kvm_cpuid_entry2;

/// Errors of setting up CPUID.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// KVM_GET_SUPPORTED_CPUID failed.
    #[error("cannot read the CPUID KVM supports: {0}")]
    Supported(kvm_ioctls::Error),
    /// KVM_SET_CPUID2 failed.
    #[error("cannot set CPUID of vCPU {vcpu}: {err}")]
    Set {
        /// vCPU index.
        vcpu: u32,
        /// The ioctl error.
        err: kvm_ioctls::Error,
    },
}

const LEAF_FEATURES: u32 = 0x1;
const LEAF_CACHE: u32 = 0x4;
const LEAF_TOPOLOGY: u32 = 0xb;
const LEAF_TOPOLOGY_V2: u32 = 0x1f;
const ECX_HYPERVISOR: u32 = 1 << 31;
const EDX_HTT: u32 = 1 << 28;
/// Topology level types (CPUID.0BH:ECX[15:8]).
const LEVEL_SMT: u32 = 1;
const LEVEL_CORE: u32 = 2;

/// Number of bits needed to number `n` items (ceil(log2 n)).
fn id_bits(n: u32) -> u32 {
    if n <= 1 {
        0
    } else {
        32 - (n - 1).leading_zeros()
    }
}

/// Rewrites the topology leaves of `entries` for vCPU `vcpu` of `vcpus`.
pub fn filter(entries: &mut [kvm_cpuid_entry2], vcpu: u32, vcpus: u32) {
    for e in entries.iter_mut() {
        match e.function {
            LEAF_FEATURES => {
                e.ebx = (e.ebx & 0x0000_ffff) | (vcpu << 24) | ((vcpus.min(255)) << 16);
                e.ecx |= ECX_HYPERVISOR;
                if vcpus > 1 {
                    e.edx |= EDX_HTT;
                } else {
                    e.edx &= !EDX_HTT;
                }
            }
            LEAF_CACHE => {
                e.eax = (e.eax & 0x03ff_ffff) | ((vcpus.saturating_sub(1) & 0x3f) << 26);
            }
            LEAF_TOPOLOGY | LEAF_TOPOLOGY_V2 => {
                e.edx = vcpu;
                match e.index {
                    0 => {
                        e.eax = 0;
                        e.ebx = 1;
                        e.ecx = (LEVEL_SMT << 8) | e.index;
                    }
                    1 => {
                        e.eax = id_bits(vcpus);
                        e.ebx = vcpus;
                        e.ecx = (LEVEL_CORE << 8) | e.index;
                    }
                    _ => {
                        e.eax = 0;
                        e.ebx = 0;
                        e.ecx = e.index;
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(function: u32, index: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            index,
            eax: 0xffff_ffff,
            ebx: 0xffff_ffff,
            ecx: 0x1234,
            edx: 0x5678,
            ..Default::default()
        }
    }

    #[test]
    fn topology_per_vcpu() {
        for vcpus in 1..=4u32 {
            for id in 0..vcpus {
                let mut e = vec![
                    entry(1, 0),
                    entry(4, 0),
                    entry(0xb, 0),
                    entry(0xb, 1),
                    entry(0xb, 2),
                    entry(7, 0),
                ];
                filter(&mut e, id, vcpus);
                assert_eq!(e[0].ebx >> 24, id);
                assert_eq!((e[0].ebx >> 16) & 0xff, vcpus);
                assert_eq!(e[0].ebx & 0xffff, 0xffff);
                assert_ne!(e[0].ecx & ECX_HYPERVISOR, 0);
                assert_eq!(e[0].edx & EDX_HTT != 0, vcpus > 1);
                assert_eq!(e[1].eax >> 26, vcpus - 1);
                assert_eq!((e[2].eax, e[2].ebx, e[2].ecx, e[2].edx), (0, 1, 0x100, id));
                assert_eq!(e[3].ebx, vcpus);
                assert_eq!(e[3].ecx, 0x201);
                assert!(1u32 << e[3].eax >= vcpus);
                assert_eq!((e[4].ebx, e[4].ecx), (0, 2));
                // Other leaves untouched.
                assert_eq!(
                    (e[5].eax, e[5].ecx, e[5].edx),
                    (0xffff_ffff, 0x1234, 0x5678)
                );
            }
        }
    }

    #[test]
    fn bits() {
        assert_eq!(
            [id_bits(1), id_bits(2), id_bits(3), id_bits(4), id_bits(5)],
            [0, 1, 2, 2, 3]
        );
    }
}
