//! Scatterlist mapping: one IOVA allocation per table.
//!
//! drivers/iommu/dma-iommu.c `iommu_dma_map_sg`, `__finalise_sg`,
//! `__invalidate_sg`, `iommu_dma_unmap_sg`:
//! 1. layout — each entry occupies `iova_align(len + iova_offset(phys))`
//!    bytes of the allocation; when the running length is not on a segment
//!    boundary and the next entry does not fit before it, the gap up to the
//!    boundary is padding; bus-address entries take no IOVA;
//! 2. one allocation (size aligned, so a layout that starts on a boundary
//!    stays on the boundaries it planned for), one map per physically
//!    contiguous run;
//! 3. finalise — the DMA view: an entry that starts on a granule, directly
//!    follows the previous one, does not start on a segment boundary and
//!    keeps the segment within `max_seg_size` is concatenated; a bus-address
//!    entry is its own segment with its own address and length.
//!
//! Untrusted devices with a swiotlb pool take the entry-by-entry path of
//! [`bounce`](super::bounce) instead (`dev_use_sg_swiotlb`).
//!
//! Differences: padding stays unmapped (Linux extends the previous entry's
//! mapping over it, exposing the memory that follows); MMIO protection is
//! per entry and RAM/MMIO entries are not concatenated (the DMA segment
//! carries `DmaFlags::MMIO`); a bus-address entry gets its own `dma_len`.

// `DmaError` has drop glue (some variants own a `String`): an eagerly built
// error is dropped on the success path, which showed up in profiles.
#![allow(clippy::unnecessary_lazy_evaluations)]

use dma_api::port::{SegPlan, SegTarget};
use dma_api::{BusAddr, Direction, DmaAddr, DmaAttrs, DmaError, Iova, PhysAddr};
use scatterlist::{DmaFlags, SgError, SgTable};

use super::backend::IommuDmaBackend;
use super::dma_info_to_prot;
use super::domain::lock;
use crate::pgtable::Prot;

/// Where one CPU entry of a table goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SgPiece {
    /// Mapped inside the table's IOVA allocation.
    Iova {
        /// Granule-aligned physical start of the mapped part.
        phys: PhysAddr,
        /// Offset of the entry's first byte inside its granule.
        off: u64,
        /// The entry's length.
        len: u64,
        /// Byte offset of the mapped part inside the allocation.
        at: u64,
        /// Bytes mapped (whole granules).
        map_len: u64,
        /// Mapped as MMIO (host-bridge peer memory or `DMA_ATTR_MMIO`).
        mmio: bool,
    },
    /// A peer reached through a switch: the bus address, not mapped.
    Bus {
        /// The bus address.
        bus: BusAddr,
        /// The entry's own length.
        len: u64,
    },
}

/// The IOVA layout of a table (step 1 of `iommu_dma_map_sg`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SgLayout {
    /// One piece per CPU entry, in CPU order.
    pub pieces: Vec<SgPiece>,
    /// Bytes of IOVA the table needs, padding included (0: all bus addresses).
    pub iova_len: u64,
}

impl SgLayout {
    /// Lays out `table` according to `plan` for `granule` and the segment
    /// boundary `seg_mask` (`2^n - 1`).
    pub fn compute(
        table: &SgTable,
        plan: &[SegPlan],
        granule: u64,
        seg_mask: u64,
        attrs: DmaAttrs,
    ) -> Result<Self, DmaError> {
        if plan.len() != table.orig_nents() {
            return Err(DmaError::Sg(SgError::NentsOutOfRange {
                nents: plan.len(),
                max: table.orig_nents(),
            }));
        }
        let gm = granule - 1;
        let mut pieces = Vec::with_capacity(plan.len());
        let mut iova_len: u64 = 0;
        for (e, p) in table.iter().zip(plan) {
            let len = u64::from(e.len());
            if len == 0 {
                return Err(DmaError::ZeroLength { phys: p.phys });
            }
            let mmio = match p.target {
                SegTarget::PeerBus(bus) => {
                    if bus.last_of(len).is_none() {
                        return Err(DmaError::Sg(SgError::DmaOverflow {
                            start: DmaAddr::from_bus(bus),
                            len,
                        }));
                    }
                    pieces.push(SgPiece::Bus { bus, len });
                    continue;
                }
                SegTarget::PeerHostBridge => true,
                SegTarget::Ram => attrs.contains(DmaAttrs::MMIO),
            };
            if p.phys.last_of(len).is_none() {
                return Err(DmaError::PhysOverflow { phys: p.phys, len });
            }
            let off = p.phys.raw() & gm;
            let map_len = (off + len)
                .checked_add(gm)
                .map(|v| v & !gm)
                .ok_or_else(|| DmaError::PhysOverflow { phys: p.phys, len })?;
            // Distance from the running length to the next boundary.
            let pad = seg_mask.wrapping_sub(iova_len).wrapping_add(1) & seg_mask;
            if pad != 0 && pad < map_len - 1 {
                iova_len = iova_len
                    .checked_add(pad)
                    .ok_or_else(|| DmaError::PhysOverflow { phys: p.phys, len })?;
            }
            pieces.push(SgPiece::Iova {
                phys: PhysAddr::new(p.phys.raw() - off),
                off,
                len,
                at: iova_len,
                map_len,
                mmio,
            });
            iova_len = iova_len
                .checked_add(map_len)
                .ok_or_else(|| DmaError::PhysOverflow { phys: p.phys, len })?;
        }
        Ok(Self { pieces, iova_len })
    }

    /// Mapped runs `(at, phys, len, mmio)`: adjacent pieces that are
    /// contiguous in both IOVA and physical space and share MMIO-ness are
    /// mapped with one call (so large pages can be used).
    pub fn runs(&self) -> Vec<(u64, PhysAddr, u64, bool)> {
        let mut runs: Vec<(u64, PhysAddr, u64, bool)> = Vec::new();
        for p in &self.pieces {
            if let SgPiece::Iova {
                phys,
                at,
                map_len,
                mmio,
                ..
            } = *p
            {
                match runs.last_mut() {
                    Some((a, ph, l, m))
                        if *a + *l == at && ph.raw() + *l == phys.raw() && *m == mmio =>
                    {
                        *l += map_len
                    }
                    _ => runs.push((at, phys, map_len, mmio)),
                }
            }
        }
        runs
    }

    /// The mapped IOVA spans `(iova, len)` for an allocation at `base`:
    /// pieces contiguous in IOVA merge whatever their physical addresses, so
    /// a table without padding unmaps in one walk.
    pub fn iova_spans(&self, base: Iova) -> Vec<(Iova, u64)> {
        let mut spans: Vec<(u64, u64)> = Vec::new();
        for p in &self.pieces {
            if let SgPiece::Iova { at, map_len, .. } = *p {
                match spans.last_mut() {
                    Some((a, l)) if *a + *l == at => *l += map_len,
                    _ => spans.push((at, map_len)),
                }
            }
        }
        spans
            .into_iter()
            .map(|(at, l)| (Iova::new(base.raw() + at), l))
            .collect()
    }

    /// The DMA view (`__finalise_sg`) for an allocation at `base`:
    /// `(address, length, flags)` per DMA segment.
    pub fn finalise(
        &self,
        base: Iova,
        seg_mask: u64,
        max_seg_size: u64,
    ) -> Vec<(DmaAddr, u64, DmaFlags)> {
        let max_len = max_seg_size.min(u64::from(u32::MAX));
        let mut out: Vec<(DmaAddr, u64, DmaFlags)> = Vec::with_capacity(self.pieces.len());
        let mut cur_len: u64 = 0;
        let mut next: u64 = 0;
        let mut cur_mmio = false;
        for p in &self.pieces {
            match *p {
                SgPiece::Bus { bus, len } => {
                    out.push((DmaAddr::from_bus(bus), len, DmaFlags::BUS_ADDRESS));
                    cur_len = 0;
                }
                SgPiece::Iova {
                    off,
                    len,
                    at,
                    map_len,
                    mmio,
                    ..
                } => {
                    let start = base.raw() + at;
                    let concat = cur_len != 0
                        && off == 0
                        && start == next
                        && start & seg_mask != 0
                        && cur_len.checked_add(len).is_some_and(|t| t <= max_len)
                        && mmio == cur_mmio;
                    match out.last_mut() {
                        Some(last) if concat => {
                            last.1 += len;
                            cur_len += len;
                        }
                        _ => {
                            let flags = if mmio {
                                DmaFlags::MMIO
                            } else {
                                DmaFlags::EMPTY
                            };
                            out.push((DmaAddr::new(start + off), len, flags));
                            cur_len = len;
                            cur_mmio = mmio;
                        }
                    }
                    next = start + off + len;
                    if off + len < map_len {
                        cur_len = 0;
                    }
                }
            }
        }
        out
    }
}

/// Failures injected into cleanup steps, for this crate's tests of the
/// error paths (a cleanup cannot fail on its own in a test).
#[cfg(test)]
pub(super) mod inject {
    use core::cell::Cell;
    use dma_api::DmaError;

    std::thread_local! {
        static FAIL: Cell<bool> = const { Cell::new(false) };
    }

    /// Makes every cleanup step of this thread fail (or not).
    pub(crate) fn fail_cleanup(on: bool) {
        FAIL.with(|f| f.set(on));
    }

    pub(super) fn failure() -> Option<DmaError> {
        FAIL.with(Cell::get).then(|| DmaError::IommuDomain {
            domain: u32::MAX,
            reason: "injected cleanup failure".into(),
        })
    }
}

/// The result of one cleanup step (undoing part of a failed operation).
pub(super) fn cleanup_step<T>(r: Result<T, DmaError>) -> Result<T, DmaError> {
    #[cfg(test)]
    if let Some(e) = inject::failure() {
        return Err(e);
    }
    r
}

impl IommuDmaBackend {
    fn layout(
        &self,
        table: &SgTable,
        plan: &[SegPlan],
        attrs: DmaAttrs,
    ) -> Result<SgLayout, DmaError> {
        SgLayout::compute(table, plan, self.granule(), self.seg_boundary_mask(), attrs)
    }

    /// Unmaps what a failed `map_sg` mapped and frees its allocation (the
    /// flush releases it through the domain's IOVA source). Its failure is
    /// for the caller to report with the map's own error
    /// ([`DmaError::with_cleanup`]).
    fn undo_sg(&self, base: Iova, iova_len: u64, mapped: &[(Iova, u64)]) -> Result<(), DmaError> {
        let mut io = lock(self.dom.iommu());
        let t = cleanup_step(
            io.unmap_pieces(self.dom.id(), base, iova_len, mapped)
                .map_err(super::dom_err),
        )?;
        cleanup_step(io.flush(t).map_err(super::dom_err))
    }

    pub(crate) fn map_sg_impl(
        &self,
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<usize, DmaError> {
        if self.sg_uses_swiotlb() {
            return self.map_sg_swiotlb(table, plan, dir, attrs);
        }
        let layout = self.layout(table, plan, attrs)?;
        if !self.dev.trusted || attrs.contains(DmaAttrs::REQUIRE_COHERENT) {
            for p in &layout.pieces {
                if let SgPiece::Iova {
                    phys,
                    off,
                    len,
                    mmio,
                    ..
                } = *p
                {
                    self.check_reach(PhysAddr::new(phys.raw() + off), len, mmio, attrs)?;
                }
            }
        }
        for p in layout.pieces.iter().filter(|_| self.syncs(attrs)) {
            if let SgPiece::Iova {
                phys,
                off,
                len,
                mmio,
                ..
            } = *p
            {
                self.record_sync(
                    PhysAddr::new(phys.raw() + off),
                    len,
                    dir,
                    false,
                    mmio,
                    attrs,
                );
            }
        }
        let base = if layout.iova_len == 0 {
            // Every entry is a bus address: no IOVA at all.
            Iova::new(0)
        } else {
            let range = self.alloc_iova(layout.iova_len)?;
            let base = range.start();
            let mut mapped: Vec<(Iova, u64)> = Vec::new();
            let mut io = lock(self.dom.iommu());
            for (at, phys, len, mmio) in layout.runs() {
                let prot: Prot = dma_info_to_prot(dir, self.dev.coherent, attrs, mmio);
                let iova = Iova::new(base.raw() + at);
                if let Err(e) = self.pt_map(&mut io, iova, phys, len, prot) {
                    drop(io);
                    let undone = self.undo_sg(base, layout.iova_len, &mapped);
                    table.clear_dma();
                    return Err(e.with_cleanup(undone.err()));
                }
                mapped.push((iova, len));
            }
            base
        };
        let out = layout.finalise(base, self.seg_boundary_mask(), self.max_seg_size());
        let n = out.len();
        let mut res: Result<(), SgError> = Ok(());
        let mut segs = out.into_iter();
        for e in table.iter_mut() {
            match segs.next() {
                Some((addr, len, flags)) => {
                    if let Err(err) = e.set_dma(addr, len, flags) {
                        res = Err(err);
                        break;
                    }
                }
                None => e.clear_dma(),
            }
        }
        if let Err(err) = res.and_then(|()| table.set_nents(n)) {
            let undone = if layout.iova_len != 0 {
                self.undo_sg(base, layout.iova_len, &layout.iova_spans(base))
            } else {
                Ok(())
            };
            table.clear_dma();
            return Err(DmaError::from(err).with_cleanup(undone.err()));
        }
        Ok(n)
    }

    pub(crate) fn unmap_sg_impl(
        &self,
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        if super::bounce::sg_is_swiotlb(table) {
            return self.unmap_sg_swiotlb(table, plan, dir, attrs);
        }
        let layout = self.layout(table, plan, attrs)?;
        if layout.iova_len != 0 {
            let first = layout.pieces.iter().find_map(|p| match *p {
                SgPiece::Iova { phys, off, .. } => Some((phys, off)),
                SgPiece::Bus { .. } => None,
            });
            let first_dma = table
                .dma_iter()
                .find(|e| !e.dma_flags().contains(DmaFlags::BUS_ADDRESS))
                .map(|e| e.dma_address());
            let (Some((phys0, off0)), Some(dma0)) = (first, first_dma) else {
                return Err(DmaError::IovaNotAllocated { iova: Iova::new(0) });
            };
            let base = Iova::new(dma0.raw().wrapping_sub(off0));
            let mut io = lock(self.dom.iommu());
            let ok = base.raw() & (self.granule() - 1) == 0
                && io
                    .page_table(self.dom.id())
                    .and_then(|pt| pt.iova_to_phys(base))
                    == Some(phys0);
            if !ok {
                return Err(DmaError::IovaNotAllocated { iova: base });
            }
            for p in layout.pieces.iter().filter(|_| self.syncs(attrs)) {
                if let SgPiece::Iova {
                    phys,
                    off,
                    len,
                    mmio,
                    ..
                } = *p
                {
                    self.record_sync(PhysAddr::new(phys.raw() + off), len, dir, true, mmio, attrs);
                }
            }
            let token = io
                .unmap_pieces(
                    self.dom.id(),
                    base,
                    layout.iova_len,
                    &layout.iova_spans(base),
                )
                .map_err(super::dom_err)?;
            self.complete(&mut io, token)?;
        }
        table.clear_dma();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::inject;
    use crate::dma::{DmaDomain, IommuDevice, IommuDmaBackend, SharedIommu};
    use crate::pgtable::{AnyFormat, VtdSs};
    use crate::{DomainType, GroupId, Iommu, PhysMem, SharedMem, SimClock};
    use dma_api::port::{DmaBackend, SegPlan, SegTarget};
    use dma_api::{Direction, DmaAttrs, DmaError, PhysAddr};
    use scatterlist::{SegKind, SgTable};
    use std::sync::{Arc, Mutex, RwLock};

    fn backend() -> IommuDmaBackend {
        let mem: SharedMem = Arc::new(RwLock::new(PhysMem::new()));
        let mut io = Iommu::with_mem(mem, SimClock::new());
        let fmt = AnyFormat::VtdSs(VtdSs::new(4).unwrap());
        let d = io.alloc_domain(DomainType::Dma, fmt).unwrap();
        let g = GroupId(1);
        io.attach_group(g, true, d).unwrap();
        let iommu: SharedIommu = Arc::new(Mutex::new(io));
        let dom = DmaDomain::new(iommu, d, 1).unwrap();
        IommuDmaBackend::new(dom, IommuDevice::pci("03:00.0".parse().unwrap(), g)).unwrap()
    }

    /// Bug: when a failed `map_sg` could not undo what it had mapped, the
    /// cleanup's failure was discarded. It is returned with the error.
    #[test]
    fn failed_map_sg_reports_a_failed_cleanup_with_the_error() {
        let b = backend();
        // The second entry is beyond the table's output address size.
        let ranges = [(0x1_0000_0000u64, 0x2000u64), (1 << 60, 0x1000)];
        let mut t = SgTable::new();
        for (p, l) in ranges {
            let one =
                SgTable::from_ranges(&[(PhysAddr::new(p), l)], SegKind::Ram, 1 << 31).unwrap();
            t = t.chain(one).unwrap();
        }
        let plan: Vec<SegPlan> = ranges
            .iter()
            .map(|&(p, _)| SegPlan {
                phys: PhysAddr::new(p),
                target: SegTarget::Ram,
            })
            .collect();
        inject::fail_cleanup(true);
        let e = b
            .map_sg(&mut t, &plan, Direction::ToDevice, DmaAttrs::empty())
            .unwrap_err();
        inject::fail_cleanup(false);
        assert!(
            matches!(e.root_cause(), DmaError::NotTranslatable { .. }),
            "the operation's own error comes first: {e}"
        );
        match &e {
            DmaError::CleanupFailed { cleanup, .. } => {
                assert_eq!(cleanup.len(), 1, "{e}");
                assert!(cleanup[0].to_string().contains("injected"), "{e}");
            }
            other => panic!("cleanup failure dropped: {other}"),
        }
        assert!(e.to_string().contains("undoing it failed too"), "{e}");
    }
}
