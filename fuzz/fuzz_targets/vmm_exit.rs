//! The VMM's exit handler fed a script of arbitrary exits (port I/O of any port, width and data,
//! MMIO, HLT, shutdown, internal errors, system events) against the device model with a small
//! guest memory for the lab device's line records: it must never panic, read outside guest
//! memory (ASan) or loop (libFuzzer's -timeout). The script format is in `src/exits.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vclab_fuzz::targets::vmm_exit(data));
