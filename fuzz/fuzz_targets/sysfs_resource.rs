//! Fuzzes the sysfs `resource` parser: any text must parse or fail with a
//! typed error naming a real line, never panic; every range it returns is
//! non-empty and does not wrap.
//!
//! The checks live in `unidma_tests::fuzz_checks::sysfs_resource`, which
//! `cargo test --workspace` also runs (tests/tests/fuzz_corpus.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| unidma_tests::fuzz_checks::sysfs_resource(data));
