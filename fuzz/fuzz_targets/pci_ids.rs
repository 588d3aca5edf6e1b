//! Fuzzes the PCI ID database parser (`unidma::pci_ids::PciIds`): no input
//! may panic; errors name a line and column inside the input; an accepted
//! database prints back in the `pci.ids` format and parses to itself.
//!
//! The checks live in `unidma_tests::fuzz_checks::pci_ids`, which
//! `cargo test --workspace` also runs (tests/tests/fuzz_corpus.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| unidma_tests::fuzz_checks::pci_ids(data));
