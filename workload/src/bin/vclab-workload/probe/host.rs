//! Host visibility: what this process can read of the machine it runs on (read-only).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// How deep below each cgroup mount the walk looks.
const CGROUP_DEPTH: usize = 4;
/// The most cgroup directories the walk visits (a busy host has thousands).
const CGROUP_LIMIT: usize = 20_000;
/// How many foreign cgroup names the JSON line quotes.
pub const SAMPLE: usize = 8;

/// What the process sees.
#[derive(Debug, Default)]
pub struct Visibility {
    /// `uname -r`.
    pub kernel: String,
    /// The first field of /proc/uptime, seconds.
    pub uptime_s: Option<f64>,
    /// The three load averages of /proc/loadavg.
    pub loadavg: Option<[f64; 3]>,
    /// Processors listed in /proc/cpuinfo.
    pub cpus: usize,
    /// FNV-1a 64 of the `model name` lines of /proc/cpuinfo, hex (empty when unreadable).
    pub cpuinfo_model_hash: String,
    /// The distinct cgroup paths of /proc/self/cgroup (host paths leak here without a cgroup
    /// namespace).
    pub own_cgroups: Vec<String>,
    /// Cgroup directories under /sys/fs/cgroup not on this process's own path (other tenants').
    pub foreign_cgroups: usize,
    /// A sorted sample of their names (`controller:path`).
    pub foreign_sample: Vec<String>,
}

/// Reads everything; unreadable sources stay empty (a sandbox may hide them).
pub fn probe() -> Visibility {
    let (cpus, cpuinfo_model_hash) =
        cpuinfo(&fs::read_to_string("/proc/cpuinfo").unwrap_or_default());
    let own = own_cgroups(&fs::read_to_string("/proc/self/cgroup").unwrap_or_default());
    let foreign = foreign_cgroups(Path::new("/sys/fs/cgroup"), &own);
    Visibility {
        kernel: kernel_release(),
        uptime_s: first_numbers::<1>(&fs::read_to_string("/proc/uptime").unwrap_or_default())
            .map(|[u]| u),
        loadavg: first_numbers::<3>(&fs::read_to_string("/proc/loadavg").unwrap_or_default()),
        cpus,
        cpuinfo_model_hash,
        own_cgroups: own
            .into_values()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        foreign_cgroups: foreign.len(),
        foreign_sample: foreign.into_iter().take(SAMPLE).collect(),
    }
}

/// `uname(2)`'s release.
fn kernel_release() -> String {
    // SAFETY: utsname is plain data; all-zero is a valid value.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid utsname for uname to fill.
    if unsafe { libc::uname(&mut u) } != 0 {
        return String::new();
    }
    let bytes: Vec<u8> = u
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The first `N` whitespace-separated numbers of `text`.
pub fn first_numbers<const N: usize>(text: &str) -> Option<[f64; N]> {
    let mut out = [0.0; N];
    let mut words = text.split_whitespace();
    for slot in &mut out {
        *slot = words.next()?.parse().ok()?;
    }
    Some(out)
}

/// Processor count and the hash of the `model name` lines.
pub fn cpuinfo(text: &str) -> (usize, String) {
    let cpus = text.lines().filter(|l| l.starts_with("processor")).count();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut any = false;
    for line in text.lines().filter(|l| l.starts_with("model name")) {
        any = true;
        for b in line.bytes().chain([b'\n']) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    (
        cpus,
        if any {
            format!("{hash:016x}")
        } else {
            String::new()
        },
    )
}

/// The process's cgroup per hierarchy, from /proc/self/cgroup lines (`id:controllers:path`),
/// keyed by the hierarchy's directory name under /sys/fs/cgroup: the controller list
/// (`cpu,cpuacct`), the name of a named hierarchy (`systemd` for `name=systemd`), or `unified`
/// for the cgroup2 line (`0::`).
pub fn own_cgroups(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let key = match controllers {
                "" => "unified",
                c => c.strip_prefix("name=").unwrap_or(c),
            };
            Some((key.to_owned(), path.to_owned()))
        })
        .collect()
}

/// Whether cgroup `path` (relative to a hierarchy's root, `/a/b`) lies on the line of `own`, the
/// process's path in that hierarchy: an ancestor of it, it, or below it.
pub fn on_own_line(path: &str, own: Option<&str>) -> bool {
    let Some(own) = own else {
        return false;
    };
    let within = |outer: &str, inner: &str| {
        let outer = outer.trim_end_matches('/');
        outer.is_empty() || inner == outer || inner.starts_with(&format!("{outer}/"))
    };
    within(path, own) || within(own, path)
}

/// Cgroup directories under `root` (each v1 controller directory and a cgroup2 mount, or a pure
/// cgroup2 root) that are not on this process's own line, as `hierarchy:path`, sorted.
pub fn foreign_cgroups(root: &Path, own: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut visited = 0usize;
    let mut hierarchies = Vec::new();
    if root.join("cgroup.procs").exists() {
        hierarchies.push((String::from("unified"), root.to_path_buf()));
    } else if let Ok(entries) = fs::read_dir(root) {
        for e in entries.flatten() {
            let p = e.path();
            // Alias links (cpu -> cpu,cpuacct) are not directories: each tree is walked once.
            if e.file_type().is_ok_and(|t| t.is_dir()) && p.join("cgroup.procs").exists() {
                hierarchies.push((e.file_name().to_string_lossy().into_owned(), p));
            }
        }
    }
    for (name, dir) in hierarchies {
        let mine = own.get(&name).map(String::as_str);
        let mut stack = vec![(dir, String::new(), 0usize)];
        while let Some((dir, rel, depth)) = stack.pop() {
            if depth >= CGROUP_DEPTH || visited >= CGROUP_LIMIT {
                continue;
            }
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                if !e.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                visited += 1;
                let child = format!("{rel}/{}", e.file_name().to_string_lossy());
                if !on_own_line(&child, mine) {
                    found.insert(format!("{name}:{child}"));
                }
                stack.push((e.path(), child, depth + 1));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_and_cpuinfo() {
        assert_eq!(first_numbers::<1>("123.45 99.0\n"), Some([123.45]));
        assert_eq!(
            first_numbers::<3>("0.10 0.20 0.30 1/100 7\n"),
            Some([0.1, 0.2, 0.3])
        );
        assert_eq!(first_numbers::<3>("0.1"), None);
        let (n, h) =
            cpuinfo("processor\t: 0\nmodel name\t: X\n\nprocessor\t: 1\nmodel name\t: X\n");
        assert_eq!(n, 2);
        assert_eq!(h.len(), 16);
        assert_ne!(h, cpuinfo("processor\t: 0\nmodel name\t: Y\n").1);
        assert_eq!(cpuinfo("").1, "");
    }

    #[test]
    fn own_line_includes_ancestors_and_descendants() {
        let own = own_cgroups("12:memory:/a/b\n1:name=systemd:/s\n0::/\n");
        assert_eq!(own.get("memory").map(String::as_str), Some("/a/b"));
        assert_eq!(own.get("systemd").map(String::as_str), Some("/s"));
        assert_eq!(own.get("unified").map(String::as_str), Some("/"));
        let mine = Some("/a/b");
        assert!(on_own_line("/a", mine));
        assert!(on_own_line("/a/b/c", mine));
        assert!(!on_own_line("/a/bb", mine));
        assert!(!on_own_line("/z", mine));
        // At the root of a hierarchy (a cgroup namespace) everything is on the own line.
        assert!(on_own_line("/z", Some("/")));
        assert!(!on_own_line("/z", None));
    }

    #[test]
    fn walks_a_fake_hierarchy() {
        let dir = tempfile::tempdir().unwrap();
        let mem = dir.path().join("memory");
        for d in ["a/b/mine", "a/other", "tenant"] {
            fs::create_dir_all(mem.join(d)).unwrap();
        }
        fs::write(mem.join("cgroup.procs"), "").unwrap();
        let own = own_cgroups("4:memory:/a/b/mine\n");
        let found = foreign_cgroups(dir.path(), &own);
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            vec!["memory:/a/other", "memory:/tenant"]
        );
    }
}
