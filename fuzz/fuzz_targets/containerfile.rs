//! The image builder's Containerfile parser: text → `containerfile::parse`, then Docker's word
//! expansion over every value the builder expands. It must never panic; a parsed file has
//! instructions on increasing 1-based lines within the text, and expansion of a word with no
//! `$`, quote or backslash gives the word back.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vclab_fuzz::containerfile::containerfile(data));
