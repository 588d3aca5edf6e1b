//! Fuzzes the RAM parsers: a `firmware/memmap` entry (the input split into
//! start, end and type at NUL bytes) and `/proc/iomem` text. Nothing may
//! panic; every range is non-empty and does not wrap; iomem ranges come back
//! sorted with gaps between them (merged), and bad lines name a real line.
//!
//! The checks live in `unidma_tests::fuzz_checks::sysfs_ram`, which
//! `cargo test --workspace` also runs (tests/tests/fuzz_corpus.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| unidma_tests::fuzz_checks::sysfs_ram(data));
