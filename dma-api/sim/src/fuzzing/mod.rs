//! Fuzzing address translation (feature `arbitrary`).
//!
//! Structured inputs built with `arbitrary`: random machines that are valid
//! by construction ([`machine_gen`]) and operation sequences over them
//! ([`ops`]); a harness that assembles the machine, runs the sequence
//! through `DmaDevice`s and, after every step, checks the invariants of
//! invariants (`invariants.rs`) by moving bytes on the simulated fabric and probing it —
//! never by asking the code under test what it did. [`harness`] takes a
//! backend factory, so the same fuzzing runs against a caller's backend.
//!
//! Fuzz targets (fuzz/fuzz_targets/) decode their bytes into these inputs;
//! `cargo test` runs the same checks over the checked-in seeds and seeded
//! random inputs (tests/tests/fuzz_corpus.rs, fuzz_ops.rs), and
//! tests/tests/fuzz_mutants.rs shows that planted bugs are found.
//!
//! # Example: fuzz your own backend
//!
//! A [`BackendFactory`] gets each endpoint with the backend the assembly
//! built for it and returns the one to test: a decorator around it, or a
//! backend of your own. Here every endpoint runs through the standard
//! backend wrapped in dma-debug, over a few random cases:
//!
//! ```
//! use dma_api::debug::DmaDebug;
//! use dma_api::port::DmaBackend;
//! use dma_sim::fuzzing::{run_case, FactoryEnv, FuzzCase};
//! use std::sync::Arc;
//!
//! let factory = |env: &FactoryEnv<'_>| -> Arc<dyn DmaBackend> {
//!     Arc::new(DmaDebug::new(env.endpoint.device.raw_backend().clone()))
//! };
//! let mut seed = 0x5eed_u64;
//! for _ in 0..4 {
//!     let bytes: Vec<u8> = (0..400)
//!         .map(|_| {
//!             seed ^= seed << 13;
//!             seed ^= seed >> 7;
//!             seed ^= seed << 17;
//!             seed as u8
//!         })
//!         .collect();
//!     let case = FuzzCase::from_bytes(&bytes)?;
//!     // A broken invariant is an error whose Display is the replay form:
//!     // the machine file and the numbered steps.
//!     let stats = run_case(&case, &factory).map_err(|v| v.to_string())?;
//!     assert_eq!(stats.steps, case.ops.len());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
pub mod harness;
mod invariants;
pub mod machine_gen;
pub mod ops;

pub use harness::{
    check_bytes, run_case, run_case_observed, BackendFactory, FactoryEnv, RunStats,
    StandardBackends, Violation,
};
pub use machine_gen::MachineSpec;
pub use ops::{FuzzCase, Op};

/// The smaller targets: one structure each against a plain model.
pub mod arch_translate;
pub mod iova_ops;
pub mod pgtable_ops;
pub mod sg_append;
