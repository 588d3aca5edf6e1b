//! Fuzzes a whole generated machine and an operation sequence over it: every invariant of `dma_sim::fuzzing` after every step, checked by moving bytes and probing the fabric.
//!
//! The input is decoded with `arbitrary`; the checks live in
//! `unidma_tests::fuzz_checks::dma_ops`, which `cargo test --workspace` also
//! runs (tests/tests/fuzz_corpus.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| unidma_tests::fuzz_checks::dma_ops(data));
