//! The files the bad inputs point at, made once in a temp dir: kernels that are not kernels,
//! paths that are not files, bundles whose config.json is wrong, results directories whose
//! results.json is corrupt.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The temp dir and what the rows need to name.
pub struct Fixtures {
    /// Everything below is in here (mode 0755, so that an unprivileged run can reach it).
    pub tmp: tempfile::TempDir,
    /// A rootfs holding busybox (the cache's, else one built here).
    pub rootfs: PathBuf,
}

impl Fixtures {
    /// `name` in the temp dir, as a string for an argument list.
    pub fn p(&self, name: &str) -> String {
        self.tmp.path().join(name).display().to_string()
    }
}

/// A 64-bit x86 ELF with one PT_LOAD segment of `load_bytes` at 1 MiB, filled with `hlt`.
fn elf_with_segment(load_bytes: usize) -> Vec<u8> {
    const LOAD_AT: u64 = 0x10_0000;
    const DATA_AT: usize = 0x1000;
    let mut f = Vec::with_capacity(DATA_AT + load_bytes);
    f.extend_from_slice(b"\x7fELF\x02\x01\x01");
    f.resize(16, 0);
    f.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    f.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    f.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    f.extend_from_slice(&LOAD_AT.to_le_bytes()); // e_entry
    f.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    f.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    f.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    for half in [64u16, 56, 1, 64, 0, 0] {
        // e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
        f.extend_from_slice(&half.to_le_bytes());
    }
    f.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    f.extend_from_slice(&7u32.to_le_bytes()); // RWX
    let size = load_bytes as u64;
    for word in [DATA_AT as u64, LOAD_AT, LOAD_AT, size, size, 0x1000] {
        // p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align
        f.extend_from_slice(&word.to_le_bytes());
    }
    f.resize(DATA_AT, 0);
    f.resize(DATA_AT + load_bytes, 0xf4);
    f
}

/// Bytes that look random (a fixed xorshift sequence: the same file every run).
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, bytes).unwrap();
}

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", path.display());
}

/// A bundle `name` whose config.json is `text` (`{rootfs}` replaced).
fn bundle(dir: &Path, name: &str, rootfs: &Path, text: &str) {
    let text = text.replace("{rootfs}", &rootfs.display().to_string());
    write(dir, &format!("{name}/config.json"), text.as_bytes());
}

/// A config.json the OCI runtime spec accepts, with `extra` spliced into its top level
/// and `process_extra` into its `process`.
fn config(args: &str, process_extra: &str, extra: &str) -> String {
    format!(
        r#"{{"ociVersion":"1.0.2","root":{{"path":"{{rootfs}}","readonly":true}},
"process":{{"args":{args},"cwd":"/","user":{{"uid":0,"gid":0}}{process_extra}}}{extra}}}"#
    )
}

/// Makes every fixture file.
pub fn make() -> Fixtures {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let rootfs =
        super::common::manifest_rootfs().unwrap_or_else(|| super::common::busybox_rootfs(d));

    // Kernels.
    write(d, "zero.elf", b"");
    write(d, "noise.bin", &noise(64 * 1024));
    let mut elf_noise = b"\x7fELF".to_vec();
    elf_noise.extend(noise(4096));
    write(d, "elf-noise.elf", &elf_noise);
    write(d, "big.elf", &elf_with_segment(4 << 20));
    // A valid guest (it halts): the rows that name it are refused before it would run.
    write(d, "tiny.elf", &elf_with_segment(4096));
    write(d, "secret.elf", &elf_with_segment(4096));
    std::fs::set_permissions(d.join("secret.elf"), std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::create_dir(d.join("adir")).unwrap();
    mkfifo(&d.join("fifo"));
    let initrd = std::fs::File::create(d.join("initrd-8m")).unwrap();
    initrd.set_len(8 << 20).unwrap();
    write(d, "a-file", b"a file, not a directory\n");
    // Disk images: one not a whole number of sectors, one read-only by its mode.
    write(d, "odd.img", &[0u8; 1000]);
    write(d, "ro.img", &[0u8; 4096]);
    std::fs::set_permissions(d.join("ro.img"), std::fs::Permissions::from_mode(0o444)).unwrap();
    // Snapshot directories: a manifest that is noise; a whole manifest whose memory file is
    // cut short (1 MiB promised, 4 KiB there).
    write(d, "snap-corrupt/snapshot.json", &noise(512));
    write(d, "snap-corrupt/state.json", b"{}");
    write(d, "snap-corrupt/memory", &[0u8; 4096]);
    write(
        d,
        "snap-truncated/snapshot.json",
        br#"{"magic":"vclab-snapshot","format_version":1,"vmm_version":"0.1.0","mem_mib":1,
"vcpus":1,"regions":[{"guest_addr":0,"size":1048576,"file_offset":0}],
"memory":{"name":"memory","size":1048576},"state":{"name":"state.json","size":2,
"fnv1a64":"0000000000000000"}}"#,
    );
    write(d, "snap-truncated/state.json", b"{}");
    write(d, "snap-truncated/memory", &[0u8; 4096]);

    // Bundles.
    bundle(d, "bundle-garbage", &rootfs, "{not json");
    bundle(
        d,
        "bundle-types",
        &rootfs,
        &config(r#"["/bin/true"]"#, "", "").replace(r#""uid":0"#, r#""uid":"zero""#),
    );
    bundle(
        d,
        "bundle-unknown",
        &rootfs,
        &config(
            r#"["/bin/echo","unknown-fields-ignored"]"#,
            r#","vclabNoSuchProcessField":1"#,
            r#","vclabNoSuchField":{"a":[1,2]},"linux":{"vclabNoSuchLinuxField":true}"#,
        ),
    );
    bundle(
        d,
        "bundle-no-root",
        &rootfs,
        &config(r#"["/bin/true"]"#, "", "").replace("{rootfs}", "/nonexistent-vclab-root"),
    );
    std::fs::create_dir_all(d.join("bundle-fifo")).unwrap();
    mkfifo(&d.join("bundle-fifo/config.json"));
    std::fs::create_dir_all(d.join("bundle-dir/config.json")).unwrap();
    std::fs::create_dir_all(d.join("bundle-eio")).unwrap();
    // Readable by name, unreadable in fact, also for root: reading it at offset 0 is EIO.
    std::os::unix::fs::symlink("/proc/self/mem", d.join("bundle-eio/config.json")).unwrap();

    // Results directories.
    write(
        d,
        "res-truncated/results.json",
        br#"{"version":2,"started_utc":"2026-"#,
    );
    write(d, "res-empty/results.json", b"");
    write(d, "res-noise/results.json", &noise(4096));
    write(d, "res-array/results.json", b"[1,2,3]\n");
    write(d, "res-future/results.json", b"{\"version\":99}\n");
    std::fs::create_dir_all(d.join("res-fifo")).unwrap();
    mkfifo(&d.join("res-fifo/results.json"));
    std::fs::create_dir_all(d.join("res-none")).unwrap();
    write(d, "density-bad/density.json", b"{\"kind\":");
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/results.json");
    std::fs::create_dir_all(d.join("res-good")).unwrap();
    std::fs::copy(golden, d.join("res-good/results.json")).unwrap();
    Fixtures { tmp, rootfs }
}
