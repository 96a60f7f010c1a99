//! The course's projection, from the measured marginal costs, with every
//! assumption shown:
//! - §1: how many instances of each runtime fit on the course's 100 GB /
//!   100 CPU server by memory, idle and with a workload's working set
//!   (`--app-mem`), next to the course's own 10 (by RAM) or 16 (by CPU)
//!   VMs of 10 GB + 6 CPU;
//! - §8: 1,000,000 EC2-sized VMs (10 GB, 6 CPU each): what they reserve
//!   against what each runtime's measured overhead would need for the same
//!   applications, in GB and in hosts of the course's size.
//!
//! Each figure says whether it rests on a measurement (N within what the
//! ramp held) or is a linear extrapolation of the fitted slope beyond it.

use super::fit::{fit_ramp, Fit};
use super::measure::Measure;
use super::record::DensityRecord;
use crate::runtime::RuntimeId;

/// The course's server: memory, GiB ("100 GB" read as GiB).
pub const SERVER_GIB: f64 = 100.0;
/// The course's server: CPUs.
pub const SERVER_CPUS: f64 = 100.0;
/// The course's VM per application: memory, GiB.
pub const VM_GIB: f64 = 10.0;
/// The course's VM per application: CPUs.
pub const VM_CPUS: f64 = 6.0;
/// The §8 fleet.
pub const FLEET: f64 = 1_000_000.0;

const KIB_PER_GIB: f64 = 1024.0 * 1024.0;

/// One table of the projection.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Its heading.
    pub title: &'static str,
    /// Column titles.
    pub headers: Vec<&'static str>,
    /// Rows of cells.
    pub rows: Vec<Vec<String>>,
}

/// The projection: assumptions, then the two tables.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    /// (assumption, value) lines.
    pub assumptions: Vec<(String, String)>,
    /// §1.
    pub server: Table,
    /// §8.
    pub fleet: Table,
}

/// A runtime's measured cost per instance.
#[derive(Debug, Clone, Copy)]
struct Cost {
    runtime: RuntimeId,
    fit: Fit,
    max_n: u32,
    /// The MemAvailable slope was lost in the host's noise (not above twice
    /// its standard error): PSS + kernel slopes stand in for it.
    fallback: bool,
}

/// Whether a slope is clearly above zero (more than twice its standard error).
fn clearly_positive(f: &Fit) -> bool {
    f.slope > 0.0 && f.slope_se.is_none_or(|se| f.slope > 2.0 * se)
}

fn costs(r: &DensityRecord) -> Vec<Cost> {
    r.runtimes
        .iter()
        .filter_map(|rr| {
            let ramp = rr.ramp()?;
            let avail = fit_ramp(ramp, Measure::MemAvailable);
            if let Some(fit) = avail.filter(clearly_positive) {
                return Some(Cost {
                    runtime: rr.runtime,
                    fit,
                    max_n: ramp.max_n,
                    fallback: false,
                });
            }
            let pss = fit_ramp(ramp, Measure::Pss)?;
            let kernel = fit_ramp(ramp, Measure::Kernel)?;
            let se = match (pss.slope_se, kernel.slope_se) {
                (Some(a), Some(b)) => Some((a * a + b * b).sqrt()),
                _ => None,
            };
            let fit = Fit {
                slope: pss.slope + kernel.slope,
                slope_se: se,
                intercept: pss.intercept + kernel.intercept,
                intercept_se: None,
                r2: None,
                points: pss.points.min(kernel.points),
            };
            (fit.slope > 0.0).then_some(Cost {
                runtime: rr.runtime,
                fit,
                max_n: ramp.max_n,
                fallback: true,
            })
        })
        .collect()
}

/// A whole number with thousands separators.
pub fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return "∞".into();
    }
    let s = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < 0.0 {
        format!("-{out}")
    } else {
        out
    }
}

/// "measured (N ≤ max)" or "extrapolated ×k beyond the N = max measured".
fn basis(n: f64, max_n: u32) -> String {
    if n <= f64::from(max_n) {
        format!("measured (within the {max_n} held)")
    } else {
        format!(
            "linear extrapolation, {:.0}× the {max_n} held here",
            n / f64::from(max_n.max(1))
        )
    }
}

fn slope_cell(c: &Cost) -> String {
    let mib = c.fit.slope / 1024.0;
    let what = if c.fallback {
        " (PSS + kernel: the MemAvailable slope was within the host's noise)"
    } else {
        ""
    };
    match c.fit.slope_se {
        Some(se) => format!("{mib:.3} ± {:.3} MiB{what}", se / 1024.0),
        None => format!("{mib:.3} MiB{what}"),
    }
}

/// The projection of `r`.
pub fn project(r: &DensityRecord) -> Projection {
    let app_gib = r.plan.app_mem_bytes as f64 / (1u64 << 30) as f64;
    let app_kib = r.plan.app_mem_bytes as f64 / 1024.0;
    let assumptions = vec![
        ("the course's server".into(), format!("{SERVER_GIB:.0} GB RAM, {SERVER_CPUS:.0} CPUs (GB read as GiB)")),
        ("the course's VM per application".into(), format!("{VM_GIB:.0} GB RAM + {VM_CPUS:.0} CPUs: {:.0} per server by RAM, {:.0} by CPU", (SERVER_GIB / VM_GIB).floor(), (SERVER_CPUS / VM_CPUS).floor())),
        ("cost of one more instance".into(), "the least-squares slope of the MemAvailable drop against N on this host (± its standard error); where that slope is not above twice its error (small instances, few of them, a busy host), the PSS slope plus the kernel-memory slope instead (marked)".into()),
        ("a workload's idle working set".into(), format!("{:.0} MiB per instance (--app-mem), added to each runtime's cost", app_kib / 1024.0)),
        ("CPU".into(), "idle instances use no CPU here; an application that needs 6 CPUs needs them in any runtime, so by CPU every runtime fits 16 such applications per server (the VM's own CPU overhead is not measured by this report)".into()),
        ("linearity".into(), "the cost per instance stays what it was up to the N held here; beyond it the figure is a linear extrapolation (marked), which ignores limits this host did not reach (pid_max, memory fragmentation, cgroup and KVM structures that grow non-linearly)".into()),
        ("§8 fleet".into(), format!("{} EC2-sized VMs of {VM_GIB:.0} GB and {VM_CPUS:.0} CPUs, each running one application with the working set above", thousands(FLEET))),
    ];
    let server_kib = SERVER_GIB * KIB_PER_GIB;
    let mut server_rows = vec![vec![
        "the course: VM of 10 GB + 6 CPU".to_string(),
        format!("{VM_GIB:.0} GB reserved"),
        format!("{:.0}", (SERVER_GIB / VM_GIB).floor()),
        format!(
            "{:.0} (by CPU: {:.0})",
            (SERVER_GIB / VM_GIB).floor(),
            (SERVER_CPUS / VM_CPUS).floor()
        ),
        "the course's figure".into(),
    ]];
    for c in costs(r) {
        let idle = (server_kib / c.fit.slope).floor();
        let with_app = (server_kib / (c.fit.slope + app_kib)).floor();
        server_rows.push(vec![
            c.runtime.name().to_string(),
            slope_cell(&c),
            thousands(idle),
            format!(
                "{} (by CPU at 6 CPUs each: {:.0})",
                thousands(with_app),
                (SERVER_CPUS / VM_CPUS).floor()
            ),
            format!(
                "idle: {}; with the workload: {}",
                basis(idle, c.max_n),
                basis(with_app, c.max_n)
            ),
        ]);
    }
    let reserved_gib = FLEET * VM_GIB;
    let reserved_hosts = reserved_gib / SERVER_GIB;
    let mut fleet_rows = vec![vec![
        "the course: 1,000,000 VMs of 10 GB + 6 CPU".to_string(),
        format!(
            "{} GB, {} CPUs reserved",
            thousands(reserved_gib),
            thousands(FLEET * VM_CPUS)
        ),
        format!(
            "{} hosts by RAM, {} by CPU",
            thousands(reserved_hosts),
            thousands(FLEET * VM_CPUS / SERVER_CPUS)
        ),
        format!(
            "{} GB reserved beyond the applications' working set ({:.0} MiB each)",
            thousands(FLEET * (VM_GIB - app_gib).max(0.0)),
            app_kib / 1024.0
        ),
        "arithmetic on the course's figures".into(),
    ]];
    for c in costs(r) {
        let over_gib = FLEET * c.fit.slope / KIB_PER_GIB;
        let se_gib = c.fit.slope_se.map(|se| FLEET * se / KIB_PER_GIB);
        let need_gib = over_gib + FLEET * app_gib;
        let hosts = over_gib / SERVER_GIB;
        // Per host of the course's size, how many instances the fleet puts there.
        let per_host = FLEET / (need_gib / SERVER_GIB).ceil().max(1.0);
        fleet_rows.push(vec![
            c.runtime.name().to_string(),
            format!(
                "{} GB of overhead{}",
                thousands(over_gib),
                se_gib.map_or(String::new(), |s| format!(" (± {})", thousands(s)))
            ),
            format!(
                "{} hosts of overhead; {} hosts with the working sets",
                thousands(hosts.ceil()),
                thousands((need_gib / SERVER_GIB).ceil())
            ),
            format!(
                "{} GB less than the VMs reserve",
                thousands(reserved_gib - need_gib)
            ),
            format!(
                "{} instances per host: {}",
                thousands(per_host),
                basis(per_host, c.max_n)
            ),
        ]);
    }
    Projection {
        assumptions,
        server: Table {
            title: "§1: one course server (100 GB, 100 CPUs)",
            headers: vec![
                "runtime",
                "memory per instance (MemAvailable slope)",
                "idle instances by memory",
                "instances with the workload's working set",
                "basis",
            ],
            rows: server_rows,
        },
        fleet: Table {
            title: "§8: 1,000,000 EC2-sized applications",
            headers: vec![
                "runtime",
                "memory",
                "hosts of the course's size",
                "against the reservation",
                "basis",
            ],
            rows: fleet_rows,
        },
    }
}

/// One line for the course table's "weight": each runtime's measured
/// marginal cost and the most it held, or `None` without a ramp.
pub fn weight_line(r: &DensityRecord) -> Option<String> {
    let parts: Vec<String> = costs(r)
        .iter()
        .map(|c| format!("{} {} each (held {})", c.runtime, slope_cell(c), c.max_n))
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "density (MemAvailable per idle instance): {}",
            parts.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(10_000_000.0), "10,000,000");
        assert_eq!(thousands(-1234.0), "-1,234");
    }

    #[test]
    fn basis_says_when_it_extrapolates() {
        assert!(basis(100.0, 200).starts_with("measured"));
        assert!(basis(95_000.0, 5000).contains("19×"));
    }
}
