//! Decorators that wrap any [`crate::port::DmaBackend`] and are backends
//! themselves, so they stack in any order with each other and with
//! [`crate::debug::DmaDebug`] (the smoltcp-middleware shape). Each is a
//! [`Middleware`] that names only the calls it changes, wrapped around its
//! backend by [`Layered`], which forwards everything else (`layer.rs` says
//! why):
//!
//! * [`Tracing`] records every mapping call with its arguments and result;
//! * [`FaultInject`] fails chosen calls with chosen errors, to exercise a
//!   driver's retry and fallback paths.
//!
//! Pointers to backends (`&T`, `Box<T>`, `Arc<T>`, `dyn` included) are
//! backends too, so a decorator can wrap a shared, type-erased backend.

mod fault;
mod forward;
mod layer;
mod rng;
mod tracing;

pub use fault::{FaultCall, FaultInject, FaultLayer, FaultOp, FaultOps, InjectError, Trigger};
pub use layer::{Identity, Layered, Middleware};
pub use rng::XorShift64;
pub use tracing::{TraceLayer, TraceOk, TraceOp, TraceRecord, TraceSink, Tracing};
