//! Snapshot and restore timings on the real /dev/kvm (ignored by default: they print
//! figures, they do not gate). Run them alone, one at a time:
//! `cargo test --release -p vclab-vmm --test snapshot -- --ignored --nocapture --test-threads 1`.
//!
//! A VM runs a 3-instruction program to its first `out`, is saved (VM state, vCPU state,
//! memory, manifest) and restored into a fresh VM in each memory mode, which runs to its
//! second `out` (the first useful work: code fetched from restored memory).

use std::path::Path;
use std::time::Instant;

use kvm_bindings::KVM_MAX_CPUID_ENTRIES;
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use vclab_vmm::snapshot::{self, format, memory, vcpu, vm, DeviceStates, RestoreMode, SaveMode};
use vclab_vmm::{kvm, memory as guest_memory, regs};

const CODE: u64 = 0x1_0000;
/// add rax, rbx; out 0x80, al; add rax, rbx; out 0x81, al
const PROGRAM: [u8; 10] = [0x48, 0x01, 0xd8, 0xe6, 0x80, 0x48, 0x01, 0xd8, 0xe6, 0x81];
const RUNS: usize = 11;

fn run_to_port(fd: &mut VcpuFd) -> u16 {
    loop {
        match fd.run().expect("KVM_RUN") {
            VcpuExit::IoOut(port, _) => return port,
            VcpuExit::Intr => continue,
            other => panic!("unexpected exit {other:?}"),
        }
    }
}

fn new_vm(kvm: &Kvm, mem: &GuestMemoryMmap) -> (VmFd, VcpuFd) {
    let vm = kvm::create_vm(kvm).unwrap();
    guest_memory::register(&vm, mem).unwrap();
    kvm::create_irqchip(&vm).unwrap();
    let fd = vm.create_vcpu(0).unwrap();
    (vm, fd)
}

/// A booted VM of `mib` MiB stopped at its first `out`; `touched` MiB of its memory
/// (from 1 MiB up) hold data, as a guest's kernel, heap and stack would.
fn booted(kvm: &Kvm, mib: u64, touched: u64) -> (GuestMemoryMmap, VmFd, VcpuFd) {
    let mem = guest_memory::create(mib).unwrap();
    regs::write_gdt_idt(&mem).unwrap();
    regs::write_page_tables(&mem).unwrap();
    mem.write_slice(&PROGRAM, GuestAddress(CODE)).unwrap();
    for page in 0..(touched << 20) / 4096 {
        let addr = (1 << 20) + page * 4096;
        if addr + 8 <= mib << 20 {
            mem.write_obj(page | 1, GuestAddress(addr)).unwrap();
        }
    }
    let (vm, mut fd) = new_vm(kvm, &mem);
    let supported = kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES).unwrap();
    vclab_vmm::vcpu::configure(&fd, &supported, 0, 1, Some(CODE)).unwrap();
    assert_eq!(run_to_port(&mut fd), 0x80);
    vcpu::settle(&mut fd).unwrap();
    (mem, vm, fd)
}

fn save(dir: &Path, mem: &GuestMemoryMmap, vmfd: &VmFd, fd: &VcpuFd, msrs: &[u32], mode: SaveMode) {
    let state = format::State {
        vm: vm::save(vmfd).unwrap(),
        vcpus: vec![vcpu::save(vmfd, fd, msrs).unwrap()],
        devices: DeviceStates::default(),
    };
    format::write(dir, &state, mem, mode).unwrap();
}

/// Restore: load + map + VM + state; returns (restore ms, to-first-work ms).
fn restore(kvm: &Kvm, dir: &Path, mode: RestoreMode, hugepages: bool) -> (f64, f64) {
    let t0 = Instant::now();
    let loaded = snapshot::load(dir, format::Expect::default()).unwrap();
    let restored = memory::restore(
        &loaded.memory_path,
        &loaded.manifest.regions,
        mode,
        hugepages,
    )
    .unwrap();
    let (vmfd, mut fd) = new_vm(kvm, &restored.mem);
    vm::restore(&vmfd, &loaded.state.vm).unwrap();
    vcpu::restore(&vmfd, &fd, &loaded.state.vcpus[0]).unwrap();
    let t1 = Instant::now();
    assert_eq!(run_to_port(&mut fd), 0x81);
    let t2 = Instant::now();
    let r = fd.get_regs().unwrap();
    assert_eq!(r.rip, CODE + 10);
    (ms(t1 - t0), ms(t2 - t0))
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn summary(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "{:.2} ({:.2}–{:.2}, n={})",
        v[v.len() / 2],
        v[0],
        v[v.len() - 1],
        v.len()
    )
}

#[test]
#[ignore = "prints timings; run with --ignored --nocapture"]
fn snapshot_and_restore_timings() {
    let kvm = Kvm::new().unwrap();
    let msrs = vcpu::msr_indices(&kvm).unwrap();
    let tmp = tempfile::tempdir_in(
        std::env::var_os("SNAPSHOT_BENCH_DIR").unwrap_or_else(|| "/tmp".into()),
    )
    .unwrap();
    for (mib, touched) in [(16u64, 2u64), (16, 16), (128, 2), (128, 128)] {
        let (mem, vmfd, fd) = booted(&kvm, mib, touched);
        let st = vcpu::save(&vmfd, &fd, &msrs).unwrap();
        if mib == 16 && touched == 2 {
            println!(
                "host: {} MSRs saved, unreadable {:x?}, degraded {:?}, xsave {}, xcrs {}, events {}",
                st.msrs.len(),
                st.msrs_unreadable,
                st.degraded,
                st.xsave.is_some(),
                st.xcrs.is_some(),
                st.events.is_some()
            );
        }
        for save_mode in [SaveMode::Full, SaveMode::SkipZero] {
            let dir = tmp.path().join(format!("{mib}-{touched}-{save_mode:?}"));
            let mut times = Vec::new();
            for _ in 0..RUNS {
                let t = Instant::now();
                save(&dir, &mem, &vmfd, &fd, &msrs, save_mode);
                times.push(ms(t.elapsed()));
                // Off the critical path, as the VMM does once the guest runs again.
                format::remove_stale(&dir).unwrap();
            }
            let state_bytes = std::fs::metadata(dir.join(format::STATE_FILE))
                .unwrap()
                .len();
            println!(
                "save {mib} MiB ({touched} MiB touched) {save_mode:?}: {} ms; state.json {state_bytes} B",
                summary(times)
            );
            let modes = [
                (RestoreMode::Mmap, false),
                (RestoreMode::Eager, false),
                (RestoreMode::Eager, true),
                (RestoreMode::Uffd, false),
            ];
            for (mode, hugepages) in modes {
                if mode == RestoreMode::Uffd && snapshot::uffd::probe().is_err() {
                    println!("  restore uffd: {}", snapshot::uffd::probe().unwrap_err());
                    continue;
                }
                let (mut call, mut first) = (Vec::new(), Vec::new());
                for _ in 0..RUNS {
                    let (a, b) = restore(&kvm, &dir, mode, hugepages);
                    call.push(a);
                    first.push(b);
                }
                let thp = if hugepages { " +THP" } else { "" };
                println!(
                    "  restore {mode}{thp}: call {} ms, to first work {} ms",
                    summary(call),
                    summary(first)
                );
            }
        }
    }
}

#[test]
#[ignore = "prints timings; run with --ignored --nocapture"]
fn save_breakdown() {
    let kvm = Kvm::new().unwrap();
    let msrs = vcpu::msr_indices(&kvm).unwrap();
    let tmp = tempfile::tempdir_in(
        std::env::var_os("SNAPSHOT_BENCH_DIR").unwrap_or_else(|| "/tmp".into()),
    )
    .unwrap();
    let (mem, vmfd, fd) = booted(&kvm, 16, 2);
    let (mut a, mut b, mut c, mut d, mut e, mut f) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for i in 0..RUNS {
        let t = Instant::now();
        let vs = vm::save(&vmfd).unwrap();
        a.push(ms(t.elapsed()));
        let t = Instant::now();
        let cs = vcpu::save(&vmfd, &fd, &msrs).unwrap();
        b.push(ms(t.elapsed()));
        let state = format::State {
            vm: vs,
            vcpus: vec![cs],
            devices: DeviceStates::default(),
        };
        let t = Instant::now();
        let bytes = serde_json::to_vec(&state).unwrap();
        c.push(ms(t.elapsed()));
        let t = Instant::now();
        let _: format::State = serde_json::from_slice(&bytes).unwrap();
        f.push(ms(t.elapsed()));
        let t = Instant::now();
        memory::save(&mem, &tmp.path().join(format!("full{i}")), SaveMode::Full).unwrap();
        d.push(ms(t.elapsed()));
        let t = Instant::now();
        memory::save(
            &mem,
            &tmp.path().join(format!("sparse{i}")),
            SaveMode::SkipZero,
        )
        .unwrap();
        e.push(ms(t.elapsed()));
    }
    println!("vm::save {}\nvcpu::save {}\nstate to JSON {}\nstate from JSON {}\nmemory Full (new file) {}\nmemory SkipZero (new file) {}",
        summary(a), summary(b), summary(c), summary(f), summary(d), summary(e));
}

#[test]
#[ignore = "prints timings; run with --ignored --nocapture"]
fn write_fresh_vs_replace() {
    let kvm = Kvm::new().unwrap();
    let msrs = vcpu::msr_indices(&kvm).unwrap();
    let tmp = tempfile::tempdir_in(
        std::env::var_os("SNAPSHOT_BENCH_DIR").unwrap_or_else(|| "/tmp".into()),
    )
    .unwrap();
    let (mem, vmfd, fd) = booted(&kvm, 16, 2);
    for mode in [SaveMode::SkipZero, SaveMode::Full] {
        let (mut fresh, mut replace) = (vec![], vec![]);
        for i in 0..RUNS {
            let t = Instant::now();
            save(
                &tmp.path().join(format!("{mode:?}-{i}")),
                &mem,
                &vmfd,
                &fd,
                &msrs,
                mode,
            );
            fresh.push(ms(t.elapsed()));
            let same = tmp.path().join(format!("{mode:?}-same"));
            let t = Instant::now();
            save(&same, &mem, &vmfd, &fd, &msrs, mode);
            replace.push(ms(t.elapsed()));
            format::remove_stale(&same).unwrap();
        }
        println!(
            "{mode:?}: fresh dir {}, replacing {}",
            summary(fresh),
            summary(replace)
        );
    }
}

#[test]
#[ignore = "prints timings; run with --ignored --nocapture"]
fn restore_breakdown() {
    let kvm = Kvm::new().unwrap();
    let msrs = vcpu::msr_indices(&kvm).unwrap();
    let tmp = tempfile::tempdir_in(
        std::env::var_os("SNAPSHOT_BENCH_DIR").unwrap_or_else(|| "/tmp".into()),
    )
    .unwrap();
    let (mem, vmfd, fd) = booted(&kvm, 16, 2);
    save(tmp.path(), &mem, &vmfd, &fd, &msrs, SaveMode::SkipZero);
    let mut steps: Vec<Vec<f64>> = vec![Vec::new(); 7];
    for _ in 0..RUNS {
        let mut t = Instant::now();
        let mut lap = |i: usize, steps: &mut Vec<Vec<f64>>| {
            steps[i].push(ms(t.elapsed()));
            t = Instant::now();
        };
        let loaded = snapshot::load(tmp.path(), format::Expect::default()).unwrap();
        lap(0, &mut steps);
        let restored = memory::restore(
            &loaded.memory_path,
            &loaded.manifest.regions,
            RestoreMode::Mmap,
            false,
        )
        .unwrap();
        lap(1, &mut steps);
        let vmfd = kvm::create_vm(&kvm).unwrap();
        guest_memory::register(&vmfd, &restored.mem).unwrap();
        lap(2, &mut steps);
        kvm::create_irqchip(&vmfd).unwrap();
        let mut fd = vmfd.create_vcpu(0).unwrap();
        lap(3, &mut steps);
        vm::restore(&vmfd, &loaded.state.vm).unwrap();
        lap(4, &mut steps);
        vcpu::restore(&vmfd, &fd, &loaded.state.vcpus[0]).unwrap();
        lap(5, &mut steps);
        assert_eq!(run_to_port(&mut fd), 0x81);
        lap(6, &mut steps);
    }
    let names = [
        "load (manifest+state JSON)",
        "memory::restore mmap",
        "create_vm + slots",
        "irqchip+PIT + vCPU",
        "vm::restore",
        "vcpu::restore",
        "run to first out",
    ];
    for (name, v) in names.iter().zip(steps) {
        println!("{name}: {}", summary(v));
    }
}
