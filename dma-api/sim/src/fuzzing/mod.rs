//! Fuzzing address translation (feature `arbitrary`).
//!
//! Structured inputs built with `arbitrary`: random machines that are valid
//! by construction ([`machine_gen`]) and operation sequences over them
//! ([`ops`]); a harness that assembles the machine, runs the sequence
//! through `DmaDevice`s and, after every step, checks the invariants of
//! [`invariants`] by moving bytes on the simulated fabric and probing it —
//! never by asking the code under test what it did. [`harness`] takes a
//! backend factory, so the same fuzzing runs against a caller's backend.
pub mod harness;
mod invariants;
pub mod machine_gen;
pub mod ops;

pub use harness::{
    check_bytes, run_case, BackendFactory, FactoryEnv, RunStats, StandardBackends, Violation,
};
pub use machine_gen::MachineSpec;
pub use ops::{FuzzCase, Op};

/// The smaller targets: one structure each against a plain model.
pub mod arch_translate;
pub mod iova_ops;
pub mod pgtable_ops;
pub mod sg_append;
