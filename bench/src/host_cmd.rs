//! `vclab host`: describe this host (KVM kind and what it means for guests,
//! cgroup mode, installed peers with versions).

use vclab_bench::host::HostRecord;

/// Arguments of `vclab host`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Path of a Firecracker binary to report (it is usually not on $PATH).
    #[arg(long, value_name = "PATH")]
    pub firecracker: Option<std::path::PathBuf>,
    /// Path of a cloud-hypervisor binary to report.
    #[arg(long, value_name = "PATH")]
    pub cloud_hypervisor: Option<std::path::PathBuf>,
}

/// Runs `vclab host`.
pub fn run(args: Args) -> anyhow::Result<i32> {
    let host = HostRecord::detect(&[
        ("firecracker", args.firecracker.as_deref()),
        ("cloud-hypervisor", args.cloud_hypervisor.as_deref()),
    ]);
    if args.json {
        println!("{}", serde_json::to_string(&host)?);
    } else {
        print!("{}", render_text(&host));
    }
    Ok(0)
}

/// The human-readable description.
pub fn render_text(h: &HostRecord) -> String {
    let mut s = String::new();
    s += &format!("vclab        {}\n", h.vclab_version);
    s += &format!("cpu          {} ({} logical CPUs)\n", h.cpu_model, h.cores);
    s += &format!("memory       {} MiB\n", h.memory_mib);
    s += &format!("kernel       {}\n", h.kernel);
    s += &format!(
        "kvm          {}, kind {}: {}\n",
        if h.kvm_present { "present" } else { "absent" },
        h.kvm_name(),
        h.kvm_kind.map_or("unknown", |k| k.describe())
    );
    s += &format!("             {}\n", h.kvm_explanation);
    s += &format!("cgroups      {}\n", h.cgroup_name());
    s += "peers\n";
    for p in &h.peers {
        match (&p.path, &p.version) {
            (Some(path), v) => {
                s += &format!(
                    "  {:<20} {}  {}\n",
                    p.name,
                    path.display(),
                    v.as_deref().unwrap_or("(no version reported)")
                )
            }
            (None, _) => s += &format!("  {:<20} not installed\n", p.name),
        }
    }
    s
}
