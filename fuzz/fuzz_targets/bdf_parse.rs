//! Fuzzes the BDF parser: it must never panic, and anything it accepts must
//! print back to a string that parses to the same address.
//!
//! The checks live in `unidma_tests::fuzz_checks::bdf_parse`, which
//! `cargo test --workspace` also runs (tests/tests/fuzz_corpus.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| unidma_tests::fuzz_checks::bdf_parse(data));
