//! Round trips on the real /dev/kvm and on files: a running VM saved and restored into a
//! fresh one, the memory file in every restore mode, and the manifest's refusals.

use std::path::Path;

use kvm_bindings::{kvm_msr_entry, Msrs, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::format::{self, Error as FormatError, Expect, State};
use super::memory::{self, RestoreMode, SaveMode};
use super::{vcpu, vm, DeviceStates};
use crate::{kvm, memory as guest_memory, regs};

const MIB: usize = 1 << 20;
/// Where the test guest's code sits (free in the boot layout: above the page tables).
const CODE: u64 = 0x1_0000;
/// Where it stores its result (in the second MiB).
const DATA: u64 = 0x18_0000;
/// add rax, rbx; out 0x80, al; add rax, rbx; mov [DATA], rax; out 0x81, al
const PROGRAM: [u8; 18] = [
    0x48, 0x01, 0xd8, 0xe6, 0x80, 0x48, 0x01, 0xd8, 0x48, 0x89, 0x04, 0x25, 0x00, 0x00, 0x18, 0x00,
    0xe6, 0x81,
];
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
const MSR_IA32_TSC: u32 = 0x10;

/// A VM with guest memory registered, irqchip + PIT, one vCPU.
fn new_vm(kvm: &Kvm, mem: &GuestMemoryMmap) -> (VmFd, VcpuFd) {
    let vm = kvm::create_vm(kvm).unwrap();
    guest_memory::register(&vm, mem).unwrap();
    kvm::create_irqchip(&vm).unwrap();
    let fd = vm.create_vcpu(0).unwrap();
    (vm, fd)
}

fn get_msr(fd: &VcpuFd, index: u32) -> u64 {
    let mut msrs = Msrs::from_entries(&[kvm_msr_entry {
        index,
        ..Default::default()
    }])
    .unwrap();
    assert_eq!(fd.get_msrs(&mut msrs).unwrap(), 1, "MSR {index:#x}");
    msrs.as_slice()[0].data
}

fn run_to_port(fd: &mut VcpuFd) -> u16 {
    loop {
        match fd.run().unwrap() {
            VcpuExit::IoOut(port, _) => return port,
            VcpuExit::Intr => continue,
            other => panic!("unexpected exit {other:?}"),
        }
    }
}

/// Boots the test program to its first `out`, with known registers and MSRs.
fn booted(kvm: &Kvm) -> (GuestMemoryMmap, VmFd, VcpuFd) {
    let mem = guest_memory::create(2).unwrap();
    regs::write_gdt_idt(&mem).unwrap();
    regs::write_page_tables(&mem).unwrap();
    mem.write_slice(&PROGRAM, GuestAddress(CODE)).unwrap();
    mem.write_obj(0x5eed_u64, GuestAddress(DATA)).unwrap();
    let (vm, mut fd) = new_vm(kvm, &mem);
    let supported = kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES).unwrap();
    crate::vcpu::configure(&fd, &supported, 0, 1, Some(CODE)).unwrap();
    let mut r = fd.get_regs().unwrap();
    (r.rax, r.rbx, r.r15) = (0x1000, 0x0234, 0xfeed_face_cafe_beef);
    fd.set_regs(&r).unwrap();
    let msrs = [
        (MSR_LSTAR, 0xffff_ffff_8123_4560),
        (MSR_KERNEL_GS_BASE, 0xffff_8880_0000_1000),
    ]
    .map(|(index, data)| kvm_msr_entry {
        index,
        data,
        ..Default::default()
    });
    fd.set_msrs(&Msrs::from_entries(&msrs).unwrap()).unwrap();
    assert_eq!(run_to_port(&mut fd), 0x80);
    vcpu::settle(&mut fd).unwrap();
    (mem, vm, fd)
}

fn take(kvm: &Kvm, vm: &VmFd, fd: &VcpuFd) -> State {
    let indices = vcpu::msr_indices(kvm).unwrap();
    State {
        vm: vm::save(vm).unwrap(),
        vcpus: vec![vcpu::save(vm, fd, &indices).unwrap()],
        devices: DeviceStates::default(),
    }
}

fn bytes<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap()
}

/// Non-default interrupt-controller and PIT state, so their comparison means something.
fn mark_irqchip_and_pit(vm: &VmFd) {
    let mut pic = kvm_bindings::kvm_irqchip {
        chip_id: kvm_bindings::KVM_IRQCHIP_PIC_MASTER,
        ..Default::default()
    };
    vm.get_irqchip(&mut pic).unwrap();
    pic.chip.pic.imr = 0xfb;
    pic.chip.pic.irq_base = 0x20;
    vm.set_irqchip(&pic).unwrap();
    let mut ioapic = kvm_bindings::kvm_irqchip {
        chip_id: kvm_bindings::KVM_IRQCHIP_IOAPIC,
        ..Default::default()
    };
    vm.get_irqchip(&mut ioapic).unwrap();
    // SAFETY: chip_id is KVM_IRQCHIP_IOAPIC, so KVM filled `ioapic`, the live member.
    unsafe { ioapic.chip.ioapic.redirtbl[4].bits = 0x0100_0000_0001_0034 };
    vm.set_irqchip(&ioapic).unwrap();
    let mut pit = vm.get_pit2().unwrap();
    pit.channels[0].count = 0x1234;
    pit.channels[0].mode = 2;
    vm.set_pit2(&pit).unwrap();
}

#[test]
fn vm_round_trip_resumes_where_it_stopped() {
    let kvm = Kvm::new().unwrap();
    let (mem, vm1, fd1) = booted(&kvm);
    mark_irqchip_and_pit(&vm1);
    let saved = take(&kvm, &vm1, &fd1);
    let s = &saved.vcpus[0];
    assert_eq!(s.regs.rax, 0x1234, "the first add ran");
    assert_eq!(s.regs.rip, CODE + 5, "stopped after the first out");
    for (index, want) in [
        (MSR_LSTAR, 0xffff_ffff_8123_4560),
        (MSR_KERNEL_GS_BASE, 0xffff_8880_0000_1000),
    ] {
        let got = s.msrs.iter().find(|m| m.index == index).map(|m| m.data);
        assert_eq!(got, Some(want), "MSR {index:#x} saved");
    }
    let tsc = s
        .msrs
        .iter()
        .find(|m| m.index == MSR_IA32_TSC)
        .unwrap()
        .data;

    let dir = tempfile::tempdir().unwrap();
    format::write(dir.path(), &saved, &mem, SaveMode::SkipZero).unwrap();
    drop((fd1, vm1));
    // Twice from the same directory: the first run's guest writes must not reach the file.
    for _ in 0..2 {
        let expect = Expect {
            vcpus: Some(1),
            mem_mib: Some(2),
        };
        let loaded = format::load(dir.path(), expect).unwrap();
        let regions = &loaded.manifest.regions;
        let restored =
            memory::restore(&loaded.memory_path, regions, RestoreMode::Mmap, false).unwrap();
        let (vm2, mut fd2) = new_vm(&kvm, &restored.mem);
        vm::restore(&vm2, &loaded.state.vm).unwrap();
        vcpu::restore(&vm2, &fd2, &loaded.state.vcpus[0]).unwrap();

        // Field by field, before it runs.
        assert_eq!(fd2.get_regs().unwrap(), s.regs);
        assert_eq!(fd2.get_sregs().unwrap(), s.sregs);
        assert_eq!(vcpu::FpuState::from(&fd2.get_fpu().unwrap()), s.fpu);
        assert_eq!(fd2.get_mp_state().unwrap(), s.mp_state);
        if let Some(x) = &s.xcrs {
            assert_eq!(&fd2.get_xcrs().unwrap(), x);
        }
        if let Some(x) = &s.xsave {
            assert_eq!(fd2.get_xsave().unwrap().region, x.region);
        }
        if let Some(e) = &s.events {
            assert_eq!(bytes(&fd2.get_vcpu_events().unwrap()), bytes(e));
        }
        // The LAPIC up to its timer's initial count (the current count, 0x390, runs).
        assert_eq!(
            fd2.get_lapic().unwrap().regs[..0x390],
            s.lapic.regs[..0x390]
        );
        for m in s.msrs.iter().filter(|m| m.index != MSR_IA32_TSC) {
            assert_eq!(get_msr(&fd2, m.index), m.data, "MSR {:#x}", m.index);
        }
        assert!(get_msr(&fd2, MSR_IA32_TSC) >= tsc, "TSC went back");
        let vm_now = vm::save(&vm2).unwrap();
        // The PIT (channel 0 counting in mode 2) may raise IRQ 0 between the restore and this
        // read: the master PIC's request bits for it are the running timer's, not the restore's.
        let no_timer_irq = |chip: &kvm_bindings::kvm_irqchip| {
            let mut c = *chip;
            // SAFETY: chip_id is KVM_IRQCHIP_PIC_MASTER, so `pic` is the union's live member.
            unsafe {
                c.chip.pic.irr &= !1;
                c.chip.pic.last_irr &= !1;
            }
            bytes(&c)
        };
        assert_eq!(
            no_timer_irq(&vm_now.pic_master),
            no_timer_irq(&saved.vm.pic_master)
        );
        assert_eq!(bytes(&vm_now.pic_slave), bytes(&saved.vm.pic_slave));
        assert_eq!(bytes(&vm_now.ioapic), bytes(&saved.vm.ioapic));
        // SAFETY: chip_id is KVM_IRQCHIP_IOAPIC, so `ioapic` is the union's live member.
        let redir = unsafe { vm_now.ioapic.chip.ioapic.redirtbl[4].bits };
        assert_eq!(redir, 0x0100_0000_0001_0034);
        // SAFETY: chip_id is KVM_IRQCHIP_PIC_MASTER, so `pic` is the union's live member.
        let imr = unsafe { vm_now.pic_master.chip.pic.imr };
        assert_eq!(imr, 0xfb);
        let (a, b) = (&vm_now.pit.channels[0], &saved.vm.pit.channels[0]);
        assert_eq!((a.count, a.mode), (0x1234, 2));
        assert_eq!((a.count, a.mode, a.gate), (b.count, b.mode, b.gate));
        assert!(
            vm_now.clock.clock >= saved.vm.clock.clock,
            "KVM clock went back"
        );
        let seed: u64 = restored.mem.read_obj(GuestAddress(DATA)).unwrap();
        assert_eq!(seed, 0x5eed, "the file's bytes, not a previous run's");

        // And it runs on from there, code fetched from the restored memory.
        assert_eq!(run_to_port(&mut fd2), 0x81);
        let r = fd2.get_regs().unwrap();
        assert_eq!((r.rax, r.r15), (0x1468, 0xfeed_face_cafe_beef));
        let stored: u64 = restored.mem.read_obj(GuestAddress(DATA)).unwrap();
        assert_eq!(stored, 0x1468, "the guest's store is in restored memory");
    }
}

#[test]
fn two_vcpus_keep_the_waiting_ap() {
    let kvm = Kvm::new().unwrap();
    let mem = guest_memory::create(2).unwrap();
    let supported = kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES).unwrap();
    let make = |mem: &GuestMemoryMmap| {
        let vm = kvm::create_vm(&kvm).unwrap();
        guest_memory::register(&vm, mem).unwrap();
        kvm::create_irqchip(&vm).unwrap();
        let fds: Vec<VcpuFd> = (0..2).map(|i| vm.create_vcpu(i).unwrap()).collect();
        (vm, fds)
    };
    let (vm1, mut fds1) = make(&mem);
    for (i, fd) in fds1.iter().enumerate() {
        let entry = (i == 0).then_some(CODE);
        crate::vcpu::configure(fd, &supported, i as u32, 2, entry).unwrap();
    }
    let mut r = fds1[1].get_regs().unwrap();
    r.rdx = 0xa9;
    fds1[1].set_regs(&r).unwrap();
    // Waiting for its SIPI: not the state a fresh vCPU starts in (uninitialized).
    let waiting = kvm_bindings::kvm_mp_state {
        mp_state: kvm_bindings::KVM_MP_STATE_INIT_RECEIVED,
    };
    fds1[1].set_mp_state(waiting).unwrap();
    let ap_state = fds1[1].get_mp_state().unwrap();
    assert_eq!(ap_state, waiting);
    let indices = vcpu::msr_indices(&kvm).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let devices = DeviceStates::default();
    super::take(
        dir.path(),
        &vm1,
        &mut fds1,
        &indices,
        devices,
        &mem,
        SaveMode::SkipZero,
    )
    .unwrap();
    drop((fds1, vm1));

    let loaded = format::load(dir.path(), Expect::default()).unwrap();
    assert_eq!(loaded.manifest.vcpus, 2);
    let restored = memory::restore(
        &loaded.memory_path,
        &loaded.manifest.regions,
        RestoreMode::Mmap,
        false,
    )
    .unwrap();
    let (vm2, fds2) = make(&restored.mem);
    assert_ne!(
        fds2[1].get_mp_state().unwrap(),
        waiting,
        "a fresh AP differs"
    );
    let e = super::restore_state(&vm2, &fds2[..1], &loaded.state).unwrap_err();
    assert!(e.to_string().contains("2 vCPU states"), "{e}");
    super::restore_state(&vm2, &fds2, &loaded.state).unwrap();
    assert_eq!(fds2[1].get_mp_state().unwrap(), ap_state);
    assert_eq!(fds2[1].get_regs().unwrap().rdx, 0xa9);
    assert_eq!(fds2[0].get_regs().unwrap().rip, CODE);
    let apic_id = |fd: &VcpuFd| fd.get_lapic().unwrap().regs[0x23] as u8;
    assert_eq!((apic_id(&fds2[0]), apic_id(&fds2[1])), (0, 1));
}

fn pattern_memory(mib: usize) -> GuestMemoryMmap {
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), mib * MIB)]).unwrap();
    // Every other page holds data; the rest stay zero (holes in a sparse file).
    for page in (0..mib * MIB / memory::PAGE).step_by(2) {
        let addr = (page * memory::PAGE) as u64;
        mem.write_obj(addr ^ 0xa5a5_a5a5, GuestAddress(addr + 8))
            .unwrap();
    }
    mem
}

fn check_pattern(mem: &GuestMemoryMmap, mib: usize) {
    for page in 0..mib * MIB / memory::PAGE {
        let addr = (page * memory::PAGE) as u64;
        let got: u64 = mem.read_obj(GuestAddress(addr + 8)).unwrap();
        let want = if page % 2 == 0 { addr ^ 0xa5a5_a5a5 } else { 0 };
        assert_eq!(got, want, "page {page}");
    }
}

#[test]
fn memory_round_trips_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let mem = pattern_memory(4);
    for save_mode in [SaveMode::Full, SaveMode::SkipZero] {
        let path = dir.path().join(format!("memory-{save_mode:?}"));
        let saved = memory::save(&mem, &path, save_mode).unwrap();
        assert_eq!(saved.file_size, 4 * MIB as u64);
        let expect_written = match save_mode {
            SaveMode::Full => saved.file_size,
            SaveMode::SkipZero => saved.file_size / 2,
        };
        assert_eq!(saved.written, expect_written);
        let modes = [
            (RestoreMode::Mmap, false),
            (RestoreMode::Eager, false),
            (RestoreMode::Eager, true),
            (RestoreMode::Uffd, false),
        ];
        for (mode, hugepages) in modes {
            let restored = match memory::restore(&path, &saved.regions, mode, hugepages) {
                Err(memory::Error::Uffd(e)) if mode == RestoreMode::Uffd => {
                    eprintln!("uffd skipped: {e}");
                    continue;
                }
                r => r.unwrap(),
            };
            check_pattern(&restored.mem, 4);
            // Writes stay in this process: the file keeps its bytes.
            restored.mem.write_obj(u64::MAX, GuestAddress(8)).unwrap();
            if let Some(h) = &restored.uffd {
                assert_eq!(h.faults(), 4 * MIB as u64 / memory::PAGE as u64);
                assert_eq!(h.failure(), None);
            }
        }
        let again = memory::restore(&path, &saved.regions, RestoreMode::Mmap, false).unwrap();
        check_pattern(&again.mem, 4);
    }
}

#[test]
fn a_failing_uffd_handler_reports_and_keeps_the_fault_blocked() {
    let dir = tempfile::tempdir().unwrap();
    let mem = pattern_memory(1);
    let path = dir.path().join("m");
    let saved = memory::save(&mem, &path, SaveMode::Full).unwrap();
    let restored = match memory::restore(&path, &saved.regions, RestoreMode::Uffd, false) {
        Err(e) => return eprintln!("uffd skipped: {e}"),
        Ok(r) => r,
    };
    // The file shrinks under the handler: its next read fails.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    let guest = restored.mem.clone();
    let reader = std::thread::spawn(move || guest.read_obj::<u64>(GuestAddress(8)).unwrap());
    let handler = restored.uffd.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while handler.failure().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let failure = handler.failure().expect("the handler reports its failure");
    assert!(failure.contains("memory file"), "{failure}");
    assert!(
        !reader.is_finished(),
        "the faulting thread must wait, not read zeros"
    );
    drop(handler);
    // With the handler gone the page is an ordinary anonymous one.
    assert_eq!(reader.join().unwrap(), 0);
}

#[test]
fn sparse_file_reads_back_in_extents() {
    let dir = tempfile::tempdir().unwrap();
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 2 * MIB)]).unwrap();
    mem.write_obj(1u8, GuestAddress(MIB as u64)).unwrap();
    let path = dir.path().join("m");
    let saved = memory::save(&mem, &path, SaveMode::SkipZero).unwrap();
    assert_eq!(saved.written, memory::PAGE as u64);
    let file = std::fs::File::open(&path).unwrap();
    let extents = memory::data_extents(&file, 0, 2 * MIB as u64);
    // A file system without holes gives one extent; with them, only data near 1 MiB.
    let data: u64 = extents.iter().map(|(a, b)| b - a).sum();
    assert!(extents
        .iter()
        .any(|&(a, b)| a <= MIB as u64 && b > MIB as u64));
    assert!(data <= 2 * MIB as u64);
}

#[test]
fn nonzero_runs_merge_neighbours() {
    let mut buf = vec![0u8; 5 * memory::PAGE];
    buf[10] = 1;
    buf[memory::PAGE + 4095] = 2;
    buf[4 * memory::PAGE] = 3;
    assert_eq!(
        memory::nonzero_runs(&buf),
        vec![(0, 2 * memory::PAGE), (4 * memory::PAGE, 5 * memory::PAGE)]
    );
    assert!(memory::nonzero_runs(&[0u8; 8192]).is_empty());
}

/// A small, valid snapshot directory of the booted test VM.
fn written_dir(dir: &Path) {
    let kvm = Kvm::new().unwrap();
    let (mem, vm1, fd1) = booted(&kvm);
    let state = take(&kvm, &vm1, &fd1);
    format::write(dir, &state, &mem, SaveMode::Full).unwrap();
}

/// A way to spoil a copy of a good snapshot directory.
type Damage = Box<dyn Fn(&Path)>;

fn refusal(dir: &Path) -> String {
    format::load(dir, Expect::default())
        .unwrap_err()
        .to_string()
}

fn edit_manifest(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join(format::MANIFEST_FILE);
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn manifest_refusals_name_the_path_and_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("snap");
    let missing = refusal(&dir);
    assert!(matches!(
        format::load(&dir, Expect::default()),
        Err(FormatError::MissingDir(_))
    ));
    assert!(missing.contains("snap") && missing.contains("--snapshot-at ready"));

    written_dir(&dir);
    assert!(format::load(&dir, Expect::default()).is_ok());
    let cases: Vec<(&str, Damage, &str)> = vec![
        (
            "truncated memory",
            Box::new(|d: &Path| {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(d.join(format::MEMORY_FILE))
                    .unwrap();
                f.set_len(MIB as u64).unwrap();
            }),
            "truncated",
        ),
        (
            "missing state",
            Box::new(|d: &Path| std::fs::remove_file(d.join(format::STATE_FILE)).unwrap()),
            "is missing",
        ),
        (
            "missing manifest",
            Box::new(|d: &Path| std::fs::remove_file(d.join(format::MANIFEST_FILE)).unwrap()),
            "incomplete",
        ),
        (
            "bad magic",
            Box::new(|d: &Path| edit_manifest(d, |v| v["magic"] = "firecracker".into())),
            "not a vclab snapshot",
        ),
        (
            "newer version",
            Box::new(|d: &Path| edit_manifest(d, |v| v["format_version"] = 99.into())),
            "format 99",
        ),
        (
            "not JSON",
            Box::new(|d: &Path| std::fs::write(d.join(format::MANIFEST_FILE), b"\x7fELF").unwrap()),
            "not a vclab snapshot",
        ),
        (
            "corrupt state",
            Box::new(|d: &Path| {
                let p = d.join(format::STATE_FILE);
                let mut b = std::fs::read(&p).unwrap();
                let n = b.len() / 2;
                b[n] ^= 1;
                std::fs::write(&p, b).unwrap();
            }),
            "checksum",
        ),
        (
            "path in a file name",
            Box::new(|d: &Path| edit_manifest(d, |v| v["state"]["name"] = "../x".into())),
            "not a plain name",
        ),
        (
            "regions beyond the size",
            Box::new(|d: &Path| edit_manifest(d, |v| v["mem_mib"] = 4.into())),
            "regions add up",
        ),
    ];
    for (name, damage, want) in cases {
        let case = tmp.path().join(name.replace(' ', "-"));
        copy_dir(&dir, &case);
        damage(&case);
        let msg = refusal(&case);
        assert!(msg.contains(want), "{name}: {msg}");
        assert!(!msg.contains('\n'), "{name}: one line: {msg}");
        assert!(msg.contains("--snapshot-at ready"), "{name}: {msg}");
        assert!(
            msg.contains(&name.replace(' ', "-")),
            "{name} names its path: {msg}"
        );
    }

    let e = format::load(
        &dir,
        Expect {
            vcpus: Some(2),
            mem_mib: None,
        },
    )
    .unwrap_err();
    assert!(
        matches!(e, FormatError::Mismatch { what: "vcpus", .. }),
        "{e}"
    );
    let e = format::load(
        &dir,
        Expect {
            vcpus: None,
            mem_mib: Some(16),
        },
    )
    .unwrap_err();
    assert!(
        matches!(e, FormatError::Mismatch { what: "mem", .. }),
        "{e}"
    );
}

#[test]
fn an_interrupted_rewrite_is_not_whole() {
    let tmp = tempfile::tempdir().unwrap();
    written_dir(tmp.path());
    // A rewrite removes the manifest before touching the other files: simulate a crash
    // right after that step by failing a later one (a directory where the new manifest is
    // written before its rename).
    std::fs::create_dir(tmp.path().join("snapshot.json.tmp")).unwrap();
    let kvm = Kvm::new().unwrap();
    let (mem, vm1, fd1) = booted(&kvm);
    let state = take(&kvm, &vm1, &fd1);
    assert!(format::write(tmp.path(), &state, &mem, SaveMode::Full).is_err());
    assert!(refusal(tmp.path()).contains("incomplete"));
}

#[test]
fn a_prepared_snapshot_is_incomplete_until_committed() {
    let tmp = tempfile::tempdir().unwrap();
    written_dir(tmp.path());
    let kvm = Kvm::new().unwrap();
    let (mem, vm1, fd1) = booted(&kvm);
    let state = take(&kvm, &vm1, &fd1);
    let prepared = format::prepare(tmp.path()).unwrap();
    assert_eq!(
        prepared.stale.len(),
        2,
        "the older memory and state set aside"
    );
    assert!(refusal(tmp.path()).contains("incomplete"));
    format::commit(prepared, &state, &mem, SaveMode::SkipZero).unwrap();
    assert!(format::load(tmp.path(), Expect::default()).is_ok());
    assert!(!tmp.path().join("snapshot.json.tmp").exists());
}

#[test]
fn a_rewrite_sets_the_older_files_aside() {
    let tmp = tempfile::tempdir().unwrap();
    written_dir(tmp.path());
    let kvm = Kvm::new().unwrap();
    let (mem, vm1, fd1) = booted(&kvm);
    let mut state = take(&kvm, &vm1, &fd1);
    state.devices.other.insert("marker".into(), 7.into());
    let written = format::write(tmp.path(), &state, &mem, SaveMode::SkipZero).unwrap();
    assert_eq!(written.stale.len(), 2);
    assert!(written.stale.iter().all(|p| p.exists()));
    let loaded = format::load(tmp.path(), Expect::default()).unwrap();
    assert_eq!(loaded.state.devices.other["marker"], 7);
    assert_eq!(format::remove_stale(tmp.path()).unwrap(), 2);
    assert!(written.stale.iter().all(|p| !p.exists()));
    assert!(format::load(tmp.path(), Expect::default()).is_ok());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn restore_modes_parse() {
    for m in [RestoreMode::Mmap, RestoreMode::Eager, RestoreMode::Uffd] {
        assert_eq!(m.as_str().parse::<RestoreMode>().unwrap(), m);
    }
    assert!("lazy"
        .parse::<RestoreMode>()
        .unwrap_err()
        .to_string()
        .contains("mmap, eager or uffd"));
}

#[test]
fn fnv1a64_known_values() {
    // Test vectors of the FNV reference (draft-eastlake-fnv).
    assert_eq!(format::fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(format::fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(format::fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
}

#[test]
fn serial_registers_survive_a_snapshot() {
    use vm_superio::serial::{NoEvents, Serial};
    use vm_superio::Trigger;
    struct NoIrq;
    impl Trigger for NoIrq {
        type E = std::io::Error;
        fn trigger(&self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut serial = Serial::new(NoIrq, Vec::<u8>::new());
    serial.write(3, 0x83).unwrap(); // LCR: DLAB on, 8 bits
    serial.write(0, 0x0c).unwrap(); // divisor low: 9600 baud
    serial.write(3, 0x03).unwrap();
    serial.write(7, 0x5a).unwrap(); // scratch
    serial.enqueue_raw_bytes(b"hi").unwrap();
    let devices = DeviceStates {
        serial: Some(super::SerialRegs::from(&serial.state())),
        ..Default::default()
    };
    let back: DeviceStates = serde_json::from_str(&bytes(&devices)).unwrap();
    assert_eq!(back, devices);
    let state = vm_superio::serial::SerialState::from(back.serial.as_ref().unwrap());
    let mut again = Serial::from_state(&state, NoIrq, NoEvents, Vec::<u8>::new()).unwrap();
    assert_eq!(again.read(7), 0x5a);
    assert_eq!(again.read(3), 0x03);
    assert_eq!((again.read(0), again.read(0)), (b'h', b'i'));
}
