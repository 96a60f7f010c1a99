//! The launcher's OCI bundle parser: config.json bytes, parsed as oci-spec's `Spec` (what
//! `spec::load_bundle` does with the file), then mapped by `spec::from_spec` onto the launcher's
//! configuration. It must never panic; it only stats the bind sources it names.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vclab_fuzz::targets::oci_bundle(data));
