//! A backend decorator that records every mapping call — operation,
//! arguments, result — into a bounded ring or hands it to a callback.

use crate::attrs::DmaAttrs;
use crate::device::DmaConstraints;
use crate::direction::Direction;
use crate::error::DmaError;
use crate::port::backend::{
    Bounce, CoherentRequest, ConstraintsRequest, DmaBackend, IovaOps, MapRequest, SegPlan,
};
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
#[derive(Debug)]
pub struct Tracing<B> {
    inner: B,
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
        Self {
            inner,
            name,
            sink,
            ring: Mutex::new(VecDeque::new()),
            seq: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The records in the ring, oldest first (empty with a callback sink).
    pub fn records(&self) -> Vec<TraceRecord> {
        self.ring.lock().iter().cloned().collect()
    }

    /// Takes the records out of the ring.
    pub fn take(&self) -> Vec<TraceRecord> {
        self.ring.lock().drain(..).collect()
    }

    /// Records dropped because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

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

impl<B: DmaBackend> DmaBackend for Tracing<B> {
    fn name(&self) -> &str {
        &self.name
    }

    fn map(&self, req: &MapRequest) -> Result<DmaAddr, DmaError> {
        let r = self.inner.map(req);
        self.emit(TraceOp::Map { req: *req }, r.clone().map(TraceOk::Dma));
        r
    }

    fn unmap(&self, dma: DmaAddr, req: &MapRequest) -> Result<(), DmaError> {
        let r = self.inner.unmap(dma, req);
        self.emit(TraceOp::Unmap { dma, req: *req }, done(&r));
        r
    }

    fn map_coherent(&self, req: &CoherentRequest) -> Result<DmaAddr, DmaError> {
        let r = self.inner.map_coherent(req);
        self.emit(
            TraceOp::MapCoherent { req: *req },
            r.clone().map(TraceOk::Dma),
        );
        r
    }

    fn unmap_coherent(&self, dma: DmaAddr, req: &CoherentRequest) -> Result<(), DmaError> {
        let r = self.inner.unmap_coherent(dma, req);
        self.emit(TraceOp::UnmapCoherent { dma, req: *req }, done(&r));
        r
    }

    fn map_sg(
        &self,
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<usize, DmaError> {
        let orig_nents = table.orig_nents();
        let r = self.inner.map_sg(table, plan, dir, attrs);
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
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        let segs = segments(table);
        let r = self.inner.unmap_sg(table, plan, dir, attrs);
        let op = TraceOp::UnmapSg {
            segments: segs,
            plan: plan.to_vec(),
            dir,
            attrs,
        };
        self.emit(op, done(&r));
        r
    }

    fn sync_for_cpu(&self, dma: DmaAddr, len: u64, dir: Direction) -> Result<(), DmaError> {
        let r = self.inner.sync_for_cpu(dma, len, dir);
        self.emit(TraceOp::SyncForCpu { dma, len, dir }, done(&r));
        r
    }

    fn sync_for_device(&self, dma: DmaAddr, len: u64, dir: Direction) -> Result<(), DmaError> {
        let r = self.inner.sync_for_device(dma, len, dir);
        self.emit(TraceOp::SyncForDevice { dma, len, dir }, done(&r));
        r
    }

    fn need_sync(&self, dma: DmaAddr) -> bool {
        self.inner.need_sync(dma)
    }

    fn bounce_of(&self, dma: DmaAddr) -> Option<Bounce> {
        self.inner.bounce_of(dma)
    }

    fn max_mapping_size(&self) -> u64 {
        self.inner.max_mapping_size()
    }

    fn opt_mapping_size(&self) -> u64 {
        self.inner.opt_mapping_size()
    }

    fn merge_boundary(&self) -> u64 {
        self.inner.merge_boundary()
    }

    fn checks_mapped_segments(&self) -> bool {
        self.inner.checks_mapped_segments()
    }

    fn iova_ops(&self) -> Option<&dyn IovaOps> {
        self.inner.iova_ops()
    }

    fn check(&self, req: &MapRequest) -> Result<(), DmaError> {
        self.inner.check(req)
    }

    fn constraints(&self) -> Option<DmaConstraints> {
        self.inner.constraints()
    }

    fn set_constraints(&self, req: &ConstraintsRequest) -> Result<(), DmaError> {
        self.inner.set_constraints(req)
    }

    fn note_mapping_error_check(&self, dma: DmaAddr) {
        self.inner.note_mapping_error_check(dma);
        self.emit(TraceOp::MappingErrorCheck { dma }, Ok(TraceOk::Done));
    }
}
