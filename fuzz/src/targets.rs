//! The body of each fuzz target: one function per target, taking the raw input. Each panics
//! when a property is broken; each returns quietly on input its parser refuses.

use std::path::Path;
use std::time::Instant;

use oci_spec::runtime::Spec;
use vclab_container::size::{parse_cpus, parse_size, CPU_PERIOD_US};
use vclab_contract::cmdline::{parse_word, words, GuestCmdline};

/// The bundle directory the `oci_bundle` target resolves relative paths against (it does not
/// exist: bind sources under it are refused, as for a missing file).
const BUNDLE: &str = "/nonexistent/vclab-fuzz-bundle";

/// config.json bytes, parsed as oci-spec's `Spec` (what `spec::load_bundle` does with the
/// file), then mapped by `spec::from_spec`. It only stats the bind sources it names.
pub fn oci_bundle(data: &[u8]) {
    let Ok(spec) = serde_json::from_slice::<Spec>(data) else {
        return;
    };
    let bundle = Path::new(BUNDLE);
    if let Ok(cfg) = vclab_container::spec::from_spec(&spec, bundle, &bundle.join("config.json")) {
        assert!(!cfg.args.is_empty(), "a mapped bundle has a command");
    }
}

/// The launcher's command line (the input split at NUL bytes): `cli::parse` reads no file and
/// no environment variable and executes nothing. Every error carries a non-zero exit code.
pub fn launcher_cli(data: &[u8]) {
    if let Err(e) = vclab_container::cli::parse(crate::argv::decode(data)) {
        let _ = e.to_string();
        assert_ne!(e.exit_code(), 0, "an error with exit code 0: {e}");
    }
}

/// The size and CPU-count spellings (`256m`, `1.5g`, `0.5`): what is accepted is in range (at
/// least one byte; a CFS quota from 1 ms to 1024 CPUs).
pub fn size(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(bytes) = parse_size(text) {
        assert!(bytes >= 1, "{text:?} gave 0 bytes");
    }
    if let Ok(quota) = parse_cpus(text) {
        let range = 1000..=1024 * CPU_PERIOD_US;
        assert!(range.contains(&quota), "{text:?} gave quota {quota}");
    }
}

/// The `vclab.*` guest command line: every word, written back, parses to the same word, and
/// the settings' Display, parsed again, gives the same settings.
pub fn guest_cmdline(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for word in words(text).flatten() {
        let written = word.to_string();
        assert_eq!(parse_word(&written), Ok(word), "word {written:?}");
    }
    let Ok(parsed) = GuestCmdline::parse(text) else {
        return;
    };
    let written = parsed.to_string();
    assert_eq!(
        GuestCmdline::parse(&written),
        Ok(parsed),
        "command line {written:?}"
    );
    let _ = parsed.params();
}

/// A script of exits against the VMM's device model (`model::play`).
pub fn vmm_exit(data: &[u8]) {
    crate::model::play(data);
}

/// The VMM's command line (the input split at NUL bytes): parsing only, no VM is run.
pub fn vmm_cli(data: &[u8]) {
    if let Err(e) = vclab_vmm::cli::parse(crate::argv::decode(data), Instant::now()) {
        let _ = e.to_string();
    }
}

/// A guest's virtqueue against the virtio-blk device behind its transport
/// (`virtio_blk::run`).
pub fn virtio_blk(data: &[u8]) {
    crate::virtio_blk::run(data);
}

/// A target's body.
pub type Body = fn(&[u8]);

/// Every target by name, for the regression replay.
pub const ALL: [(&str, Body); 9] = [
    ("oci_bundle", oci_bundle),
    ("launcher_cli", launcher_cli),
    ("size", size),
    ("guest_cmdline", guest_cmdline),
    ("vmm_exit", vmm_exit),
    ("vmm_cli", vmm_cli),
    ("containerfile", crate::containerfile::containerfile),
    ("oci_layout", crate::oci_layout::oci_layout),
    ("virtio_blk", virtio_blk),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays `regressions/<target>/*` (inputs that once failed) and the tracked seeds.
    #[test]
    fn regressions_and_seeds_pass() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut replayed = 0;
        for (name, body) in ALL {
            for dir in ["regressions", "corpus"] {
                let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else {
                    continue;
                };
                for entry in entries {
                    let path = entry.unwrap().path();
                    eprintln!("replaying {}", path.display());
                    body(&std::fs::read(&path).unwrap());
                    replayed += 1;
                }
            }
        }
        assert!(replayed >= ALL.len(), "only {replayed} inputs replayed");
    }
}
