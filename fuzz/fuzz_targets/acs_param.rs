//! Fuzzes the `pci=` ACS parameter parsers (`disable_acs_redir=`,
//! `config_acs=`): no panic, deterministic, accepted values print back and
//! re-parse to the same entries, and applying them to a fixed topology only
//! changes ACS control bits the ports implement.
//!
//! The checks live in `unidma_tests::fuzz_checks::acs_param`, which
//! `cargo test --workspace` also runs (tests/tests/fuzz_corpus.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| unidma_tests::fuzz_checks::acs_param(data));
