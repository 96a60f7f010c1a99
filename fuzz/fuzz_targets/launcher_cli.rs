//! The launcher's command line parser (`vclab_container::cli::parse`, which reads no file and no
//! environment variable and executes nothing) with an arbitrary argument vector: the input
//! split at NUL bytes. It must never panic, and every error must carry a usage exit code.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vclab_fuzz::targets::launcher_cli(data));
