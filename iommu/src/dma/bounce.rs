//! Bounce buffering of untrusted devices behind the IOMMU.
//!
//! drivers/iommu/dma-iommu.c `dev_use_swiotlb`, `iommu_dma_map_swiotlb`,
//! `iommu_dma_map_phys` / `iommu_dma_unmap_phys` (swiotlb branch),
//! `iommu_dma_sync_single_for_*`, `dev_use_sg_swiotlb`,
//! `iommu_dma_map_sg_swiotlb` / `iommu_dma_unmap_sg_swiotlb`:
//! * a RAM range of an untrusted device whose start or length is not on an
//!   IOVA granule is copied into swiotlb slots allocated with the granule as
//!   allocation alignment (`swiotlb_tbl_map_single(.., iova_mask(iovad), ..)`),
//!   so the slots own whole granules; the pre- and post-padding inside those
//!   granules is zeroed; the granules are IOMMU-mapped and the DMA address is
//!   the bounce address's IOVA;
//! * unmap: IOMMU unmap and (strict) IOTLB flush first, then the swiotlb
//!   unmap, which copies back for `FromDevice`/`Bidirectional`;
//! * syncs translate the DMA address through the page table and copy through
//!   swiotlb when it lands in the pool (for CPU: cache maintenance, then the
//!   copy; for device: the copy, then cache maintenance);
//! * a table of an untrusted device is mapped entry by entry through the
//!   single path and its first entry is marked `SG_DMA_SWIOTLB`; unmap sees
//!   the mark and unmaps entry by entry.
//!
//! MMIO and `REQUIRE_COHERENT` ranges are never bounced (typed errors, see
//! `check_reach`).

// `DmaError` has drop glue (some variants own a `String`): an eagerly built
// error is dropped on the success path.
#![allow(clippy::unnecessary_lazy_evaluations)]

use dma_api::port::{map_sg_per_entry, unmap_sg_per_entry, MapRequest, SegPlan};
use dma_api::{Direction, DmaAddr, DmaAttrs, DmaError, PhysAddr};
use scatterlist::{DmaFlags, SgTable};

use super::backend::IommuDmaBackend;
use super::domain::lock;
use super::sg::cleanup_step;
use crate::pgtable::Prot;

impl IommuDmaBackend {
    /// `dev_use_swiotlb(dev) && iova_unaligned(phys, size)` with a pool
    /// attached: whether [`DmaBackend::map`](dma_api::port::DmaBackend::map)
    /// bounces this RAM range.
    pub fn bounces(&self, phys: PhysAddr, len: u64) -> bool {
        self.swiotlb().is_some() && self.needs_bounce(phys, len)
    }

    /// `dev_use_sg_swiotlb` for an untrusted device: tables are mapped entry
    /// by entry through the single path (whenever a pool is attached).
    pub(crate) fn sg_uses_swiotlb(&self) -> bool {
        !self.dev.trusted && self.swiotlb().is_some()
    }

    /// The bounce-buffer address behind `dma`, if `dma` is IOMMU-mapped to
    /// a byte of the attached pool (`is_swiotlb_buffer(iommu_iova_to_phys)`).
    pub(crate) fn bounce_phys(&self, dma: DmaAddr) -> Option<PhysAddr> {
        let pool = self.swiotlb()?;
        let phys = lock(self.dom.iommu())
            .page_table(self.dom.id())
            .and_then(|pt| pt.iova_to_phys(dma.as_iova()))?;
        pool.contains(phys).then_some(phys)
    }

    /// `iommu_dma_map_swiotlb` + `__iommu_dma_map` of the bounce granules.
    pub(crate) fn map_bounced(&self, req: &MapRequest, prot: Prot) -> Result<DmaAddr, DmaError> {
        let Some(pool) = self.swiotlb() else {
            return Err(DmaError::SwiotlbFull {
                len: req.len,
                slots: 0,
            });
        };
        let g = self.granule();
        let gm = g - 1;
        let tlb = pool.map_aligned(req.phys, req.len, req.dir, req.attrs, 0, gm)?;
        // Undo the slot; a failure to is reported with the error.
        let release = |e: DmaError| {
            let freed = cleanup_step(pool.unmap(tlb, req.len, req.dir, DmaAttrs::SKIP_CPU_SYNC));
            e.with_cleanup(freed.err())
        };
        pool.zero_padding(tlb, req.len, g).map_err(release)?;
        let off = tlb.raw() & gm;
        let size = self
            .iova_align(off + req.len)
            .ok_or_else(|| DmaError::PhysOverflow {
                phys: tlb,
                len: req.len,
            })
            .map_err(release)?;
        self.record_sync(tlb, req.len, req.dir, false, false, req.attrs);
        let range = self.alloc_iova(size).map_err(release)?;
        let res = {
            let mut io = lock(self.dom.iommu());
            self.pt_map(
                &mut io,
                range.start(),
                PhysAddr::new(tlb.raw() - off),
                size,
                prot,
            )
        };
        if let Err(e) = res {
            self.free_iova_now(range);
            return Err(release(e));
        }
        self.count_bounce();
        Ok(DmaAddr::new(range.start().raw() + off))
    }

    /// The swiotlb half of `iommu_dma_unmap_phys`, after the IOMMU unmap and
    /// its flush: copy back (unless `SKIP_CPU_SYNC`) and free the slots.
    pub(crate) fn unmap_bounce(
        &self,
        dma: DmaAddr,
        tlb: PhysAddr,
        req: &MapRequest,
    ) -> Result<(), DmaError> {
        match self.swiotlb() {
            Some(pool) if pool.contains(tlb) => pool
                .unmap(tlb, req.len, req.dir, req.attrs)
                .map_err(|_| DmaError::NotMapped { dma, len: req.len }),
            _ => Ok(()),
        }
    }

    /// The swiotlb copies of `iommu_dma_sync_single_for_*` on `[dma, dma +
    /// len)`: every granule-sized piece the page table sends into the pool is
    /// copied through it (a two-step mapping may bounce only its head and
    /// tail granules).
    pub(crate) fn sync_bounce(
        &self,
        dma: DmaAddr,
        len: u64,
        dir: Direction,
        for_cpu: bool,
    ) -> Result<(), DmaError> {
        let Some(pool) = self.swiotlb() else {
            return Ok(());
        };
        let pieces = self.pool_pieces(dma.raw(), len)?;
        for (tlb, n) in pieces {
            let r = if for_cpu {
                pool.sync_for_cpu(tlb, n, dir)
            } else {
                pool.sync_for_device(tlb, n, dir)
            };
            r.map_err(|_| DmaError::NotMapped { dma, len })?;
        }
        Ok(())
    }

    /// Translates `[iova, iova + len)` granule by granule and returns the
    /// pieces that land in the pool, as `(bounce address, length)`, one per
    /// granule touched.
    fn pool_pieces(&self, iova: u64, len: u64) -> Result<Vec<(PhysAddr, u64)>, DmaError> {
        let Some(pool) = self.swiotlb() else {
            return Ok(Vec::new());
        };
        let end = iova
            .checked_add(len)
            .ok_or_else(|| DmaError::IovaRangeInvalid {
                iova: dma_api::Iova::new(iova),
                len,
            })?;
        let g = self.granule();
        let io = lock(self.dom.iommu());
        let Some(pt) = io.page_table(self.dom.id()) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<(PhysAddr, u64)> = Vec::new();
        let mut pos = iova;
        while pos < end {
            let chunk_end = ((pos & !(g - 1)).saturating_add(g)).min(end);
            let n = chunk_end - pos;
            if let Some(phys) = pt.iova_to_phys(dma_api::Iova::new(pos)) {
                // Not merged: two bounce mappings may sit back to back in
                // the pool, and a swiotlb sync must stay inside one.
                if pool.contains(phys) {
                    out.push((phys, n));
                }
            }
            pos = chunk_end;
        }
        Ok(out)
    }

    /// The bounce mappings inside `[iova, iova + len)` of a two-step
    /// mapping, as `(bounce address, mapped length)`: what
    /// `iommu_dma_iova_unlink_range_slow` hands back to swiotlb.
    pub(crate) fn linked_bounces(&self, iova: u64, len: u64) -> Vec<(PhysAddr, u64)> {
        let Some(pool) = self.swiotlb() else {
            return Vec::new();
        };
        let g = self.granule();
        let Some(end) = iova.checked_add(len) else {
            return Vec::new();
        };
        let io = lock(self.dom.iommu());
        let Some(pt) = io.page_table(self.dom.id()) else {
            return Vec::new();
        };
        // Bounce slots are mapped a granule at a time at their own offset:
        // check `iova` itself and every granule start after it whose
        // translation lands in the pool. The leaves come from a walk that
        // skips holes by table level (the range may be a mostly unlinked
        // reservation), and only the part of a leaf that maps pool memory is
        // looked at, so the work follows what is mapped.
        let (pool_lo, pool_size) = (pool.start().raw(), pool.size());
        let mut out = Vec::new();
        if pool_size == 0 {
            return out;
        }
        let pool_hi = pool_lo.saturating_add(pool_size - 1);
        pt.for_each_leaf(dma_api::Iova::new(iova), end - iova, |va, oa, lg2| {
            let (va, oa) = (va.raw(), oa.raw());
            let leaf_last = oa.saturating_add((1u64 << lg2) - 1);
            let (plo, phi) = (pool_lo.max(oa), pool_hi.min(leaf_last));
            if plo > phi {
                return;
            }
            // IOVAs of this leaf that translate into the pool, within range.
            let lo = (va + (plo - oa)).max(iova);
            let hi = (va + (phi - oa)).min(end - 1);
            let mut pos = lo;
            while pos <= hi {
                if pos == iova || pos & (g - 1) == 0 {
                    let phys = PhysAddr::new(oa + (pos - va));
                    if let Some(l) = pool.mapping_len(phys) {
                        out.push((phys, l));
                    }
                }
                match (pos & !(g - 1)).checked_add(g) {
                    Some(p) => pos = p,
                    None => break,
                }
            }
        });
        out
    }

    /// Gives the bounce mappings of an unlinked range back to swiotlb (copy
    /// back unless `SKIP_CPU_SYNC`, free the slots); the first error wins.
    pub(crate) fn release_linked(
        &self,
        bounces: &[(PhysAddr, u64)],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        let Some(pool) = self.swiotlb() else {
            return Ok(());
        };
        let mut first = Ok(());
        for &(tlb, len) in bounces {
            if let Err(e) = pool.unmap(tlb, len, dir, attrs) {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }

    /// `iommu_dma_iova_link_swiotlb`: a two-step link of an untrusted device
    /// that is not granule-aligned bounces its partial head granule and its
    /// partial tail granule (`iommu_dma_iova_bounce_and_link`) and maps the
    /// whole granules between them in place. `iova` is the IOVA of the
    /// link's first byte. The head bounce keeps the in-granule offset (the
    /// IOVA layout fixes it), so its pre-padding is zeroed too.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn link_bounced(
        &self,
        iova: u64,
        phys: PhysAddr,
        size: u64,
        dir: Direction,
        attrs: DmaAttrs,
        prot: Prot,
    ) -> Result<(), DmaError> {
        let Some(pool) = self.swiotlb() else {
            return Err(DmaError::SwiotlbFull {
                len: size,
                slots: 0,
            });
        };
        let g = self.granule();
        let gm = g - 1;
        let head_pad = phys.raw() & gm;
        let end_pad = (phys.raw() + size) & gm;
        let mut mapped = 0u64;
        let mut iommu_done: Vec<(u64, u64)> = Vec::new();
        let mut bounces: Vec<(PhysAddr, u64)> = Vec::new();
        let mut step = |at: u64, len: u64, bounce: bool| -> Result<(), DmaError> {
            let src = PhysAddr::new(phys.raw() + at);
            let pad = src.raw() & gm;
            let (target, map_len) = if bounce {
                let tlb = pool.map_aligned(src, len, dir, attrs, gm, gm)?;
                bounces.push((tlb, len));
                pool.zero_padding(tlb, len, g)?;
                self.record_sync(tlb, len, dir, false, false, attrs);
                (PhysAddr::new(tlb.raw() - pad), g)
            } else {
                self.record_sync(src, len, dir, false, false, attrs);
                (src, len)
            };
            let io_at = iova + at - pad;
            let mut io = lock(self.dom.iommu());
            self.pt_map(&mut io, dma_api::Iova::new(io_at), target, map_len, prot)?;
            iommu_done.push((io_at, map_len));
            Ok(())
        };
        let mut res = Ok(());
        if head_pad != 0 {
            let blen = size.min(g - head_pad);
            res = step(0, blen, true);
            mapped = blen;
        }
        if res.is_ok() && size > mapped {
            let mid = size - mapped - end_pad;
            if mid > 0 {
                res = step(mapped, mid, false);
                mapped += mid;
            }
        }
        if res.is_ok() && size > mapped {
            res = step(mapped, size - mapped, true);
        }
        if let Err(e) = res {
            // Undo every piece and slot; the failures to are reported with
            // the error, in order.
            let mut failed = Vec::new();
            let mut io = lock(self.dom.iommu());
            for (at, l) in iommu_done {
                let undone = cleanup_step(
                    io.unmap_keep_iova(self.dom.id(), dma_api::Iova::new(at), l)
                        .map_err(super::dom_err),
                )
                .and_then(|t| cleanup_step(io.flush(t).map_err(super::dom_err)));
                failed.extend(undone.err());
            }
            drop(io);
            failed.extend(
                cleanup_step(self.release_linked(&bounces, dir, DmaAttrs::SKIP_CPU_SYNC)).err(),
            );
            return Err(e.with_cleanup(failed));
        }
        self.count_bounce();
        Ok(())
    }

    /// `iommu_dma_map_sg_swiotlb`: every entry through the single path
    /// (`iommu_dma_map_phys`), DMA length = the entry's length, the first
    /// entry marked `SG_DMA_SWIOTLB`; on failure the entries mapped so far
    /// are unmapped with `SKIP_CPU_SYNC`. Peer entries keep their own flags
    /// (`BUS_ADDRESS` is not mapped, host-bridge peers are `MMIO`).
    pub(crate) fn map_sg_swiotlb(
        &self,
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<usize, DmaError> {
        map_sg_per_entry(self, table, plan, dir, attrs, DmaFlags::SWIOTLB)
    }

    /// `iommu_dma_unmap_sg_swiotlb`: every entry through the single unmap
    /// (bus-address entries skipped); the DMA side is cleared.
    pub(crate) fn unmap_sg_swiotlb(
        &self,
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        unmap_sg_per_entry(self, table, plan, dir, attrs)
    }
}

/// True if `table` was mapped entry by entry through swiotlb
/// (`sg_dma_is_swiotlb`: the mark on the first entry).
pub(crate) fn sg_is_swiotlb(table: &SgTable) -> bool {
    table
        .iter()
        .next()
        .is_some_and(|e| e.dma_flags().contains(DmaFlags::SWIOTLB))
}

#[cfg(test)]
mod tests {
    use crate::dma::sg::inject;
    use crate::dma::{DmaDomain, IommuDevice, IommuDmaBackend, SharedIommu};
    use crate::pgtable::{AnyFormat, VtdSs};
    use crate::{DomainType, GroupId, Iommu, PhysMem, SharedMem, SimClock};
    use dma_api::mem::{CpuMemory, MemError};
    use dma_api::port::{DmaBackend, MapRequest, SegTarget};
    use dma_api::swiotlb::Swiotlb;
    use dma_api::{Direction, DmaAttrs, DmaError, PhysAddr};
    use std::sync::{Arc, Mutex, RwLock};

    #[derive(Debug)]
    struct Ram(SharedMem);

    impl CpuMemory for Ram {
        fn read(&self, phys: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
            self.0.read().unwrap().read(phys, buf)
        }
        fn write(&self, phys: PhysAddr, data: &[u8]) -> Result<(), MemError> {
            self.0.write().unwrap().write(phys, data)
        }
    }

    /// An untrusted device whose swiotlb pool lies beyond what the IOMMU
    /// page table can map, so every bounce fails at the IOMMU map.
    fn untrusted_with_unmappable_pool() -> IommuDmaBackend {
        let mem: SharedMem = Arc::new(RwLock::new(PhysMem::new()));
        let mut io = Iommu::with_mem(mem.clone(), SimClock::new());
        let fmt = AnyFormat::VtdSs(VtdSs::new(4).unwrap());
        let d = io.alloc_domain(DomainType::Dma, fmt).unwrap();
        let g = GroupId(1);
        io.attach_group(g, false, d).unwrap();
        let iommu: SharedIommu = Arc::new(Mutex::new(io));
        let dom = DmaDomain::new(iommu, d, 1).unwrap();
        let mut dev = IommuDevice::pci("03:00.0".parse().unwrap(), g);
        dev.trusted = false;
        let pool = Swiotlb::new(Arc::new(Ram(mem)), PhysAddr::new(1 << 60), 1 << 20).unwrap();
        IommuDmaBackend::new(dom, dev)
            .unwrap()
            .with_swiotlb(Arc::new(pool))
    }

    fn cleanup_reported(e: &DmaError, n: usize) {
        match e {
            DmaError::CleanupFailed { error, cleanup } => {
                assert!(!matches!(**error, DmaError::CleanupFailed { .. }), "{e}");
                assert_eq!(cleanup.len(), n, "{e}");
                assert!(
                    cleanup.iter().all(|c| c.to_string().contains("injected")),
                    "{e}"
                );
            }
            other => panic!("cleanup failure dropped: {other}"),
        }
    }

    /// Bug: a failed bounced map released its bounce slot and discarded the
    /// release's failure. It is returned with the error.
    #[test]
    fn failed_bounced_map_reports_a_failed_slot_release() {
        let b = untrusted_with_unmappable_pool();
        let req = MapRequest {
            phys: PhysAddr::new(0x1_0000_0080),
            len: 0x100,
            dir: Direction::ToDevice,
            attrs: DmaAttrs::empty(),
            target: SegTarget::Ram,
        };
        let plain = b.map(&req).unwrap_err();
        assert!(!matches!(plain, DmaError::CleanupFailed { .. }), "{plain}");
        inject::fail_cleanup(true);
        let e = b.map(&req).unwrap_err();
        inject::fail_cleanup(false);
        assert_eq!(
            core::mem::discriminant(e.root_cause()),
            core::mem::discriminant(&plain),
            "{e}"
        );
        cleanup_reported(&e, 1);
    }

    /// Bug: a failed bounced two-step link undid its pieces and bounce
    /// slots and discarded their failures. They are returned with the
    /// error.
    #[test]
    fn failed_bounced_link_reports_failed_cleanup() {
        let b = untrusted_with_unmappable_pool();
        let ops = b.iova_ops().unwrap();
        let phys = PhysAddr::new(0x1_0000_0080);
        let state = ops.try_alloc(phys, 0x3000).unwrap();
        let plain = ops
            .link(
                &state,
                phys,
                0,
                0x3000,
                Direction::ToDevice,
                DmaAttrs::empty(),
            )
            .unwrap_err();
        assert!(!matches!(plain, DmaError::CleanupFailed { .. }), "{plain}");
        inject::fail_cleanup(true);
        let e = ops
            .link(
                &state,
                phys,
                0,
                0x3000,
                Direction::ToDevice,
                DmaAttrs::empty(),
            )
            .unwrap_err();
        inject::fail_cleanup(false);
        assert_eq!(
            core::mem::discriminant(e.root_cause()),
            core::mem::discriminant(&plain),
            "{e}"
        );
        cleanup_reported(&e, 1);
    }
}
