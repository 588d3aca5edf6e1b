//! `map(direction)` and `unmap` of an attachment: the ranges where the data
//! lives (or the importer's redirect) go through the importer device's
//! normal dispatcher, and the result is a DMA-only view whose segments keep
//! their own route and length.
//!
//! * Under an IOMMU (the device has the two-step IOVA API), one IOVA
//!   reservation holds the whole buffer and range *k* is linked at its own
//!   running offset — the sum of the lengths before it
//!   (`dma_iova_link(dev, state, phys_k, offset_k, len_k)`). Linux's VFIO
//!   dma-buf exporter first linked every range at offset 0, which aliases
//!   them all onto the first range's IOVA; [`LinkOffsets::AllZero`] keeps
//!   that bug reproducible for the test that shows it is caught.
//! * Without one, a table over the ranges (kinds from the memory map) is
//!   mapped with `map_sgtable`.
//!
//! A peer range reachable by bus address is not linked (its segment is the
//! bus address, route [`SegmentRoute::PeerBus`]).

use super::buffer::State;
use super::caps::Placement;
use super::error::ShareError;
use super::ids::{AttachId, MapId};
use crate::attrs::DmaAttrs;
use crate::device::{DmaDevice, IovaLink, Segment, SegmentRoute};
use crate::direction::Direction;
use crate::error::DmaError;
use crate::port::{IovaState, SegTarget};
use crate::types::{DmaAddr, PhysAddr, SegKind};
use alloc::sync::Arc;
use alloc::vec::Vec;
use scatterlist::SgTable;

/// How ranges are laid out in the IOVA reservation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum LinkOffsets {
    /// Range *k* at the sum of the lengths before it (correct).
    #[default]
    Running,
    /// Every range at offset 0: the Linux bug, kept only so a test can show
    /// that it is caught (the second link collides with the first, or the
    /// ranges alias). Never use it otherwise.
    AllZero,
}

/// What a live mapping holds.
pub(crate) enum Backing {
    Table(SgTable),
    Iova { state: IovaState, len: u64 },
}

/// A live mapping inside the reservation.
pub(crate) struct LiveMap {
    pub(crate) att: AttachId,
    pub(crate) dev: Arc<DmaDevice>,
    pub(crate) dir: Direction,
    pub(crate) backing: Backing,
}

/// A mapping as the importer sees it: DMA segments only (no CPU pages).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ShareMapping {
    pub(crate) id: MapId,
    pub(crate) dir: Direction,
    pub(crate) segments: Vec<Segment>,
}

impl ShareMapping {
    /// Its name (what `unmap` takes).
    pub fn id(&self) -> MapId {
        self.id
    }

    /// The direction it was mapped in.
    pub fn dir(&self) -> Direction {
        self.dir
    }

    /// The DMA segments, in buffer order, each with its route and length.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Total bytes.
    pub fn len(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum()
    }

    /// True without bytes (never for a live mapping).
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// The placements its segments realise (least preferred wins for the
    /// caller to judge).
    pub fn placements(&self) -> Vec<Placement> {
        let mut v: Vec<Placement> = self
            .segments
            .iter()
            .map(|s| Placement::of_route(s.route))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The DMA address of byte `offset` of the buffer.
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
}

/// Maps `ranges` for `dev` in `dir`.
pub(crate) fn map_ranges(
    dev: &DmaDevice,
    ranges: &[(PhysAddr, u64)],
    dir: Direction,
    offsets: LinkOffsets,
) -> Result<(Backing, Vec<Segment>), DmaError> {
    if dev.has_iova_api() {
        if let Some(r) = map_iova(dev, ranges, dir, offsets)? {
            return Ok(r);
        }
    }
    let mut table = dev.table_from_ranges(ranges, u64::from(u32::MAX))?;
    dev.map_sgtable(&mut table, dir, DmaAttrs::empty())?;
    let segs = crate::device::segments(&table).collect();
    Ok((Backing::Table(table), segs))
}

fn map_iova(
    dev: &DmaDevice,
    ranges: &[(PhysAddr, u64)],
    dir: Direction,
    offsets: LinkOffsets,
) -> Result<Option<(Backing, Vec<Segment>)>, DmaError> {
    let Some(&(first, _)) = ranges.first() else {
        return Ok(None);
    };
    let total = ranges
        .iter()
        .try_fold(0u64, |a, r| a.checked_add(r.1))
        .ok_or(DmaError::PhysOverflow {
            phys: first,
            len: u64::MAX,
        })?;
    let Some(state) = dev.iova_try_alloc(first, total)? else {
        return Ok(None);
    };
    // One memory-map lookup pass for every range (the map lock is not held
    // across the links, which take the dispatcher's locks themselves).
    let kinds: Result<Vec<SegKind>, DmaError> = {
        let memmap = dev.context().memmap.read();
        ranges
            .iter()
            .map(|&(phys, len)| {
                memmap
                    .kind_of_range(phys, len)
                    .map(|(_, k)| k)
                    .ok_or(DmaError::UnknownMemory { phys, len })
            })
            .collect()
    };
    let kinds = match kinds {
        Ok(k) => k,
        Err(e) => {
            let undo = dev.iova_destroy(state, total, dir, DmaAttrs::SKIP_CPU_SYNC);
            return Err(e.with_cleanup(undo.err()));
        }
    };
    let mut segs = Vec::with_capacity(ranges.len());
    let mut off = 0u64;
    let mut i = 0;
    while i < ranges.len() {
        let (phys, len) = ranges[i];
        let kind = kinds[i];
        // A run of physically contiguous RAM ranges is one link (the page
        // table maps it in one walk); each range keeps its own segment.
        let mut run = (i + 1, len);
        while kind == SegKind::Ram
            && offsets == LinkOffsets::Running
            && run.0 < ranges.len()
            && kinds[run.0] == SegKind::Ram
            && ranges[run.0].0.raw() == phys.raw() + run.1
        {
            run.1 += ranges[run.0].1;
            run.0 += 1;
        }
        let at = match offsets {
            LinkOffsets::Running => off,
            LinkOffsets::AllZero => 0,
        };
        match link_one(dev, &state, phys, kind, at, run.1, dir) {
            Ok(Linked::Bus(dma)) => segs.push(Segment {
                dma,
                len,
                route: SegmentRoute::PeerBus,
            }),
            Ok(Linked::At(route)) => {
                let mut o = at;
                for &(_, l) in &ranges[i..run.0] {
                    segs.push(Segment {
                        dma: DmaAddr::new(state.base.raw() + state.first_offset + o),
                        len: l,
                        route,
                    });
                    o += l;
                }
            }
            Err(e) => {
                let undo = dev.iova_destroy(state, total, dir, DmaAttrs::SKIP_CPU_SYNC);
                return Err(e.with_cleanup(undo.err()));
            }
        }
        off += run.1;
        i = run.0;
    }
    if let Err(e) = dev.iova_sync(&state, 0, total) {
        let undo = dev.iova_destroy(state, total, dir, DmaAttrs::SKIP_CPU_SYNC);
        return Err(e.with_cleanup(undo.err()));
    }
    Ok(Some((Backing::Iova { state, len: total }, segs)))
}

enum Linked {
    At(SegmentRoute),
    Bus(DmaAddr),
}

fn link_one(
    dev: &DmaDevice,
    state: &IovaState,
    phys: PhysAddr,
    kind: SegKind,
    at: u64,
    len: u64,
    dir: Direction,
) -> Result<Linked, DmaError> {
    // RAM is linked as RAM without asking; any other kind is planned first
    // to learn its route (the link asks the dispatcher again, so a policy
    // change in between cannot slip through).
    let route = if kind == SegKind::Ram {
        SegmentRoute::Ram
    } else {
        match dev.plan_segment(phys, len, kind, dir) {
            Ok(p) => match p.target {
                SegTarget::PeerHostBridge => SegmentRoute::PeerHostBridge,
                SegTarget::PeerBus(_) => SegmentRoute::PeerBus,
                SegTarget::Ram => SegmentRoute::Ram,
            },
            // Redirected to several RAM ranges: the link puts each at its
            // running offset.
            Err(DmaError::RedirectScattered { .. }) => SegmentRoute::Ram,
            Err(e) => return Err(e),
        }
    };
    match dev.iova_link(state, phys, at, len, dir, DmaAttrs::empty())? {
        IovaLink::Bus(d) => Ok(Linked::Bus(d)),
        IovaLink::Linked if route == SegmentRoute::PeerBus => {
            Ok(Linked::At(SegmentRoute::PeerHostBridge))
        }
        IovaLink::Linked => Ok(Linked::At(route)),
    }
}

/// Undoes one mapping's backing; a table the device still holds mapped
/// after a failed unmap comes back with the error (so it is not forgotten).
pub(crate) fn unmap_backing(
    dev: &DmaDevice,
    dir: Direction,
    b: Backing,
) -> (Option<Backing>, Result<(), DmaError>) {
    match b {
        Backing::Table(mut t) => match dev.unmap_sgtable(&mut t, dir, DmaAttrs::empty()) {
            Ok(()) => (None, Ok(())),
            Err(e) if t.is_dma_mapped() => (Some(Backing::Table(t)), Err(e)),
            Err(e) => (None, Err(e)),
        },
        Backing::Iova { state, len } => {
            (None, dev.iova_destroy(state, len, dir, DmaAttrs::empty()))
        }
    }
}

/// Unmaps `mapping` of attachment `att`, under the reservation. A mapping
/// whose unmap failed with the table still mapped stays live.
pub(crate) fn unmap_locked(
    st: &mut State,
    att: AttachId,
    mapping: MapId,
) -> Result<(), ShareError> {
    match st.maps.get(&mapping) {
        Some(m) if m.att == att => {}
        _ => return Err(ShareError::NotMapped { mapping }),
    }
    let m = st
        .maps
        .remove(&mapping)
        .ok_or(ShareError::NotMapped { mapping })?;
    let LiveMap {
        att,
        dev,
        dir,
        backing,
    } = m;
    let (back, r) = unmap_backing(&dev, dir, backing);
    if let Some(backing) = back {
        st.maps.insert(
            mapping,
            LiveMap {
                att,
                dev,
                dir,
                backing,
            },
        );
    }
    r.map_err(ShareError::from)
}
