//! Fuzzes every page-table format and page size against a model: walker == writer == model.
//!
//! The input is decoded with `arbitrary`; the checks live in
//! `unidma_tests::fuzz_checks::pgtable_ops`, which `cargo test --workspace` also
//! runs (tests/tests/fuzz_corpus.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| unidma_tests::fuzz_checks::pgtable_ops(data));
