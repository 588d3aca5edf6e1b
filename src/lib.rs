//! unidma: the unified DMA mapping layer assembled into machines.
//!
//! The root crate is the only place that picks concrete backends by name; it
//! holds the machine assembly, the scenarios and the `unidma` CLI.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod scenarios;
