//! Fuzzes the machine-file parser: it must never panic, and any file it
//! accepts must satisfy the machine's invariants (topology structure, memory
//! map order and disjointness, every memory BAR in the map) and compute
//! IOMMU groups and a P2P route for every pair of its first functions.
//!
//! The checks live in `unidma_tests::fuzz_checks::machine_file`, which
//! `cargo test --workspace` also runs (tests/tests/fuzz_corpus.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| unidma_tests::fuzz_checks::machine_file(data));
