//! Fuzzes dma-sim's sysfs device-path parser (`parse_device_path`): no
//! panic, every BDF in a result is valid, and the components print back to a
//! path that parses to the same value.
//!
//! The checks live in `unidma_tests::fuzz_checks::device_path`, which
//! `cargo test --workspace` also runs (tests/tests/fuzz_corpus.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| unidma_tests::fuzz_checks::device_path(data));
