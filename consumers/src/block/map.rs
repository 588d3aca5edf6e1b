//! Mapping a request for its queue's device (block/blk-mq-dma.c
//! `blk_rq_dma_map_iter_start` / `blk_rq_dma_map_iter_next`):
//!
//! 1. the request is held to the queue limits;
//! 2. every segment is classified from the memory map (pieces split where
//!    the map's ranges end); a peer piece on a queue without
//!    [`Features::pci_p2pdma`](super::Features::pci_p2pdma) is refused here,
//!    before anything is mapped — for *every* segment, where Linux looks at
//!    the first one only;
//! 3. with the two-step IOVA API and a virt boundary that covers the
//!    IOMMU's merge boundary (`blk_can_dma_map_iova`), one IOVA reservation
//!    holds the request: each piece is linked at its running offset, a peer
//!    reachable by bus address is not linked and keeps its bus address
//!    (`dma_iova_link` says [`IovaLink::Bus`](dma_api::IovaLink::Bus)), and
//!    contiguous links come back as one DMA segment;
//! 4. otherwise (no IOMMU, no reservation, a queue without a virt
//!    boundary, or a request of peer memory only) the request is a table
//!    mapped with `map_sgtable`, one decision per entry.
//!
//! On any error nothing stays mapped.

use super::bio::BlockRequest;
use super::error::BlockError;
use super::limits::QueueLimits;
use dma_api::port::IovaState;
use dma_api::{
    DmaAddr, DmaAttrs, DmaDevice, DmaError, IovaLink, PhysAddr, SegKind, Segment, SegmentRoute,
};
use scatterlist::SgTable;
use std::sync::Arc;

/// A block queue: a device with its limits (Linux `struct request_queue`
/// with the driver's `queue_limits`).
#[derive(Clone, Debug)]
pub struct BlockQueue {
    dev: Arc<DmaDevice>,
    limits: QueueLimits,
}

/// One classified piece of a request segment.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Piece {
    /// The request segment it belongs to.
    pub index: usize,
    /// Its start.
    pub phys: PhysAddr,
    /// Its length.
    pub len: u64,
    /// What the memory map says it is.
    pub kind: SegKind,
}

/// Which path mapped a request.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MapPath {
    /// One IOVA reservation, pieces linked into it (peers by bus address
    /// outside it).
    Iova,
    /// A table mapped with `map_sgtable`.
    PerSegment,
}

enum Backing {
    Iova { state: IovaState, len: u64 },
    Table(SgTable),
    Done,
}

/// A mapped request: its DMA segments (what the driver programs) until
/// [`MappedRequest::unmap`] or drop.
pub struct MappedRequest {
    dev: Arc<DmaDevice>,
    dir: dma_api::Direction,
    path: MapPath,
    backing: Backing,
    segments: Vec<Segment>,
}

/// A DMA segment of a mapped request.
pub type MappedSegment = Segment;

impl core::fmt::Debug for MappedRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MappedRequest")
            .field("device", &self.dev.bdf())
            .field("path", &self.path)
            .field("segments", &self.segments)
            .finish()
    }
}

impl BlockQueue {
    /// A queue over `dev` with `limits`.
    pub fn new(dev: Arc<DmaDevice>, limits: QueueLimits) -> Self {
        Self { dev, limits }
    }

    /// The device.
    pub fn device(&self) -> &Arc<DmaDevice> {
        &self.dev
    }

    /// The limits.
    pub fn limits(&self) -> &QueueLimits {
        &self.limits
    }

    /// Every segment of `req` classified from the memory map, split where
    /// the map's ranges end.
    pub fn classify(&self, req: &BlockRequest) -> Result<Vec<Piece>, BlockError> {
        let memmap = self.dev.context().memmap.read();
        let mut out = Vec::with_capacity(req.segments.len());
        for (index, v) in req.segments.iter().enumerate() {
            memmap
                .classify(v.phys, v.len, |phys, len, kind| {
                    out.push(Piece {
                        index,
                        phys,
                        len,
                        kind,
                    })
                })
                .map_err(|at| DmaError::UnknownMemory {
                    phys: at,
                    len: v.len - (at.raw() - v.phys.raw()),
                })?;
        }
        Ok(out)
    }

    /// The per-segment P2P check: the first peer piece on a queue without
    /// the P2P feature, as the error.
    pub fn check_peers(&self, pieces: &[Piece]) -> Result<(), BlockError> {
        if self.limits.features.pci_p2pdma {
            return Ok(());
        }
        match pieces
            .iter()
            .find(|p| matches!(p.kind, SegKind::PeerBar(_)))
        {
            Some(&Piece {
                index,
                phys,
                len,
                kind: SegKind::PeerBar(provider),
            }) => Err(BlockError::PeerOnNonP2pQueue {
                index,
                phys,
                len,
                provider,
            }),
            _ => Ok(()),
        }
    }

    /// True if this queue can carry `[phys, phys + len)` of peer memory in
    /// `dir`: it has the P2P feature and the dispatcher (oracle, arch, the
    /// provider's policy) allows the route for this device. RAM is always
    /// carried.
    pub fn can_carry(&self, phys: PhysAddr, len: u64, dir: dma_api::Direction) -> bool {
        let memmap = self.dev.context().memmap.read();
        let Some((_, kind)) = memmap.kind_of_range(phys, len) else {
            return false;
        };
        drop(memmap);
        match kind {
            SegKind::PeerBar(_) => {
                self.limits.features.pci_p2pdma
                    && self.dev.plan_segment(phys, len, kind, dir).is_ok()
            }
            _ => true,
        }
    }

    /// `blk_can_dma_map_iova`: the IOVA path only if the virt boundary
    /// covers the IOMMU's merge boundary, so every link but the first starts
    /// on an IOMMU granule.
    fn can_map_iova(&self) -> bool {
        self.dev.has_iova_api()
            && self.limits.virt_boundary_mask != 0
            && (self.limits.virt_boundary_mask.wrapping_add(1) & self.dev.merge_boundary()) == 0
    }

    /// Maps `req` (see the module docs). `req` must fit the limits whole
    /// (split it first with [`split`](super::split)).
    pub fn map(&self, req: &BlockRequest) -> Result<MappedRequest, BlockError> {
        self.limits.check(req)?;
        let pieces = self.classify(req)?;
        self.check_peers(&pieces)?;
        let dir = req.op.direction();
        // A request of peer memory only needs no IOVA space when its peers
        // are reached by bus address (Linux maps `PCI_P2PDMA_MAP_BUS_ADDR`
        // segments without one); the table path decides per entry and
        // links host-bridge peers itself.
        let all_peer = pieces.iter().all(|p| matches!(p.kind, SegKind::PeerBar(_)));
        if self.can_map_iova() && !all_peer {
            if let Some((state, len, segments)) = self.map_iova(&pieces, dir)? {
                return Ok(MappedRequest {
                    dev: self.dev.clone(),
                    dir,
                    path: MapPath::Iova,
                    backing: Backing::Iova { state, len },
                    segments,
                });
            }
        }
        // The table over the pieces already classified (what
        // `table_from_ranges` would build, without a second pass over the
        // memory map); `map_sgtable` still checks every kind against it.
        let c = self.dev.constraints();
        let kinded: Vec<(PhysAddr, u64, SegKind)> =
            pieces.iter().map(|p| (p.phys, p.len, p.kind)).collect();
        let max = self.limits.max_segment_size.min(u64::from(c.max_seg_size));
        let mut table = SgTable::from_kinded_ranges_bounded(&kinded, max, c.seg_boundary_mask)
            .map_err(DmaError::from)?;
        self.dev.map_sgtable(&mut table, dir, DmaAttrs::empty())?;
        let segments = dma_api::segments(&table).collect();
        Ok(MappedRequest {
            dev: self.dev.clone(),
            dir,
            path: MapPath::PerSegment,
            backing: Backing::Table(table),
            segments,
        })
    }

    #[allow(clippy::type_complexity)]
    fn map_iova(
        &self,
        pieces: &[Piece],
        dir: dma_api::Direction,
    ) -> Result<Option<(IovaState, u64, Vec<Segment>)>, BlockError> {
        let Some(first) = pieces.first() else {
            return Ok(None);
        };
        let total: u64 = pieces.iter().map(|p| p.len).sum();
        let Some(state) = self.dev.iova_try_alloc(first.phys, total)? else {
            return Ok(None);
        };
        let base = state.base.raw() + state.first_offset;
        let mut segs: Vec<Segment> = Vec::with_capacity(pieces.len());
        let mut off = 0u64;
        for p in pieces {
            let linked = self
                .dev
                .iova_link(&state, p.phys, off, p.len, dir, DmaAttrs::empty());
            let seg = match linked {
                Ok(IovaLink::Bus(dma)) => Segment {
                    dma,
                    len: p.len,
                    route: SegmentRoute::PeerBus,
                },
                Ok(IovaLink::Linked) => Segment {
                    dma: DmaAddr::new(base + off),
                    len: p.len,
                    route: if matches!(p.kind, SegKind::PeerBar(_)) {
                        SegmentRoute::PeerHostBridge
                    } else {
                        SegmentRoute::Ram
                    },
                },
                Err(e) => {
                    let undo = self
                        .dev
                        .iova_destroy(state, total, dir, DmaAttrs::SKIP_CPU_SYNC);
                    return Err(e.with_cleanup(undo.err()).into());
                }
            };
            self.push_merged(&mut segs, seg);
            off += p.len;
        }
        if let Err(e) = self.dev.iova_sync(&state, 0, total) {
            let undo = self
                .dev
                .iova_destroy(state, total, dir, DmaAttrs::SKIP_CPU_SYNC);
            return Err(e.with_cleanup(undo.err()).into());
        }
        Ok(Some((state, total, segs)))
    }

    /// Appends `seg`, merging it into the previous one when both are linked
    /// IOVA on the same route and contiguous, within the segment limits.
    fn push_merged(&self, segs: &mut Vec<Segment>, seg: Segment) {
        if let Some(last) = segs.last_mut() {
            let end = last.dma.raw() + last.len;
            let merged = last.len + seg.len;
            if seg.route != SegmentRoute::PeerBus
                && last.route == seg.route
                && end == seg.dma.raw()
                && self.limits.max_segment_at(last.dma.raw(), merged) == merged
            {
                last.len = merged;
                return;
            }
        }
        segs.push(seg);
    }
}

impl MappedRequest {
    /// The DMA segments, in transfer order, each with its route.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Which path mapped it.
    pub fn path(&self) -> MapPath {
        self.path
    }

    /// The device.
    pub fn device(&self) -> &Arc<DmaDevice> {
        &self.dev
    }

    /// The DMA address of byte `offset` of the request, if inside it.
    pub fn dma_at(&self, offset: u64) -> Option<DmaAddr> {
        let mut at = 0u64;
        for s in &self.segments {
            if offset < at + s.len {
                return Some(DmaAddr::new(s.dma.raw() + (offset - at)));
            }
            at += s.len;
        }
        None
    }

    /// Unmaps (`blk_rq_dma_unmap`: `dma_iova_destroy` or the table unmap).
    pub fn unmap(mut self) -> Result<(), BlockError> {
        self.release().map_err(BlockError::from)
    }

    fn release(&mut self) -> Result<(), DmaError> {
        match core::mem::replace(&mut self.backing, Backing::Done) {
            Backing::Iova { state, len } => {
                self.dev
                    .iova_destroy(state, len, self.dir, DmaAttrs::empty())
            }
            Backing::Table(mut t) => self.dev.unmap_sgtable(&mut t, self.dir, DmaAttrs::empty()),
            Backing::Done => Ok(()),
        }
    }
}

impl Drop for MappedRequest {
    /// An aborted request is unmapped; an error goes to the context's
    /// drop-error record.
    fn drop(&mut self) {
        if let Err(e) = self.release() {
            self.dev.context().report_drop_error(e);
        }
    }
}
