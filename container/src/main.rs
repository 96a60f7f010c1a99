//! `vclab-container`: the lean container launcher binary. It is the same
//! launcher as `vclab container run` ([`vclab_container::cli`]) without the
//! rest of the lab's CLI, so its own memory stays small (1.6 MB peak RSS for
//! `/bin/true` as `scripts/build-static.sh` builds it; see DESIGN.md).

fn main() {
    let code = vclab_container::cli::main("vclab-container", std::env::args_os().skip(1));
    std::process::exit(code);
}
