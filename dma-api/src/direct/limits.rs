//! The direct backend's run-time device limits (Linux reads them from
//! `struct device` on every call: `*dev->dma_mask` in `dma_capable`,
//! `coherent_dma_mask` in `dma_coherent_ok`, `dma_get_min_align_mask` in
//! swiotlb) and its `dma_supported` check (kernel/dma/direct.c
//! `dma_direct_supported`).

use super::DirectBackend;
use crate::attrs::DmaAttrs;
use crate::device::{DmaConstraints, DEFAULT_MAX_SEG_SIZE, DEFAULT_SEG_BOUNDARY_MASK};
use crate::error::DmaError;
use crate::mask::DmaMask;
use crate::port::ConstraintsRequest;
use crate::types::{BusAddr, PhysAddr};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// What may change while the backend runs, each read without a lock on the
/// mapping paths (a lock per map and unmap cost a fifth of a table map).
#[derive(Debug)]
pub(super) struct Limits {
    /// The streaming mask's width.
    mask: AtomicU32,
    /// `coherent_dma_mask`'s width.
    coherent_mask: AtomicU32,
    /// `dma_get_min_align_mask`.
    min_align_mask: AtomicU64,
    /// Kept to report (dma-direct never merges, so never needs them).
    max_seg_size: AtomicU32,
    seg_boundary_mask: AtomicU64,
}

fn width(m: &AtomicU32) -> DmaMask {
    // Only ever stored from a `DmaMask`.
    DmaMask::new(m.load(Ordering::Relaxed)).unwrap_or(DmaMask::BITS_64)
}

impl Limits {
    /// Both masks `mask`, PCI segment defaults.
    pub(super) fn new(mask: DmaMask, min_align_mask: u64) -> Self {
        Self {
            mask: AtomicU32::new(mask.bits()),
            coherent_mask: AtomicU32::new(mask.bits()),
            min_align_mask: AtomicU64::new(min_align_mask),
            max_seg_size: AtomicU32::new(DEFAULT_MAX_SEG_SIZE),
            seg_boundary_mask: AtomicU64::new(DEFAULT_SEG_BOUNDARY_MASK),
        }
    }

    /// The streaming DMA mask (`*dev->dma_mask`).
    pub(super) fn mask(&self) -> DmaMask {
        width(&self.mask)
    }

    /// `coherent_dma_mask`.
    pub(super) fn coherent_mask(&self) -> DmaMask {
        width(&self.coherent_mask)
    }

    /// `dma_get_min_align_mask`.
    pub(super) fn min_align_mask(&self) -> u64 {
        self.min_align_mask.load(Ordering::Relaxed)
    }

    pub(super) fn constraints(&self) -> DmaConstraints {
        DmaConstraints {
            dma_mask: self.mask(),
            coherent_mask: self.coherent_mask(),
            min_align_mask: self.min_align_mask(),
            max_seg_size: self.max_seg_size.load(Ordering::Relaxed),
            seg_boundary_mask: self.seg_boundary_mask.load(Ordering::Relaxed),
            virt_boundary_mask: 0,
        }
    }

    fn store(&self, c: &DmaConstraints) {
        self.mask.store(c.dma_mask.bits(), Ordering::Relaxed);
        self.coherent_mask
            .store(c.coherent_mask.bits(), Ordering::Relaxed);
        self.min_align_mask
            .store(c.min_align_mask, Ordering::Relaxed);
        self.max_seg_size.store(c.max_seg_size, Ordering::Relaxed);
        self.seg_boundary_mask
            .store(c.seg_boundary_mask, Ordering::Relaxed);
    }
}

/// Linux `dma_capable` for `mask`: every byte of `[bus, bus + len)`
/// addressable, else the `Fallback` [`DmaError::MaskUnreachable`].
pub(super) fn reach(mask: DmaMask, bus: BusAddr, len: u64) -> Result<(), DmaError> {
    if mask.covers(bus, len) {
        Ok(())
    } else {
        Err(DmaError::MaskUnreachable { bus, len, mask })
    }
}

impl DirectBackend {
    /// Checks both masks of `req`, then adopts everything, or nothing.
    ///
    /// * The streaming mask must reach the memory every mapping can fall
    ///   back to: the bounce pool when there is one (an address the mask
    ///   cannot reach bounces there), else the last byte of RAM (nothing can
    ///   bounce). This is `dma_direct_supported` with the memory this
    ///   backend really has: Linux compares the mask with
    ///   `min(last RAM page, ZONE_DMA/ZONE_DMA32 end)` and accepts every
    ///   mask of 32 bits or more on the assumption that `ZONE_DMA32` (where
    ///   swiotlb lives) exists; we look at where the pool is. Without a pool
    ///   or a known RAM end, Linux's rule (32 bits) is used.
    /// * The coherent mask must reach the context's coherent pool, where
    ///   every coherent allocation comes from (`dma_coherent_ok`); Linux only
    ///   runs `dma_supported` and fails the allocation later.
    ///
    /// Both are checked on the unencrypted address
    /// (`phys_to_dma_unencrypted`, as `dma_direct_supported` does). A range
    /// no dma-range covers is not the mask's fault and is not held against
    /// it (mapping it fails on its own, typed). A refusal is
    /// [`DmaError::MaskNotSupported`].
    pub fn adopt(&self, req: &ConstraintsRequest) -> Result<(), DmaError> {
        let c = req.constraints;
        let refuse = |mask, coherent, needs, what| DmaError::MaskNotSupported {
            device: req.device,
            mask,
            coherent,
            needs,
            what,
        };
        let needed = match (&self.swiotlb, self.cfg.ram_last) {
            (Some(pool), _) => Some(("the swiotlb bounce pool", pool.start(), pool.size())),
            (None, Some(last)) => Some(("the last byte of system RAM", last, 1)),
            (None, None) => None,
        };
        match needed {
            Some((what, start, len)) => {
                if let Some(needs) = self.beyond(c.dma_mask, start, len) {
                    return Err(refuse(c.dma_mask, false, needs, what));
                }
            }
            None if c.dma_mask.bits() < 32 => {
                return Err(refuse(
                    c.dma_mask,
                    false,
                    0xffff_ffff,
                    "4 GiB (ZONE_DMA32; no bounce pool and no known end of RAM)",
                ))
            }
            None => {}
        }
        let (start, len) = req.coherent_pool;
        if let Some(needs) = self.beyond(c.coherent_mask, start, len) {
            return Err(refuse(c.coherent_mask, true, needs, "the coherent pool"));
        }
        self.lim.store(&c);
        Ok(())
    }

    /// `phys_to_dma` of `[phys, phys + len)` (the arch's translation and
    /// encryption bit), then `dma_capable` under `mask`. The arch sees the
    /// device with the widest mask; the mask is applied here, so changing it
    /// needs no lock on the mapping path.
    pub(super) fn ram_bus(
        &self,
        mask: DmaMask,
        phys: PhysAddr,
        len: u64,
        attrs: DmaAttrs,
    ) -> Result<BusAddr, DmaError> {
        let bus = self.arch.ram_to_bus(&self.dev, phys, len, attrs)?;
        reach(mask, bus, len)?;
        Ok(bus)
    }

    /// The unencrypted bus address of the last byte of `[start, start +
    /// len)` if `mask` cannot reach it; `None` if it can, or if no dma-range
    /// covers the range.
    fn beyond(&self, mask: DmaMask, start: PhysAddr, len: u64) -> Option<u64> {
        match self.ram_bus(mask, start, len, DmaAttrs::CC_SHARED) {
            Err(DmaError::MaskUnreachable { bus, len, .. }) => {
                Some(bus.raw().saturating_add(len.saturating_sub(1)))
            }
            _ => None,
        }
    }
}
