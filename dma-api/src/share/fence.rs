//! Completions for DMA still in flight, and the bounded wait.
//!
//! An importer attaches a [`Fence`] to its attachment for DMA its device
//! still runs on a mapping (Linux: the `dma_resv` fences). Invalidation
//! waits for every fence of the importers it notifies; revocation waits
//! for every importer's unmap and acknowledgement. Both waits are bounded
//! by a [`WaitBudget`] and pace themselves through a [`Wait`] port, so a
//! stuck importer is reported by name instead of hanging the exporter.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, Ordering};

/// A one-shot completion (Linux `struct dma_fence`, reduced to signalled or
/// not). Clones share the state.
#[derive(Clone, Debug, Default)]
pub struct Fence(Arc<AtomicBool>);

impl Fence {
    /// An unsignalled fence.
    pub fn new() -> Self {
        Self::default()
    }

    /// Signals it (`dma_fence_signal`): the DMA it guards is done.
    pub fn signal(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// True once signalled.
    pub fn is_signaled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// How a bounded wait passes time between checks: a kernel would sleep or
/// schedule, the simulator advances its clock, a test drives importers.
pub trait Wait: Send + Sync {
    /// Called before check `round` (1-based) after the first check failed.
    fn pause(&self, round: u32);
}

/// Spins (`core::hint::spin_loop`) between checks.
#[derive(Clone, Copy, Debug, Default)]
pub struct SpinWait;

impl Wait for SpinWait {
    fn pause(&self, _: u32) {
        core::hint::spin_loop();
    }
}

/// Yields the thread between checks.
#[cfg(feature = "std")]
#[derive(Clone, Copy, Debug, Default)]
pub struct YieldWait;

#[cfg(feature = "std")]
impl Wait for YieldWait {
    fn pause(&self, _: u32) {
        std::thread::yield_now();
    }
}

/// How many checks a bounded wait makes before it gives up.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct WaitBudget {
    /// Checks after the first one (0: check once, never wait).
    pub rounds: u32,
}

impl WaitBudget {
    /// Check once, never wait.
    pub const NONE: Self = Self { rounds: 0 };
}

impl Default for WaitBudget {
    fn default() -> Self {
        Self { rounds: 1000 }
    }
}
