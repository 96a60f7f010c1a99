//! The course's VM-versus-container table, each line set beside what this run
//! measured, with a verdict where the two disagree. Pure: built from the saved
//! [`Results`].

use vclab_vmm::host::KvmKind;

use super::isolation::summary as isolation;
use super::record::Results;
use crate::runtime::RuntimeId;

/// One line of the course's table.
#[derive(Debug, Clone, PartialEq)]
pub struct CourseLine {
    /// Short topic name.
    pub topic: &'static str,
    /// The course's words.
    pub course: &'static str,
    /// What this run measured.
    pub measured: String,
    /// `agrees`, or one line on how the measurement disagrees.
    pub verdict: String,
}

/// Column titles of the course's table.
pub const HEADERS: &[&str] = &["topic", "the course says", "this run measured", "verdict"];

impl CourseLine {
    /// The line's cells, in [`HEADERS`] order.
    pub fn cells(self) -> Vec<String> {
        vec![
            self.topic.to_string(),
            self.course.to_string(),
            self.measured,
            self.verdict,
        ]
    }
}

const MIB: f64 = 1024.0 * 1024.0;
/// The VM rows, in the registry's order.
fn vm_rows() -> impl Iterator<Item = RuntimeId> {
    RuntimeId::ALL
        .iter()
        .copied()
        .filter(|r| r.family().is_vm())
}

/// The container rows, in the registry's order.
fn container_rows() -> impl Iterator<Item = RuntimeId> {
    RuntimeId::ALL
        .iter()
        .copied()
        .filter(|r| r.family().is_container())
}

/// Median start latency (ms) of `runtime`, over the first kernel that measured it.
fn start_ms(r: &Results, runtime: RuntimeId) -> Option<(f64, bool)> {
    r.cases
        .iter()
        .filter(|c| c.runtime == runtime)
        .find_map(|c| {
            let s = c.summary.as_ref()?.start_latency_ms?;
            Some((s.median, c.start_marker.is_some()))
        })
}

/// Median start latency and cgroup attach (ms) of the vclab launcher's row,
/// over the same kernel as [`start_ms`].
fn container_attach_ms(r: &Results) -> Option<(f64, f64)> {
    let s = r
        .cases
        .iter()
        .filter(|c| c.runtime == RuntimeId::Container)
        .find_map(|c| c.summary.as_ref().filter(|s| s.start_latency_ms.is_some()))?;
    Some((s.start_latency_ms?.median, s.cgroup_attach_ms?.median))
}

/// Median peak RSS (MiB) of `runtime`, the largest over its kernels.
fn rss_mib(r: &Results, runtime: RuntimeId) -> Option<f64> {
    r.cases
        .iter()
        .filter(|c| c.runtime == runtime)
        .filter_map(|c| c.summary.as_ref()?.peak_rss_mib.map(|s| s.median))
        .max_by(f64::total_cmp)
}

fn artifact_mib(r: &Results, name: &str) -> Option<f64> {
    r.artifacts
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.size_bytes as f64 / MIB)
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "nothing measured".into()
    } else {
        items.join(", ")
    }
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{ms:.1} ms")
    }
}

fn full_os(r: &Results) -> CourseLine {
    let mut m = Vec::new();
    let uni = start_ms(r, RuntimeId::MicrovmUnikernel).is_some();
    if uni {
        let size =
            artifact_mib(r, "unikernel").map_or(String::new(), |s| format!(" ({s:.2} MiB image)"));
        m.push(format!(
            "microvm-unikernel ran the workload with no OS at all{size}"
        ));
    }
    for (row, art) in [
        (RuntimeId::MicrovmLinux, "vmlinux"),
        (RuntimeId::VmDistro, "distro-kernel"),
    ] {
        if start_ms(r, row).is_some() {
            let size =
                artifact_mib(r, art).map_or(String::new(), |s| format!(" ({s:.1} MiB kernel)"));
            m.push(format!("{row} booted its own Linux kernel{size}"));
        }
    }
    if container_rows().any(|c| start_ms(r, c).is_some()) {
        m.push(format!(
            "containers ran on the host kernel {}",
            r.host.kernel
        ));
    }
    let verdict = if uni {
        "disagrees in part: a micro-VM need not carry an OS; the unikernel is the whole guest"
            .into()
    } else {
        "agrees".into()
    };
    CourseLine {
        topic: "full OS",
        course: "VM carries a full OS / container shares the host kernel",
        measured: list(&m),
        verdict,
    }
}

fn weight(r: &Results) -> CourseLine {
    let mut m = Vec::new();
    let mut lightest_vm: Option<(String, f64)> = None;
    for row in vm_rows().chain(container_rows()) {
        if let Some(mib) = rss_mib(r, row) {
            m.push(format!("{row} {mib:.1} MiB"));
            if row.family().is_vm() && lightest_vm.as_ref().is_none_or(|(_, v)| mib < *v) {
                lightest_vm = Some((row.to_string(), mib));
            }
        }
    }
    let mut measured = format!("peak RSS: {}", list(&m));
    if let Some(s) = artifact_mib(r, "rootfs") {
        measured += &format!("; rootfs image {s:.1} MiB");
    }
    if let Some(d) = &r.config.density {
        measured += &format!("; {d}");
    }
    let verdict = match lightest_vm {
        Some((row, mib)) if mib < 1024.0 => {
            format!("disagrees: {row} needed {mib:.1} MiB of host memory, not GBs")
        }
        Some(_) => "agrees".into(),
        None => "no VM row measured".into(),
    };
    CourseLine {
        topic: "weight",
        course: "VMs are heavy (GBs) / containers light (MBs)",
        measured,
        verdict,
    }
}

fn start_time(r: &Results) -> CourseLine {
    let mut m = Vec::new();
    let mut fastest_vm: Option<(String, f64)> = None;
    let mut slowest_linux: Option<(String, f64)> = None;
    for row in vm_rows().chain(container_rows()) {
        if let Some((ms, handoff)) = start_ms(r, row) {
            let what = if handoff { " to init handoff" } else { "" };
            m.push(format!("{row} {}{what}", fmt_ms(ms)));
            if row.family().is_vm() {
                if handoff {
                    slowest_linux = Some((row.to_string(), ms));
                } else if fastest_vm.as_ref().is_none_or(|(_, v)| ms < *v) {
                    fastest_vm = Some((row.to_string(), ms));
                }
            }
        }
    }
    let verdict = match (fastest_vm, slowest_linux) {
        (Some((row, ms)), linux) if ms < 60_000.0 => {
            let mut v = format!("disagrees: {row} was ready in {}", fmt_ms(ms));
            if let Some((lrow, lms)) = linux {
                v += &format!(
                    "; only {lrow} (Linux with ring 0 emulated by kvm_pvm) took {}",
                    fmt_ms(lms)
                );
            }
            v
        }
        (_, Some((row, ms))) if ms < 60_000.0 => {
            format!("disagrees: {row} reached init in {}", fmt_ms(ms))
        }
        (None, None) => "no VM row measured".into(),
        _ => "agrees".into(),
    };
    let mut measured = list(&m);
    if let Some((start, attach)) = container_attach_ms(r) {
        measured += &format!(
            "; {} of the container's {} was moving it into its cgroup (writing cgroup.procs waits for an RCU grace period)",
            fmt_ms(attach),
            fmt_ms(start)
        );
    }
    CourseLine {
        topic: "start time",
        course: "VMs boot in minutes / containers start in seconds or less",
        measured,
        verdict,
    }
}

fn isolation(r: &Results) -> CourseLine {
    let pvm = r.host.kvm_kind == Some(KvmKind::Pvm);
    let mut measured = format!(
        "VMs: KVM here is {} ; containers: namespaces + cgroups ({})",
        r.host.kvm_name(),
        r.host.cgroup_name()
    );
    if let Some(iso) = &r.isolation {
        measured += &format!("; {}", isolation::course_text(iso));
    }
    let mut verdict: String = if pvm {
        "disagrees in part: on this host the VM boundary is kvm_pvm, a software (page-table) hypervisor, not VMX/SVM hardware".into()
    } else {
        "agrees".into()
    };
    if r.isolation
        .as_ref()
        .and_then(isolation::containers_block_all)
        == Some(false)
    {
        verdict +=
            "; and the lab's container let some escape checks through (see the isolation table)";
    }
    CourseLine {
        topic: "isolation",
        course: "VM: hardware-level / container: process-level",
        measured,
        verdict,
    }
}

fn engine(r: &Results) -> CourseLine {
    let ran: Vec<String> = container_rows()
        .filter_map(|row| start_ms(r, row).map(|(ms, _)| format!("{row} ({})", fmt_ms(ms))))
        .collect();
    let container_runs = r.cases.iter().filter(|c| c.runtime.family().is_container());
    let (runs, left): (usize, u32) = container_runs.fold((0, 0), |(n, l), c| {
        (
            n + c.samples.len(),
            l + c.samples.iter().map(|s| s.leftover_processes).sum::<u32>(),
        )
    });
    let measured = if ran.is_empty() {
        "no container row measured".to_string()
    } else {
        format!(
            "{} each ran as a child process of vclab, no daemon; {runs} container runs left {left} processes behind",
            ran.join(", ")
        )
    };
    CourseLine {
        topic: "engine",
        course: "Docker hangs on one engine (daemon) / Podman & Buildah are daemonless",
        measured,
        verdict: "agrees: the daemon is Docker's design, not a property of containers".into(),
    }
}

fn image_creation(r: &Results) -> CourseLine {
    let mut measured = match artifact_mib(r, "rootfs") {
        Some(s) => format!(
            "the rootfs ({s:.1} MiB: busybox + the static workload) was built by scripts/guest-images.sh, no Dockerfile, no daemon"
        ),
        None => "no rootfs artifact recorded".into(),
    };
    if let Some(snap) = &r.vm_snapshot {
        measured += &format!(
            "; the VM's image is a snapshot: the unikernel VM paused at its ready signal was saved in {:.1} ms ({:.2} MiB of its {:.0} MiB RAM written, {:.1} KiB of vCPU/VM/device state)",
            snap.snapshot_ms,
            snap.memory_written_bytes as f64 / 1048576.0,
            snap.memory_bytes as f64 / 1048576.0,
            snap.state_bytes as f64 / 1024.0,
        );
        if let Some((start, _)) = start_ms(r, RuntimeId::MicrovmUnikernelRestore) {
            measured +=
                &format!(", and a restore from it runs the workload {start:.1} ms after launch");
        }
    }
    CourseLine {
        topic: "image creation",
        course: "Snapshot (VM) / Dockerfile / Buildah builds images without a daemon",
        measured,
        verdict: "agrees: an image is a directory tree (containers) or a memory snapshot (VMs); no daemon is needed for either".into(),
    }
}

/// The six lines of the course's table for `r`.
pub fn course_table(r: &Results) -> Vec<CourseLine> {
    vec![
        full_os(r),
        weight(r),
        start_time(r),
        isolation(r),
        engine(r),
        image_creation(r),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::isolation::summary::tests::record;
    use crate::compare::record::{RunConfig, FORMAT_VERSION};
    use crate::host::HostRecord;

    fn results(isolation: Option<crate::compare::isolation::Isolation>) -> Results {
        Results {
            version: FORMAT_VERSION,
            started_utc: "2026-12-01T00:00:00Z".into(),
            host: HostRecord::default(),
            config: RunConfig::default(),
            artifacts: vec![],
            cases: vec![],
            isolation,
            vm_snapshot: None,
        }
    }

    #[test]
    fn the_image_line_quotes_the_vm_snapshot_when_one_was_taken() {
        let line = |r: &Results| {
            course_table(r)
                .into_iter()
                .find(|l| l.topic == "image creation")
                .unwrap()
                .measured
        };
        let mut r = results(None);
        assert!(!line(&r).contains("snapshot"), "{}", line(&r));
        r.vm_snapshot = Some(crate::compare::vm_snapshot::SnapshotFacts {
            snapshot_ms: 10.14,
            memory_bytes: 16 << 20,
            memory_written_bytes: 120 << 10,
            state_bytes: 24 << 10,
        });
        let text = line(&r);
        assert!(text.contains("saved in 10.1 ms"), "{text}");
        assert!(text.contains("0.12 MiB of its 16 MiB RAM"), "{text}");
    }

    fn isolation_line(r: &Results) -> CourseLine {
        course_table(r)
            .into_iter()
            .find(|l| l.topic == "isolation")
            .unwrap()
    }

    #[test]
    fn the_isolation_line_quotes_the_probe() {
        let line = isolation_line(&results(Some(record())));
        assert!(
            line.measured.contains("bare 357, container 345"),
            "{}",
            line.measured
        );
        assert!(line.measured.contains("21 (vCPU)"), "{}", line.measured);
        assert!(
            line.verdict.contains("escape checks through"),
            "{}",
            line.verdict
        );
        // Without a probe (--no-isolation, older files) the line says what it said before.
        let line = isolation_line(&results(None));
        assert!(!line.measured.contains("reachable"), "{}", line.measured);
    }

    #[test]
    fn the_reports_show_the_isolation_table() {
        use crate::compare::export::{Exporter, MarkdownExporter};
        let r = results(Some(record()));
        let md = String::from_utf8(MarkdownExporter.serialize(&r).unwrap()).unwrap();
        assert!(md.contains("## Isolation"), "{md}");
        assert!(md.contains("| container | cfg | 345 | 38 |"), "{md}");
        let html = crate::compare::html::render(&r, &[]);
        assert!(html.contains("<table id=\"isolation\">"));
        let none = crate::compare::html::render(&results(None), &[]);
        assert!(!none.contains("id=\"isolation\""));
    }

    #[test]
    fn results_without_isolation_still_load() {
        let text = serde_json::to_string(&results(None)).unwrap();
        assert!(!text.contains("isolation"));
        let back: Results = serde_json::from_str(&text).unwrap();
        assert!(back.isolation.is_none());
        let text = serde_json::to_string(&results(Some(record()))).unwrap();
        let back: Results = serde_json::from_str(&text).unwrap();
        assert_eq!(back.isolation, Some(record()));
    }
}
