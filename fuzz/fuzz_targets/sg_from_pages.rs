//! Fuzzes the page builder (`SgTable::from_pages_kinds`, i.e. Linux
//! `sg_alloc_table_from_pages_segment`) and a two-step append: decoded pfns,
//! kinds, offset, size and max_segment must never panic, and every table
//! built must cover exactly the requested bytes, in order, with no entry above
//! max_segment and the kernel's counts.
//!
//! The checks live in `unidma_tests::fuzz_checks::sg_from_pages`, which
//! `cargo test --workspace` also runs (tests/tests/fuzz_corpus.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| unidma_tests::fuzz_checks::sg_from_pages(data));
