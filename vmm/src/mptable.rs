//! Step 4 (SMP): the Intel MultiProcessor Specification 1.4 tables that tell
//! the guest how many CPUs it has: a floating pointer and a configuration
//! table with one processor entry per vCPU, the ISA bus, the IOAPIC, its 24
//! interrupt lines and the two local APIC lines. Written at `EBDA_START`,
//! where Linux scans for them.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::layout;

/// Processor, bus, IOAPIC, I/O interrupt, local interrupt entry types.
const ENTRY_PROCESSOR: u8 = 0;
const ENTRY_BUS: u8 = 1;
const ENTRY_IOAPIC: u8 = 2;
const ENTRY_IO_INTERRUPT: u8 = 3;
const ENTRY_LOCAL_INTERRUPT: u8 = 4;
/// Interrupt types: vectored, NMI, ExtINT (through the PIC).
const INT_TYPE_INT: u8 = 0;
const INT_TYPE_NMI: u8 = 1;
const INT_TYPE_EXTINT: u8 = 3;
/// Processor flags: enabled, bootstrap processor.
const CPU_ENABLED: u8 = 1;
const CPU_BSP: u8 = 2;
/// Local APIC and IOAPIC versions KVM emulates.
const APIC_VERSION: u8 = 0x14;
const IOAPIC_VERSION: u8 = 0x11;
/// CPU signature (family 6) and feature flags (FPU, APIC) of processor entries.
const CPU_SIGNATURE: u32 = 0x600;
const CPU_FEATURES: u32 = 0x201;
/// The IOAPIC's interrupt lines.
const IOAPIC_PINS: u8 = 24;
/// Size of the floating pointer structure.
const FLOATING_POINTER_SIZE: usize = 16;
/// Most vCPUs whose entries fit in the EBDA area.
pub const MAX_VCPUS: u32 = 32;

/// Errors of writing the MP table.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Too many vCPUs for the table area.
    #[error("{0} vCPUs do not fit in the MP table; use --vcpus {MAX_VCPUS} or fewer")]
    TooManyVcpus(u32),
    /// No vCPU.
    #[error("a VM needs at least one vCPU; use --vcpus 1 or more")]
    NoVcpus,
    /// Guest memory write failed.
    #[error("cannot write the MP table at {0:#x} into guest memory")]
    Write(u64),
}

/// Makes the byte sum of `bytes` zero by storing the right value at `at`.
fn fix_checksum(bytes: &mut [u8], at: usize) {
    bytes[at] = 0;
    let sum = bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b));
    bytes[at] = 0u8.wrapping_sub(sum);
}

/// The bytes of the floating pointer followed by the configuration table,
/// for `vcpus` vCPUs, to be placed at `base`.
pub fn build(vcpus: u32, base: u64) -> Result<Vec<u8>, Error> {
    if vcpus == 0 {
        return Err(Error::NoVcpus);
    }
    if vcpus > MAX_VCPUS {
        return Err(Error::TooManyVcpus(vcpus));
    }
    let ioapic_id = vcpus as u8 + 1;
    let mut entries: Vec<u8> = Vec::new();
    let mut count: u16 = 0;
    for id in 0..vcpus as u8 {
        entries.extend_from_slice(&[ENTRY_PROCESSOR, id, APIC_VERSION]);
        entries.push(CPU_ENABLED | if id == 0 { CPU_BSP } else { 0 });
        entries.extend_from_slice(&CPU_SIGNATURE.to_le_bytes());
        entries.extend_from_slice(&CPU_FEATURES.to_le_bytes());
        entries.extend_from_slice(&[0; 8]);
        count += 1;
    }
    entries.extend_from_slice(&[ENTRY_BUS, 0]);
    entries.extend_from_slice(b"ISA   ");
    count += 1;
    entries.extend_from_slice(&[ENTRY_IOAPIC, ioapic_id, IOAPIC_VERSION, 1]);
    entries.extend_from_slice(&layout::IOAPIC_ADDR.to_le_bytes());
    count += 1;
    for irq in 0..IOAPIC_PINS {
        // type, irq type, flags (bus default polarity/trigger), bus, bus irq, apic, pin
        entries.extend_from_slice(&[
            ENTRY_IO_INTERRUPT,
            INT_TYPE_INT,
            0,
            0,
            0,
            irq,
            ioapic_id,
            irq,
        ]);
        count += 1;
    }
    entries.extend_from_slice(&[ENTRY_LOCAL_INTERRUPT, INT_TYPE_EXTINT, 0, 0, 0, 0, 0, 0]);
    entries.extend_from_slice(&[ENTRY_LOCAL_INTERRUPT, INT_TYPE_NMI, 0, 0, 0, 0, 0xff, 1]);
    count += 2;

    let table_addr = base + FLOATING_POINTER_SIZE as u64;
    let mut table: Vec<u8> = Vec::with_capacity(44 + entries.len());
    table.extend_from_slice(b"PCMP");
    table.extend_from_slice(&((44 + entries.len()) as u16).to_le_bytes());
    table.push(4); // spec revision 1.4
    table.push(0); // checksum, fixed below
    table.extend_from_slice(b"VCLAB   ");
    table.extend_from_slice(b"MICROVM     ");
    table.extend_from_slice(&0u32.to_le_bytes()); // OEM table pointer
    table.extend_from_slice(&0u16.to_le_bytes()); // OEM table size
    table.extend_from_slice(&count.to_le_bytes());
    table.extend_from_slice(&layout::APIC_ADDR.to_le_bytes());
    table.extend_from_slice(&0u16.to_le_bytes()); // extended table length
    table.push(0); // extended table checksum
    table.push(0); // reserved
    table.extend_from_slice(&entries);
    fix_checksum(&mut table, 7);

    let mut out = Vec::with_capacity(FLOATING_POINTER_SIZE + table.len());
    out.extend_from_slice(b"_MP_");
    out.extend_from_slice(&(table_addr as u32).to_le_bytes());
    out.push(1); // length in 16-byte units
    out.push(4); // spec revision 1.4
    out.push(0); // checksum, fixed below
    out.extend_from_slice(&[0; 5]); // feature bytes: 0 = a config table follows
    fix_checksum(&mut out, 10);
    out.extend_from_slice(&table);
    Ok(out)
}

/// Writes the MP tables for `vcpus` vCPUs at `EBDA_START`.
pub fn write(mem: &GuestMemoryMmap, vcpus: u32) -> Result<(), Error> {
    let bytes = build(vcpus, layout::EBDA_START)?;
    if layout::EBDA_START + bytes.len() as u64 > layout::EBDA_END {
        return Err(Error::TooManyVcpus(vcpus));
    }
    mem.write_slice(&bytes, GuestAddress(layout::EBDA_START))
        .map_err(|_| Error::Write(layout::EBDA_START))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(b: &[u8]) -> u8 {
        b.iter().fold(0u8, |a, x| a.wrapping_add(*x))
    }

    #[test]
    fn tables_for_one_to_four_vcpus() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        for n in 1..=4u32 {
            write(&mem, n).unwrap();
            let mut fp = [0u8; 16];
            mem.read_slice(&mut fp, GuestAddress(layout::EBDA_START))
                .unwrap();
            assert_eq!(&fp[..4], b"_MP_");
            assert_eq!(sum(&fp), 0, "floating pointer checksum");
            let table_addr = u32::from_le_bytes(fp[4..8].try_into().unwrap()) as u64;
            assert_eq!(table_addr, layout::EBDA_START + 16);
            let mut hdr = [0u8; 44];
            mem.read_slice(&mut hdr, GuestAddress(table_addr)).unwrap();
            assert_eq!(&hdr[..4], b"PCMP");
            let len = u16::from_le_bytes([hdr[4], hdr[5]]) as usize;
            let mut table = vec![0u8; len];
            mem.read_slice(&mut table, GuestAddress(table_addr))
                .unwrap();
            assert_eq!(sum(&table), 0, "config table checksum");
            let count = u16::from_le_bytes([table[34], table[35]]);
            assert_eq!(count as u32, n + 1 + 1 + 24 + 2);
            // Walk the entries.
            let mut off = 44;
            let mut cpus = Vec::new();
            let mut kinds = [0u32; 5];
            while off < len {
                let kind = table[off];
                kinds[kind as usize] += 1;
                if kind == ENTRY_PROCESSOR {
                    cpus.push((table[off + 1], table[off + 3]));
                    off += 20;
                } else {
                    off += 8;
                }
            }
            assert_eq!(off, len);
            assert_eq!(kinds, [n, 1, 1, 24, 2]);
            assert_eq!(cpus[0], (0, CPU_ENABLED | CPU_BSP));
            for (i, c) in cpus.iter().enumerate().skip(1) {
                assert_eq!(*c, (i as u8, CPU_ENABLED));
            }
            assert!(layout::EBDA_START + 16 + len as u64 <= layout::EBDA_END);
        }
    }

    #[test]
    fn bad_counts() {
        assert!(matches!(build(0, 0), Err(Error::NoVcpus)));
        assert!(matches!(build(33, 0), Err(Error::TooManyVcpus(33))));
        assert!(build(MAX_VCPUS, layout::EBDA_START).unwrap().len() <= 1024);
    }
}
