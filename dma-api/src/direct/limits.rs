//! The direct backend's run-time device limits (Linux reads them from
//! `struct device` on every call: `*dev->dma_mask` in `dma_capable`,
//! `coherent_dma_mask` in `dma_coherent_ok`, `dma_get_min_align_mask` in
//! swiotlb) and its `dma_supported` check (kernel/dma/direct.c
//! `dma_direct_supported`).

use super::DirectBackend;
use crate::arch_port::ArchDevice;
use crate::attrs::DmaAttrs;
use crate::device::{DmaConstraints, DEFAULT_MAX_SEG_SIZE, DEFAULT_SEG_BOUNDARY_MASK};
use crate::error::DmaError;
use crate::mask::DmaMask;
use crate::port::ConstraintsRequest;
use crate::types::PhysAddr;

/// What may change while the backend runs.
#[derive(Debug)]
pub(super) struct Limits {
    /// The device, its `mask` the streaming DMA mask.
    pub(super) dev: ArchDevice,
    /// `coherent_dma_mask`.
    pub(super) coherent_mask: DmaMask,
    /// `dma_get_min_align_mask`.
    pub(super) min_align_mask: u64,
    /// Kept to report (dma-direct never merges, so never needs them).
    max_seg_size: u32,
    seg_boundary_mask: u64,
}

impl Limits {
    /// Both masks the device's, PCI segment defaults.
    pub(super) fn new(dev: ArchDevice, min_align_mask: u64) -> Self {
        Self {
            coherent_mask: dev.mask,
            dev,
            min_align_mask,
            max_seg_size: DEFAULT_MAX_SEG_SIZE,
            seg_boundary_mask: DEFAULT_SEG_BOUNDARY_MASK,
        }
    }

    pub(super) fn constraints(&self) -> DmaConstraints {
        DmaConstraints {
            dma_mask: self.dev.mask,
            coherent_mask: self.coherent_mask,
            min_align_mask: self.min_align_mask,
            max_seg_size: self.max_seg_size,
            seg_boundary_mask: self.seg_boundary_mask,
            virt_boundary_mask: 0,
        }
    }

    /// The device as `dma_coherent_ok` sees it: the coherent mask.
    pub(super) fn coherent_device(&self) -> ArchDevice {
        let mut d = self.dev.clone();
        d.mask = self.coherent_mask;
        d
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
        let mut lim = self.lim.write();
        let refuse = |mask, coherent, needs, what| DmaError::MaskNotSupported {
            device: req.device,
            mask,
            coherent,
            needs,
            what,
        };
        let mut dev = lim.dev.clone();
        dev.mask = c.dma_mask;
        let needed = match (&self.swiotlb, self.cfg.ram_last) {
            (Some(pool), _) => Some(("the swiotlb bounce pool", pool.start(), pool.size())),
            (None, Some(last)) => Some(("the last byte of system RAM", last, 1)),
            (None, None) => None,
        };
        match needed {
            Some((what, start, len)) => {
                if let Some(needs) = self.beyond(&dev, start, len) {
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
        let mut cdev = lim.dev.clone();
        cdev.mask = c.coherent_mask;
        let (start, len) = req.coherent_pool;
        if let Some(needs) = self.beyond(&cdev, start, len) {
            return Err(refuse(c.coherent_mask, true, needs, "the coherent pool"));
        }
        lim.dev.mask = c.dma_mask;
        lim.coherent_mask = c.coherent_mask;
        lim.min_align_mask = c.min_align_mask;
        lim.max_seg_size = c.max_seg_size;
        lim.seg_boundary_mask = c.seg_boundary_mask;
        Ok(())
    }

    /// The unencrypted bus address of the last byte of `[start, start +
    /// len)` if `dev`'s mask cannot reach it; `None` if it can, or if no
    /// dma-range covers the range.
    fn beyond(&self, dev: &ArchDevice, start: PhysAddr, len: u64) -> Option<u64> {
        match self.arch.ram_to_bus(dev, start, len, DmaAttrs::CC_SHARED) {
            Err(DmaError::MaskUnreachable { bus, len, .. }) => {
                Some(bus.raw().saturating_add(len.saturating_sub(1)))
            }
            _ => None,
        }
    }
}
