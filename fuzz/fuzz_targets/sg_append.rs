//! Fuzzes scatterlist appends, chains and splits against a byte-stream model.
//!
//! The input is decoded with `arbitrary`; the checks live in
//! `unidma_tests::fuzz_checks::sg_append`, which `cargo test --workspace` also
//! runs (tests/tests/fuzz_corpus.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| unidma_tests::fuzz_checks::sg_append(data));
