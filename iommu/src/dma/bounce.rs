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

use dma_api::port::{MapRequest, SegPlan, SegTarget};
use dma_api::{Direction, DmaAddr, DmaAttrs, DmaError, PhysAddr};
use scatterlist::{DmaFlags, SgTable};

use super::backend::IommuDmaBackend;
use super::domain::lock;
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
        let release = |e: DmaError| {
            let _ = pool.unmap(tlb, req.len, req.dir, DmaAttrs::SKIP_CPU_SYNC);
            e
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

    /// `iommu_dma_sync_single_for_cpu` on a bounced address: the copy out
    /// of the bounce buffer (after the cache maintenance).
    pub(crate) fn sync_bounce(
        &self,
        dma: DmaAddr,
        len: u64,
        dir: Direction,
        for_cpu: bool,
    ) -> Result<(), DmaError> {
        let (Some(pool), Some(tlb)) = (self.swiotlb(), self.bounce_phys(dma)) else {
            return Ok(());
        };
        let r = if for_cpu {
            pool.sync_for_cpu(tlb, len, dir)
        } else {
            pool.sync_for_device(tlb, len, dir)
        };
        r.map_err(|_| DmaError::NotMapped { dma, len })
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
        use dma_api::port::DmaBackend;
        let nents = table.orig_nents();
        if plan.len() != nents {
            return Err(DmaError::PlanMismatch {
                plan: plan.len(),
                nents,
            });
        }
        let mut failed = None;
        let mut done = 0usize;
        for (i, (e, p)) in table.iter_mut().zip(plan).enumerate() {
            let len = u64::from(e.len());
            let req = MapRequest {
                phys: p.phys,
                len,
                dir,
                attrs,
                target: p.target,
            };
            let res = self.map(&req).and_then(|dma| {
                let mut flags = match p.target {
                    SegTarget::Ram if attrs.contains(DmaAttrs::MMIO) => DmaFlags::MMIO,
                    SegTarget::Ram => DmaFlags::EMPTY,
                    SegTarget::PeerHostBridge => DmaFlags::MMIO,
                    SegTarget::PeerBus(_) => DmaFlags::BUS_ADDRESS,
                };
                if i == 0 {
                    flags = flags | DmaFlags::SWIOTLB;
                }
                e.set_dma(dma, len, flags).map_err(|err| {
                    let _ = self.unmap(
                        dma,
                        &MapRequest {
                            attrs: attrs | DmaAttrs::SKIP_CPU_SYNC,
                            ..req
                        },
                    );
                    DmaError::from(err)
                })
            });
            if let Err(err) = res {
                failed = Some(err);
                break;
            }
            done += 1;
        }
        if let Some(err) = failed {
            for (e, p) in table.iter().zip(plan).take(done) {
                let req = MapRequest {
                    phys: p.phys,
                    len: u64::from(e.len()),
                    dir,
                    attrs: attrs | DmaAttrs::SKIP_CPU_SYNC,
                    target: p.target,
                };
                let _ = self.unmap(e.dma_address(), &req);
            }
            table.clear_dma();
            return Err(err);
        }
        table.set_nents(nents)?;
        Ok(nents)
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
        use dma_api::port::DmaBackend;
        let nents = table.orig_nents();
        if plan.len() != nents {
            return Err(DmaError::PlanMismatch {
                plan: plan.len(),
                nents,
            });
        }
        let mut first_err = None;
        for (e, p) in table.iter().zip(plan) {
            if e.dma_flags().contains(DmaFlags::BUS_ADDRESS) {
                continue;
            }
            let req = MapRequest {
                phys: p.phys,
                len: u64::from(e.dma_len()),
                dir,
                attrs,
                target: p.target,
            };
            if let Err(err) = self.unmap(e.dma_address(), &req) {
                first_err.get_or_insert(err);
            }
        }
        table.clear_dma();
        first_err.map_or(Ok(()), Err)
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
