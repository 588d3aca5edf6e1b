//! A backend decorator that fails chosen calls with chosen errors, before
//! they reach the wrapped backend (nothing is mapped by a failed call), so a
//! driver's retry path for `NoResources` (IOVA space or bounce slots
//! exhausted) and its fallback paths can be exercised deterministically.
//!
//! Only calls that may fail in Linux are injectable: `map`, `map_sg`,
//! `map_coherent` (`dma_alloc_attrs` returns NULL) and the syncs (bounce
//! copies through an IOMMU can fail here). Unmaps never fail in Linux
//! (`void`, `dma_free_attrs` included), so they are always forwarded.

use super::layer::{Layered, Middleware};
use super::rng::XorShift64;
use crate::attrs::DmaAttrs;
use crate::direction::Direction;
use crate::error::DmaError;
use crate::port::backend::{CoherentRequest, DmaBackend, MapRequest, SegPlan};
use crate::sync::Mutex;
use crate::types::{DmaAddr, PhysAddr};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicU64, Ordering};
use scatterlist::SgTable;

bitflags::bitflags! {
    /// Which operations a [`FaultInject`] may fail.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
    pub struct FaultOps: u8 {
        /// `map`.
        const MAP = 1 << 0;
        /// `map_sg`.
        const MAP_SG = 1 << 1;
        /// `sync_for_cpu`.
        const SYNC_FOR_CPU = 1 << 2;
        /// `sync_for_device`.
        const SYNC_FOR_DEVICE = 1 << 3;
        /// `map_coherent` (a coherent allocation's mapping).
        const MAP_COHERENT = 1 << 4;
    }
}

/// One injectable operation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum FaultOp {
    /// `map`.
    Map,
    /// `map_sg`.
    MapSg,
    /// `sync_for_cpu`.
    SyncForCpu,
    /// `sync_for_device`.
    SyncForDevice,
    /// `map_coherent`.
    MapCoherent,
}

impl FaultOp {
    const fn flag(self) -> FaultOps {
        match self {
            FaultOp::Map => FaultOps::MAP,
            FaultOp::MapSg => FaultOps::MAP_SG,
            FaultOp::SyncForCpu => FaultOps::SYNC_FOR_CPU,
            FaultOp::SyncForDevice => FaultOps::SYNC_FOR_DEVICE,
            FaultOp::MapCoherent => FaultOps::MAP_COHERENT,
        }
    }
}

/// What a trigger sees of an eligible call.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FaultCall {
    /// The operation.
    pub op: FaultOp,
    /// 1-based number of this call among the eligible calls.
    pub nth: u64,
    /// Physical start (`map`, `map_coherent`; first CPU entry of `map_sg`).
    pub phys: Option<PhysAddr>,
    /// DMA address (syncs).
    pub dma: Option<DmaAddr>,
    /// Bytes involved (a table's total CPU length).
    pub len: u64,
    /// Direction.
    pub dir: Direction,
}

/// When to fail an eligible call.
pub enum Trigger {
    /// Never (counting only).
    Never,
    /// Every `n`-th eligible call (`n = 0`: never).
    EveryNth(u64),
    /// The first `n` eligible calls.
    FirstN(u64),
    /// Each call with probability `per_million / 1e6`, from a seeded
    /// xorshift64* so a run is reproducible.
    Probability {
        /// Probability in parts per million.
        per_million: u32,
        /// RNG seed.
        seed: u64,
    },
    /// When the predicate says so.
    Predicate(Box<dyn Fn(&FaultCall) -> bool + Send + Sync>),
}

impl core::fmt::Debug for Trigger {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Trigger::Never => f.write_str("Never"),
            Trigger::EveryNth(n) => write!(f, "EveryNth({n})"),
            Trigger::FirstN(n) => write!(f, "FirstN({n})"),
            Trigger::Probability { per_million, seed } => {
                write!(
                    f,
                    "Probability {{ per_million: {per_million}, seed: {seed} }}"
                )
            }
            Trigger::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}

/// The error an injected fault returns.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum InjectError {
    /// A `NoResources` error ([`DmaError::OutOfMemory`] with the call's
    /// length): IOVA space or bounce slots exhausted, retry later.
    NoResources,
    /// This exact error.
    Error(DmaError),
}

/// The fault-injection decorator.
pub type FaultInject<B> = Layered<B, FaultLayer>;

/// Fault injection's [`Middleware`]: which calls fail, when, with what.
/// Built by [`FaultInject::new`].
#[derive(Debug)]
pub struct FaultLayer {
    name: String,
    ops: FaultOps,
    trigger: Trigger,
    error: InjectError,
    rng: Mutex<XorShift64>,
    calls: AtomicU64,
    injected: AtomicU64,
}

impl<B: DmaBackend> FaultInject<B> {
    /// Fails the calls in `ops` picked by `trigger` with `error`.
    pub fn new(inner: B, ops: FaultOps, trigger: Trigger, error: InjectError) -> Self {
        let seed = match &trigger {
            Trigger::Probability { seed, .. } => *seed,
            _ => 0,
        };
        let name = format!("fault({})", inner.name());
        let layer = FaultLayer {
            name,
            ops,
            trigger,
            error,
            rng: Mutex::new(XorShift64::new(seed)),
            calls: AtomicU64::new(0),
            injected: AtomicU64::new(0),
        };
        Layered::wrap(inner, layer)
    }

    /// Faults injected so far.
    pub fn injected(&self) -> u64 {
        self.layer().injected.load(Ordering::Relaxed)
    }

    /// Eligible calls seen so far (injected or not).
    pub fn calls(&self) -> u64 {
        self.layer().calls.load(Ordering::Relaxed)
    }
}

impl FaultLayer {
    /// Decides one call; `Err` is the injected error.
    fn gate(
        &self,
        op: FaultOp,
        phys: Option<PhysAddr>,
        dma: Option<DmaAddr>,
        len: u64,
        dir: Direction,
    ) -> Result<(), DmaError> {
        if !self.ops.contains(op.flag()) {
            return Ok(());
        }
        let nth = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let call = FaultCall {
            op,
            nth,
            phys,
            dma,
            len,
            dir,
        };
        let fire = match &self.trigger {
            Trigger::Never => false,
            Trigger::EveryNth(n) => *n != 0 && nth.is_multiple_of(*n),
            Trigger::FirstN(n) => nth <= *n,
            Trigger::Probability { per_million, .. } => self.rng.lock().chance(*per_million),
            Trigger::Predicate(p) => p(&call),
        };
        if !fire {
            return Ok(());
        }
        self.injected.fetch_add(1, Ordering::Relaxed);
        Err(match &self.error {
            InjectError::NoResources => DmaError::OutOfMemory { bytes: len },
            InjectError::Error(e) => e.clone(),
        })
    }
}

/// Unmaps, queries and constraints are not injectable: they forward.
impl<B: DmaBackend + ?Sized> Middleware<B> for FaultLayer {
    fn name<'a>(&'a self, _next: &'a B) -> &'a str {
        &self.name
    }

    fn map(&self, next: &B, req: &MapRequest) -> Result<DmaAddr, DmaError> {
        self.gate(FaultOp::Map, Some(req.phys), None, req.len, req.dir)?;
        next.map(req)
    }

    fn map_coherent(&self, next: &B, req: &CoherentRequest) -> Result<DmaAddr, DmaError> {
        let dir = Direction::Bidirectional;
        self.gate(FaultOp::MapCoherent, Some(req.phys), None, req.len, dir)?;
        next.map_coherent(req)
    }

    fn map_sg(
        &self,
        next: &B,
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<usize, DmaError> {
        let phys = plan.first().map(|p| p.phys);
        self.gate(FaultOp::MapSg, phys, None, table.total_len(), dir)?;
        next.map_sg(table, plan, dir, attrs)
    }

    fn sync_for_cpu(
        &self,
        next: &B,
        dma: DmaAddr,
        len: u64,
        dir: Direction,
    ) -> Result<(), DmaError> {
        self.gate(FaultOp::SyncForCpu, None, Some(dma), len, dir)?;
        next.sync_for_cpu(dma, len, dir)
    }

    fn sync_for_device(
        &self,
        next: &B,
        dma: DmaAddr,
        len: u64,
        dir: Direction,
    ) -> Result<(), DmaError> {
        self.gate(FaultOp::SyncForDevice, None, Some(dma), len, dir)?;
        next.sync_for_device(dma, len, dir)
    }
}
