//! The two-step IOVA API on the IOMMU backend.
//!
//! drivers/iommu/dma-iommu.c `dma_iova_try_alloc` / `dma_iova_link` /
//! `dma_iova_sync` / `dma_iova_unlink` / `dma_iova_destroy`:
//! * `try_alloc` reserves `iova_align(size + iova_offset(phys))`; only the
//!   in-granule offset of `phys` matters;
//! * `link` maps without an IOTLB sync; only the first link (offset 0) may
//!   start inside a granule, any other gets `-EIO` (here
//!   [`DmaError::IovaLinkUnaligned`] naming the offset); a range Linux would
//!   bounce fails for MMIO (`-EPERM`) and `REQUIRE_COHERENT`; a non-coherent
//!   device with `REQUIRE_COHERENT` gets `-EOPNOTSUPP`
//!   ([`DmaError::CoherenceRequired`]);
//! * `sync` is the one IOTLB sync of a batch;
//! * `unlink` unmaps and syncs at once but keeps the IOVA;
//! * `destroy` unlinks `[0, mapped_len)` and frees the IOVA — queued in lazy
//!   mode.
//!
//! Untrusted devices with a swiotlb pool bounce the partial head and tail
//! granules of an unaligned link (`iommu_dma_iova_link_swiotlb`); unlink and
//! destroy hand those bounces back to swiotlb after the IOTLB flush (Linux
//! copies back before the unmap).
//!
//! Beyond Linux: links, syncs and unlinks outside the reservation are refused
//! ([`DmaError::IovaLinkOutOfRange`]) instead of corrupting a neighbour, and
//! the range of an unlink or destroy may have holes (links scattered in a
//! large reservation; Linux's `__iommu_dma_iova_unlink` expects it fully
//! linked and `WARN_ON`s). The holes are skipped a table entry at a time at
//! the level where they appear (`Iommu::unmap_pieces` over
//! [`PageTable::unmap_sparse`](crate::pgtable::PageTable::unmap_sparse), and
//! the bounce search over `for_each_leaf`), so the work done under the IOMMU
//! lock follows what is mapped, not the size reserved.

// `DmaError` has drop glue (some variants own a `String`): an eagerly built
// error is dropped on the success path, which showed up in profiles.
#![allow(clippy::unnecessary_lazy_evaluations)]

use dma_api::port::{IovaOps, IovaState};
use dma_api::{Direction, DmaAttrs, DmaError, Iova, PhysAddr};

use super::backend::IommuDmaBackend;
use super::domain::lock;
use super::{dma_info_to_prot, dom_err};

impl IommuDmaBackend {
    /// `[start, end)` in IOVA of the granules covering `[offset, offset + size)`
    /// of the reservation, checked against it.
    fn link_span(&self, state: &IovaState, offset: u64, size: u64) -> Result<(u64, u64), DmaError> {
        let g = self.granule();
        let bad = DmaError::IovaLinkOutOfRange {
            offset,
            size,
            reserved: state.size,
        };
        let first = state
            .first_offset
            .checked_add(offset)
            .ok_or_else(|| bad.clone())?;
        let last = first.checked_add(size).ok_or_else(|| bad.clone())?;
        let end = self.iova_align(last).ok_or_else(|| bad.clone())?;
        if size == 0 || end > state.size || state.base.raw() & (g - 1) != 0 {
            return Err(bad);
        }
        let start = state.base.raw().checked_add(first & !(g - 1));
        match (start, state.base.raw().checked_add(end)) {
            (Some(s), Some(e)) => Ok((s, e)),
            _ => Err(bad),
        }
    }
}

impl IovaOps for IommuDmaBackend {
    fn try_alloc(&self, phys: PhysAddr, size: u64) -> Result<IovaState, DmaError> {
        if size == 0 {
            return Err(DmaError::ZeroLength { phys });
        }
        let off = phys.raw() & (self.granule() - 1);
        let total = off
            .checked_add(size)
            .and_then(|t| self.iova_align(t))
            .ok_or_else(|| DmaError::PhysOverflow { phys, len: size })?;
        let range = self.alloc_iova(total)?;
        Ok(IovaState {
            base: range.start(),
            size: total,
            first_offset: off,
        })
    }

    fn link(
        &self,
        state: &IovaState,
        phys: PhysAddr,
        offset: u64,
        size: u64,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        let g = self.granule();
        let pad = phys.raw() & (g - 1);
        // Only the first link may start inside a granule (Linux -EIO), and
        // the link must land at the same in-granule offset it has in memory.
        let at = state.first_offset.wrapping_add(offset);
        if (pad != 0 && offset > 0) || (at & (g - 1)) != pad {
            return Err(DmaError::IovaLinkUnaligned {
                phys,
                offset,
                granule: g,
            });
        }
        if size == 0 {
            return Err(DmaError::ZeroLength { phys });
        }
        if phys.last_of(size).is_none() {
            return Err(DmaError::PhysOverflow { phys, len: size });
        }
        let (start, end) = self.link_span(state, offset, size)?;
        let mmio = attrs.contains(DmaAttrs::MMIO);
        self.check_reach(phys, size, mmio, attrs)?;
        let prot = dma_info_to_prot(dir, self.dev.coherent, attrs, mmio);
        if !mmio && self.bounces(phys, size) {
            return self.link_bounced(start + (at & (g - 1)), phys, size, dir, attrs, prot);
        }
        self.record_sync(phys, size, dir, false, mmio, attrs);
        let mut io = lock(self.dom.iommu());
        self.pt_map(
            &mut io,
            Iova::new(start),
            PhysAddr::new(phys.raw() - pad),
            end - start,
            prot,
        )
    }

    fn sync(&self, state: &IovaState, offset: u64, size: u64) -> Result<(), DmaError> {
        self.link_span(state, offset, size)?;
        // `iommu_sync_map`: the simulated IOTLB never caches non-present
        // entries, so making new links visible needs no invalidation; the
        // call is counted (one per batch).
        self.count_sync();
        Ok(())
    }

    fn unlink(
        &self,
        state: &IovaState,
        offset: u64,
        size: u64,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        let (start, end) = self.link_span(state, offset, size)?;
        let first = state
            .base
            .raw()
            .wrapping_add(state.first_offset)
            .wrapping_add(offset);
        let bounces = self.linked_bounces(first, size);
        let mut io = lock(self.dom.iommu());
        if let Some(phys) = io.page_table(self.dom.id()).and_then(|pt| {
            pt.iova_to_phys(Iova::new(
                state
                    .base
                    .raw()
                    .wrapping_add(state.first_offset)
                    .wrapping_add(offset),
            ))
        }) {
            self.record_sync(phys, size, dir, true, attrs.contains(DmaAttrs::MMIO), attrs);
        }
        let token = io
            .unmap_keep_iova(self.dom.id(), Iova::new(start), end - start)
            .map_err(dom_err)?;
        io.flush(token).map_err(dom_err)?;
        drop(io);
        self.release_linked(&bounces, dir, attrs)
    }

    fn destroy(
        &self,
        state: IovaState,
        mapped_len: u64,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        let g = self.granule();
        if state.base.raw() & (g - 1) != 0 || state.size == 0 || state.size & (g - 1) != 0 {
            return Err(DmaError::IovaNotAllocated { iova: state.base });
        }
        let pieces = if mapped_len == 0 {
            Vec::new()
        } else {
            let (start, end) = self.link_span(&state, 0, mapped_len)?;
            vec![(Iova::new(start), end - start)]
        };
        let bounces = if mapped_len == 0 {
            Vec::new()
        } else {
            self.linked_bounces(
                state.base.raw().wrapping_add(state.first_offset),
                mapped_len,
            )
        };
        let mut io = lock(self.dom.iommu());
        if mapped_len != 0 {
            if let Some(phys) = io.page_table(self.dom.id()).and_then(|pt| {
                pt.iova_to_phys(Iova::new(state.base.raw().wrapping_add(state.first_offset)))
            }) {
                self.record_sync(
                    phys,
                    mapped_len,
                    dir,
                    true,
                    attrs.contains(DmaAttrs::MMIO),
                    attrs,
                );
            }
        }
        let token = io
            .unmap_pieces(self.dom.id(), state.base, state.size, &pieces)
            .map_err(dom_err)?;
        if mapped_len == 0 {
            // Nothing was mapped: nothing to invalidate lazily.
            return io.flush(token).map_err(dom_err);
        }
        self.complete(&mut io, token)?;
        drop(io);
        self.release_linked(&bounces, dir, attrs)
    }
}
