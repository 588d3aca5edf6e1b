//! Fuzzes random windows and masks: every address translates and round-trips or gets its typed error, on every arch backend.
//!
//! The input is decoded with `arbitrary`; the checks live in
//! `unidma_tests::fuzz_checks::arch_translate`, which `cargo test --workspace` also
//! runs (tests/tests/fuzz_corpus.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| unidma_tests::fuzz_checks::arch_translate(data));
