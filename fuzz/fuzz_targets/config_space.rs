//! Fuzzes the config-space decoder: any bytes must decode or fail with a
//! typed error, never panic, and every capability it reports must lie
//! inside the buffer.
//!
//! The checks live in `unidma_tests::fuzz_checks::config_space`, which
//! `cargo test --workspace` also runs (tests/tests/fuzz_corpus.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| unidma_tests::fuzz_checks::config_space(data));
