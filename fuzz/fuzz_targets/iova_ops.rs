//! Fuzzes the IOVA allocator against a plain model of the kernel's allocation rules.
//!
//! The input is decoded with `arbitrary`; the checks live in
//! `unidma_tests::fuzz_checks::iova_ops`, which `cargo test --workspace` also
//! runs (tests/tests/fuzz_corpus.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| unidma_tests::fuzz_checks::iova_ops(data));
