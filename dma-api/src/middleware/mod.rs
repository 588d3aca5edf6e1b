//! Decorators that wrap any [`crate::port::DmaBackend`] and implement it
//! themselves, so they stack in any order with each other and with
//! [`crate::debug::DmaDebug`] (the smoltcp-middleware shape):
//!
//! * [`Tracing`] records every mapping call with its arguments and result;
//! * [`FaultInject`] fails chosen calls with chosen errors, to exercise a
//!   driver's retry and fallback paths.
//!
//! Pointers to backends (`&T`, `Box<T>`, `Arc<T>`, `dyn` included) are
//! backends too, so a decorator can wrap a shared, type-erased backend.

mod fault;
mod forward;
mod rng;
mod tracing;

pub use fault::{FaultCall, FaultInject, FaultOp, FaultOps, InjectError, Trigger};
pub use rng::XorShift64;
pub use tracing::{TraceOk, TraceOp, TraceRecord, TraceSink, Tracing};
