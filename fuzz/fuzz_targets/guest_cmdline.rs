//! The `vclab.*` guest command line parser (`GuestCmdline::parse`, `parse_word`): never panics,
//! and what it reads survives a round trip (its Display, parsed again, gives the same settings;
//! every word, written back, parses to the same word).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vclab_fuzz::targets::guest_cmdline(data));
