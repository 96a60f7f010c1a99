//! `vclab-vmm`: the lab's VMM as a small dedicated binary (like Firecracker's
//! `firecracker`), with the same arguments as `vclab vm run`. Its start-up
//! time and memory are what the lab reports for the VMM.

fn main() {
    // Timestamps in the report count from here.
    let origin = std::time::Instant::now();
    let code = vclab_vmm::cli::main(std::env::args_os().skip(1), origin);
    std::process::exit(code);
}
