//! A backend decorator that records every mapping call — operation,
//! arguments, result — into a bounded ring or hands it to a callback.

use super::layer::{Layered, Middleware};
use crate::attrs::DmaAttrs;
use crate::direction::Direction;
use crate::error::DmaError;
use crate::port::backend::{CoherentRequest, DmaBackend, MapRequest, SegPlan};
use crate::sync::Mutex;
use crate::types::DmaAddr;
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use scatterlist::SgTable;

/// One traced call with its arguments.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum TraceOp {
    /// `map(req)`.
    Map {
        /// The request.
        req: MapRequest,
    },
    /// `unmap(dma, req)`.
    Unmap {
        /// The address.
        dma: DmaAddr,
        /// The request.
        req: MapRequest,
    },
    /// `map_coherent(req)`.
    MapCoherent {
        /// The request.
        req: CoherentRequest,
    },
    /// `unmap_coherent(dma, req)`.
    UnmapCoherent {
        /// The address.
        dma: DmaAddr,
        /// The request.
        req: CoherentRequest,
    },
    /// `map_sg(table, plan, dir, attrs)`.
    MapSg {
        /// CPU entries of the table.
        orig_nents: usize,
        /// The plan.
        plan: Vec<SegPlan>,
        /// Direction.
        dir: Direction,
        /// Attributes.
        attrs: DmaAttrs,
    },
    /// `unmap_sg(table, plan, dir, attrs)`.
    UnmapSg {
        /// The table's DMA segments at the call (address, length).
        segments: Vec<(DmaAddr, u64)>,
        /// The plan.
        plan: Vec<SegPlan>,
        /// Direction.
        dir: Direction,
        /// Attributes.
        attrs: DmaAttrs,
    },
    /// `sync_for_cpu(dma, len, dir)`.
    SyncForCpu {
        /// Address.
        dma: DmaAddr,
        /// Length.
        len: u64,
        /// Direction.
        dir: Direction,
    },
    /// `sync_for_device(dma, len, dir)`.
    SyncForDevice {
        /// Address.
        dma: DmaAddr,
        /// Length.
        len: u64,
        /// Direction.
        dir: Direction,
    },
    /// `note_mapping_error_check(dma)`.
    MappingErrorCheck {
        /// Address checked.
        dma: DmaAddr,
    },
}

/// What a successful traced call returned.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum TraceOk {
    /// Nothing (unmap, sync, check).
    Done,
    /// A single mapping's address.
    Dma(DmaAddr),
    /// A table mapping: its DMA segments (address, length), `nents` of them.
    Segments(Vec<(DmaAddr, u64)>),
}

/// One record.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TraceRecord {
    /// Call number, from 0, over all traced calls of this decorator.
    pub seq: u64,
    /// The call.
    pub op: TraceOp,
    /// Its outcome.
    pub result: Result<TraceOk, DmaError>,
}

/// Where records go.
pub enum TraceSink {
    /// Kept in a ring of this many records; the oldest are dropped (counted).
    Ring(usize),
    /// Handed to a callback (called outside any lock of the decorator).
    Callback(Box<dyn Fn(&TraceRecord) + Send + Sync>),
}

impl core::fmt::Debug for TraceSink {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TraceSink::Ring(n) => write!(f, "Ring({n})"),
            TraceSink::Callback(_) => f.write_str("Callback(..)"),
        }
    }
}

/// The tracing decorator.
pub type Tracing<B> = Layered<B, TraceLayer>;

/// Tracing's [`Middleware`]: the sink and the ring. Built by
/// [`Tracing::ring`], [`Tracing::callback`] and [`Tracing::with_sink`].
#[derive(Debug)]
pub struct TraceLayer {
    name: String,
    sink: TraceSink,
    ring: Mutex<VecDeque<TraceRecord>>,
    seq: AtomicU64,
    dropped: AtomicU64,
}

fn segments(table: &SgTable) -> Vec<(DmaAddr, u64)> {
    table
        .dma_iter()
        .map(|s| (s.dma_address(), u64::from(s.dma_len())))
        .collect()
}

impl<B: DmaBackend> Tracing<B> {
    /// Traces into a ring of `capacity` records.
    pub fn ring(inner: B, capacity: usize) -> Self {
        Self::with_sink(inner, TraceSink::Ring(capacity))
    }

    /// Traces into a callback.
    pub fn callback(inner: B, f: impl Fn(&TraceRecord) + Send + Sync + 'static) -> Self {
        Self::with_sink(inner, TraceSink::Callback(Box::new(f)))
    }

    /// Traces into `sink`.
    pub fn with_sink(inner: B, sink: TraceSink) -> Self {
        let name = format!("tracing({})", inner.name());
        let layer = TraceLayer {
            name,
            sink,
            ring: Mutex::new(VecDeque::new()),
            seq: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        };
        Layered::wrap(inner, layer)
    }

    /// The records in the ring, oldest first (empty with a callback sink).
    pub fn records(&self) -> Vec<TraceRecord> {
        self.layer().ring.lock().iter().cloned().collect()
    }

    /// Takes the records out of the ring.
    pub fn take(&self) -> Vec<TraceRecord> {
        self.layer().ring.lock().drain(..).collect()
    }

    /// Records dropped because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.layer().dropped.load(Ordering::Relaxed)
    }
}

impl TraceLayer {
    fn emit(&self, op: TraceOp, result: Result<TraceOk, DmaError>) {
        let rec = TraceRecord {
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            op,
            result,
        };
        match &self.sink {
            TraceSink::Callback(f) => f(&rec),
            TraceSink::Ring(cap) => {
                if *cap == 0 {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                let mut ring = self.ring.lock();
                while ring.len() >= *cap {
                    ring.pop_front();
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
                ring.push_back(rec);
            }
        }
    }
}

fn done(r: &Result<(), DmaError>) -> Result<TraceOk, DmaError> {
    r.clone().map(|()| TraceOk::Done)
}

/// Queries and constraints are not traced: they forward.
impl<B: DmaBackend + ?Sized> Middleware<B> for TraceLayer {
    fn name<'a>(&'a self, _next: &'a B) -> &'a str {
        &self.name
    }

    fn map(&self, next: &B, req: &MapRequest) -> Result<DmaAddr, DmaError> {
        let r = next.map(req);
        self.emit(TraceOp::Map { req: *req }, r.clone().map(TraceOk::Dma));
        r
    }

    fn unmap(&self, next: &B, dma: DmaAddr, req: &MapRequest) -> Result<(), DmaError> {
        let r = next.unmap(dma, req);
        self.emit(TraceOp::Unmap { dma, req: *req }, done(&r));
        r
    }

    fn map_coherent(&self, next: &B, req: &CoherentRequest) -> Result<DmaAddr, DmaError> {
        let r = next.map_coherent(req);
        self.emit(
            TraceOp::MapCoherent { req: *req },
            r.clone().map(TraceOk::Dma),
        );
        r
    }

    fn unmap_coherent(
        &self,
        next: &B,
        dma: DmaAddr,
        req: &CoherentRequest,
    ) -> Result<(), DmaError> {
        let r = next.unmap_coherent(dma, req);
        self.emit(TraceOp::UnmapCoherent { dma, req: *req }, done(&r));
        r
    }

    fn map_sg(
        &self,
        next: &B,
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<usize, DmaError> {
        let orig_nents = table.orig_nents();
        let r = next.map_sg(table, plan, dir, attrs);
        let res = match &r {
            Ok(_) => Ok(TraceOk::Segments(segments(table))),
            Err(e) => Err(e.clone()),
        };
        let op = TraceOp::MapSg {
            orig_nents,
            plan: plan.to_vec(),
            dir,
            attrs,
        };
        self.emit(op, res);
        r
    }

    fn unmap_sg(
        &self,
        next: &B,
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        let segs = segments(table);
        let r = next.unmap_sg(table, plan, dir, attrs);
        let op = TraceOp::UnmapSg {
            segments: segs,
            plan: plan.to_vec(),
            dir,
            attrs,
        };
        self.emit(op, done(&r));
        r
    }

    fn sync_for_cpu(
        &self,
        next: &B,
        dma: DmaAddr,
        len: u64,
        dir: Direction,
    ) -> Result<(), DmaError> {
        let r = next.sync_for_cpu(dma, len, dir);
        self.emit(TraceOp::SyncForCpu { dma, len, dir }, done(&r));
        r
    }

    fn sync_for_device(
        &self,
        next: &B,
        dma: DmaAddr,
        len: u64,
        dir: Direction,
    ) -> Result<(), DmaError> {
        let r = next.sync_for_device(dma, len, dir);
        self.emit(TraceOp::SyncForDevice { dma, len, dir }, done(&r));
        r
    }

    fn note_mapping_error_check(&self, next: &B, dma: DmaAddr) {
        next.note_mapping_error_check(dma);
        self.emit(TraceOp::MappingErrorCheck { dma }, Ok(TraceOk::Done));
    }
}
