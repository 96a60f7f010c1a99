//! The launcher's size and CPU-count parsers (`256m`, `1.5g`, `0.5`): never panic, and what they
//! accept is in range (at least one byte; a CFS quota of 1 ms to 1024 CPUs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vclab_fuzz::targets::size(data));
