//! The VMM's command line parser (`vclab_vmm::cli::parse`, shared by `vclab-vmm` and `vclab vm
//! run`) with an arbitrary argument vector (the input split at NUL bytes). Parsing only: no VM
//! is run. It must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vclab_fuzz::targets::vmm_cli(data));
