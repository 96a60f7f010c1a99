//! Step 5b: the boot vCPU's state for the 64-bit boot protocol (Intel SDM
//! vol. 3A ch. 3–4 and 9.8.5 "Initializing IA-32e Mode"): a flat GDT, an
//! identity map of the first 4 GiB with 2 MiB pages, long mode with SSE
//! enabled, the FPU in its init state, the boot MSRs and the local APIC's
//! LINT0/LINT1 wiring.

use kvm_bindings::{kvm_fpu, kvm_lapic_state, kvm_msr_entry, kvm_regs, kvm_segment, kvm_sregs};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::layout;

/// Errors of writing descriptor tables and page tables into guest memory.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A guest memory write failed.
    #[error("cannot write the {what} at {addr:#x} into guest memory; use a larger --mem")]
    Write {
        /// What was written.
        what: &'static str,
        /// Where.
        addr: u64,
    },
}

/// GDT: null, 64-bit code (0x08), data (0x10), TSS (0x18).
pub const GDT: [u64; 4] = [
    gdt_entry(0, 0, 0),
    gdt_entry(0xa09b, 0, 0xfffff),
    gdt_entry(0xc093, 0, 0xfffff),
    gdt_entry(0x808b, 0, 0xfffff),
];
/// Code segment selector.
pub const CODE_SELECTOR: u16 = 0x08;
/// Data segment selector.
pub const DATA_SELECTOR: u16 = 0x10;
/// TSS selector.
pub const TSS_SELECTOR: u16 = 0x18;

/// CR0 bits: protection, monitor coprocessor (SSE on, EM clear), extension
/// type, native FPU errors, paging.
pub const CR0_PE: u64 = 1 << 0;
/// CR0.MP.
pub const CR0_MP: u64 = 1 << 1;
/// CR0.EM (x87 emulation; kept clear).
pub const CR0_EM: u64 = 1 << 2;
/// CR0.ET.
pub const CR0_ET: u64 = 1 << 4;
/// CR0.NE.
pub const CR0_NE: u64 = 1 << 5;
/// CR0.PG.
pub const CR0_PG: u64 = 1 << 31;
/// CR4.PAE (required for long mode).
pub const CR4_PAE: u64 = 1 << 5;
/// CR4.OSFXSR (FXSAVE and SSE allowed).
pub const CR4_OSFXSR: u64 = 1 << 9;
/// CR4.OSXMMEXCPT (unmasked SIMD exceptions as #XM).
pub const CR4_OSXMMEXCPT: u64 = 1 << 10;
/// EFER.LME.
pub const EFER_LME: u64 = 1 << 8;
/// EFER.LMA.
pub const EFER_LMA: u64 = 1 << 10;

/// Page-table entry bits: present, writable, 2 MiB page.
const PTE_PRESENT_RW: u64 = 0x3;
const PTE_PAGE_SIZE: u64 = 0x80;

/// Encodes a GDT descriptor: `flags` holds the access byte (bits 0–7) and the
/// G/D/L/AVL nibble (bits 12–15).
pub const fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    let base = base as u64;
    let limit = limit as u64;
    let flags = flags as u64;
    ((base & 0xff00_0000) << 32)
        | ((flags & 0xf0ff) << 40)
        | ((limit & 0x000f_0000) << 32)
        | ((base & 0x00ff_ffff) << 16)
        | (limit & 0xffff)
}

/// Decodes a GDT descriptor into the KVM segment it describes.
pub fn segment(entry: u64, selector: u16) -> kvm_segment {
    let base = ((entry >> 16) & 0x00ff_ffff) | ((entry >> 32) & 0xff00_0000);
    let raw_limit = (entry & 0xffff) | ((entry >> 32) & 0x000f_0000);
    let access = ((entry >> 40) & 0xff) as u8;
    let high = ((entry >> 52) & 0xf) as u8;
    let g = (high >> 3) & 1;
    let limit = if g == 1 {
        (raw_limit << 12) | 0xfff
    } else {
        raw_limit
    };
    let present = (access >> 7) & 1;
    kvm_segment {
        base,
        limit: limit as u32,
        selector,
        type_: access & 0xf,
        present,
        dpl: (access >> 5) & 3,
        db: (high >> 2) & 1,
        s: (access >> 4) & 1,
        l: (high >> 1) & 1,
        g,
        avl: high & 1,
        unusable: u8::from(present == 0),
        padding: 0,
    }
}

/// Writes the GDT and an empty IDT.
pub fn write_gdt_idt(mem: &GuestMemoryMmap) -> Result<(), Error> {
    for (i, entry) in GDT.iter().enumerate() {
        let addr = layout::GDT_START + 8 * i as u64;
        mem.write_obj(*entry, GuestAddress(addr))
            .map_err(|_| Error::Write { what: "GDT", addr })?;
    }
    mem.write_obj(0u64, GuestAddress(layout::IDT_START))
        .map_err(|_| Error::Write {
            what: "IDT",
            addr: layout::IDT_START,
        })
}

/// Writes the identity page tables: PML4 → one PDPT → `PDE_COUNT` page
/// directories of 512 × 2 MiB pages each.
pub fn write_page_tables(mem: &GuestMemoryMmap) -> Result<(), Error> {
    let err = |addr| Error::Write {
        what: "page tables",
        addr,
    };
    mem.write_obj(
        layout::PDPTE_START | PTE_PRESENT_RW,
        GuestAddress(layout::PML4_START),
    )
    .map_err(|_| err(layout::PML4_START))?;
    for dir in 0..layout::PDE_COUNT {
        let pde_page = layout::PDE_START + dir * 0x1000;
        let at = layout::PDPTE_START + dir * 8;
        mem.write_obj(pde_page | PTE_PRESENT_RW, GuestAddress(at))
            .map_err(|_| err(at))?;
        let mut page = [0u8; 4096];
        for (i, slot) in page.chunks_exact_mut(8).enumerate() {
            let phys = ((dir << 9) + i as u64) << 21;
            slot.copy_from_slice(&(phys | PTE_PRESENT_RW | PTE_PAGE_SIZE).to_le_bytes());
        }
        mem.write_slice(&page, GuestAddress(pde_page))
            .map_err(|_| err(pde_page))?;
    }
    Ok(())
}

/// The special registers for 64-bit entry, starting from the vCPU's own.
pub fn long_mode_sregs(mut sregs: kvm_sregs) -> kvm_sregs {
    let code = segment(GDT[1], CODE_SELECTOR);
    let data = segment(GDT[2], DATA_SELECTOR);
    let tss = segment(GDT[3], TSS_SELECTOR);
    sregs.gdt.base = layout::GDT_START;
    sregs.gdt.limit = (GDT.len() * 8 - 1) as u16;
    sregs.idt.base = layout::IDT_START;
    sregs.idt.limit = 7;
    sregs.cs = code;
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = tss;
    sregs.cr0 = (sregs.cr0 | CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_PG) & !CR0_EM;
    sregs.cr3 = layout::PML4_START;
    sregs.cr4 |= CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
    sregs.efer |= EFER_LME | EFER_LMA;
    sregs
}

/// The general registers: entry point, boot stack, zero page in RSI.
pub fn boot_regs(entry: u64) -> kvm_regs {
    kvm_regs {
        rflags: 0x2,
        rip: entry,
        rsp: layout::BOOT_STACK_POINTER,
        rbp: layout::BOOT_STACK_POINTER,
        rsi: layout::ZERO_PAGE_START,
        ..Default::default()
    }
}

/// The FPU init state: control word 0x37f (all exceptions masked), MXCSR
/// 0x1f80 (all SIMD exceptions masked).
pub fn boot_fpu() -> kvm_fpu {
    kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    }
}

/// The boot MSRs (as Firecracker sets them): SYSENTER and SYSCALL MSRs
/// cleared, TSC at 0, fast strings on, MTRRs enabled with write-back default.
pub fn boot_msrs() -> Vec<kvm_msr_entry> {
    const MSR_IA32_TSC: u32 = 0x10;
    const MSR_IA32_SYSENTER_CS: u32 = 0x174;
    const MSR_IA32_SYSENTER_ESP: u32 = 0x175;
    const MSR_IA32_SYSENTER_EIP: u32 = 0x176;
    const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
    const MSR_MTRR_DEF_TYPE: u32 = 0x2ff;
    const MSR_STAR: u32 = 0xc000_0081;
    const MSR_LSTAR: u32 = 0xc000_0082;
    const MSR_CSTAR: u32 = 0xc000_0083;
    const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
    const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
    const MISC_ENABLE_FAST_STRING: u64 = 1;
    const MTRR_ENABLE_WB: u64 = (1 << 11) | 6;
    [
        (MSR_IA32_SYSENTER_CS, 0),
        (MSR_IA32_SYSENTER_ESP, 0),
        (MSR_IA32_SYSENTER_EIP, 0),
        (MSR_STAR, 0),
        (MSR_CSTAR, 0),
        (MSR_KERNEL_GS_BASE, 0),
        (MSR_SYSCALL_MASK, 0),
        (MSR_LSTAR, 0),
        (MSR_IA32_TSC, 0),
        (MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING),
        (MSR_MTRR_DEF_TYPE, MTRR_ENABLE_WB),
    ]
    .into_iter()
    .map(|(index, data)| kvm_msr_entry {
        index,
        data,
        ..Default::default()
    })
    .collect()
}

/// LAPIC register offsets of LVT LINT0 and LINT1.
const APIC_LVT0: usize = 0x350;
const APIC_LVT1: usize = 0x360;
/// LVT delivery modes.
const APIC_MODE_NMI: u32 = 0x4;
const APIC_MODE_EXTINT: u32 = 0x7;

fn lapic_reg(lapic: &kvm_lapic_state, off: usize) -> u32 {
    let b = &lapic.regs[off..off + 4];
    u32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8])
}

fn set_lapic_reg(lapic: &mut kvm_lapic_state, off: usize, value: u32) {
    for (i, byte) in value.to_le_bytes().iter().enumerate() {
        lapic.regs[off + i] = *byte as _;
    }
}

/// Wires LINT0 as ExtINT (the PIC) and LINT1 as NMI.
pub fn set_lint(lapic: &mut kvm_lapic_state) {
    let set_mode = |v: u32, mode: u32| (v & !0x700) | (mode << 8);
    let lvt0 = lapic_reg(lapic, APIC_LVT0);
    set_lapic_reg(lapic, APIC_LVT0, set_mode(lvt0, APIC_MODE_EXTINT));
    let lvt1 = lapic_reg(lapic, APIC_LVT1);
    set_lapic_reg(lapic, APIC_LVT1, set_mode(lvt1, APIC_MODE_NMI));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap()
    }

    #[test]
    fn gdt_round_trip() {
        let m = mem();
        write_gdt_idt(&m).unwrap();
        let back: [u64; 4] =
            [0, 1, 2, 3].map(|i| m.read_obj(GuestAddress(layout::GDT_START + 8 * i)).unwrap());
        assert_eq!(back, GDT);
        assert_eq!(GDT[1], 0x00af_9b00_0000_ffff);
        assert_eq!(GDT[2], 0x00cf_9300_0000_ffff);
        let code = segment(GDT[1], CODE_SELECTOR);
        assert_eq!(
            (code.l, code.db, code.g, code.present, code.s, code.type_),
            (1, 0, 1, 1, 1, 0xb)
        );
        assert_eq!(code.limit, 0xffff_ffff);
        let data = segment(GDT[2], DATA_SELECTOR);
        assert_eq!((data.l, data.db, data.type_, data.unusable), (0, 1, 3, 0));
        let null = segment(GDT[0], 0);
        assert_eq!(null.unusable, 1);
        let idt: u64 = m.read_obj(GuestAddress(layout::IDT_START)).unwrap();
        assert_eq!(idt, 0);
    }

    #[test]
    fn page_tables_identity_map_4gib() {
        let m = mem();
        write_page_tables(&m).unwrap();
        let pml4: u64 = m.read_obj(GuestAddress(layout::PML4_START)).unwrap();
        assert_eq!(pml4, layout::PDPTE_START | 3);
        // Walk a few addresses through the tables.
        for virt in [
            0u64,
            0x1f_ffff,
            0x20_0000,
            0x4000_1234,
            0xcfff_ffff,
            0xffff_ffff,
        ] {
            let pdpte: u64 = m
                .read_obj(GuestAddress(layout::PDPTE_START + ((virt >> 30) & 511) * 8))
                .unwrap();
            assert_eq!(pdpte & 3, 3);
            let pde: u64 = m
                .read_obj(GuestAddress((pdpte & !0xfff) + ((virt >> 21) & 511) * 8))
                .unwrap();
            assert_eq!(pde & 0x83, 0x83);
            assert_eq!((pde & !0x1f_ffff & !0xfff) | (virt & 0x1f_ffff), virt);
        }
    }

    #[test]
    fn sregs_fpu_regs() {
        let s = long_mode_sregs(kvm_sregs {
            cr0: CR0_EM,
            ..Default::default()
        });
        assert_eq!(s.cr0 & CR0_EM, 0);
        assert_ne!(s.cr0 & CR0_MP, 0);
        assert_ne!(s.cr0 & CR0_PG, 0);
        assert_eq!(
            s.cr4 & (CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT),
            CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT
        );
        assert_eq!(s.efer & (EFER_LME | EFER_LMA), EFER_LME | EFER_LMA);
        assert_eq!(s.cr3, layout::PML4_START);
        assert_eq!(
            (s.cs.selector, s.ss.selector, s.tr.selector),
            (8, 0x10, 0x18)
        );
        let f = boot_fpu();
        assert_eq!((f.fcw, f.mxcsr), (0x37f, 0x1f80));
        let r = boot_regs(0x100000);
        assert_eq!(
            (r.rip, r.rsi, r.rflags),
            (0x100000, layout::ZERO_PAGE_START, 2)
        );
        assert_eq!(boot_msrs().len(), 11);
    }

    #[test]
    fn lint_wiring() {
        let mut l = kvm_lapic_state::default();
        set_lapic_reg(&mut l, APIC_LVT0, 0x0001_0700);
        set_lint(&mut l);
        assert_eq!(lapic_reg(&l, APIC_LVT0), 0x0001_0700);
        assert_eq!(lapic_reg(&l, APIC_LVT1), 0x400);
    }
}
