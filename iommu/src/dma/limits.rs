//! The IOMMU backend's run-time device limits: the masks that cap IOVAs and
//! the segment limits `map_sg` merges under. Linux reads them from `struct
//! device` on every call (drivers/iommu/dma-iommu.c: `dma_get_mask` in
//! `iommu_dma_map_phys`, `coherent_dma_mask` in `iommu_dma_alloc`,
//! `dma_get_max_seg_size` / `dma_get_seg_boundary` in `iommu_dma_map_sg`);
//! here [`DmaBackend::set_constraints`](dma_api::port::DmaBackend::set_constraints)
//! updates them.

use std::sync::atomic::{AtomicU64, Ordering};

use dma_api::device::DmaConstraints;
use dma_api::port::ConstraintsRequest;
use dma_api::{DmaError, DmaMask, Iova};

use super::device::IommuDevice;
use super::IommuDmaBackend;

/// The limits, each readable without a lock on the mapping paths.
#[derive(Debug)]
pub(crate) struct Limits {
    dma_mask: AtomicU64,
    coherent_mask: AtomicU64,
    min_align_mask: AtomicU64,
    seg_boundary_mask: AtomicU64,
    max_seg_size: AtomicU64,
}

impl Limits {
    /// The device's construction parameters; the coherent mask starts as the
    /// streaming one.
    pub(crate) fn new(dev: &IommuDevice) -> Self {
        Self {
            dma_mask: AtomicU64::new(dev.dma_mask.value()),
            coherent_mask: AtomicU64::new(dev.dma_mask.value()),
            min_align_mask: AtomicU64::new(0),
            seg_boundary_mask: AtomicU64::new(dev.seg_boundary_mask),
            max_seg_size: AtomicU64::new(dev.max_seg_size),
        }
    }
}

fn mask_of(v: u64) -> DmaMask {
    // Only ever stored from a `DmaMask`.
    DmaMask::from_value(v).unwrap_or(DmaMask::BITS_64)
}

impl IommuDmaBackend {
    /// The streaming DMA mask now.
    pub fn dma_mask(&self) -> DmaMask {
        mask_of(self.lim.dma_mask.load(Ordering::Relaxed))
    }

    /// The coherent DMA mask now (caps coherent allocations' IOVAs).
    pub fn coherent_mask(&self) -> DmaMask {
        mask_of(self.lim.coherent_mask.load(Ordering::Relaxed))
    }

    /// The highest IOVA a streaming mapping may get: the mask capped to the
    /// aperture (`iommu_dma_alloc_iova`'s `dma_limit`).
    pub fn dma_limit(&self) -> Iova {
        Iova::new(self.dma_mask().value().min(self.dom.aperture_end().raw()))
    }

    /// The same for coherent allocations (`coherent_dma_mask`).
    pub fn coherent_limit(&self) -> Iova {
        Iova::new(
            self.coherent_mask()
                .value()
                .min(self.dom.aperture_end().raw()),
        )
    }

    /// `dma_get_seg_boundary` now.
    pub(crate) fn seg_boundary_mask(&self) -> u64 {
        self.lim.seg_boundary_mask.load(Ordering::Relaxed)
    }

    /// `dma_get_max_seg_size` now.
    pub(crate) fn max_seg_size(&self) -> u64 {
        self.lim.max_seg_size.load(Ordering::Relaxed)
    }

    /// The device parameters, with the current mask and segment limits.
    pub fn device(&self) -> IommuDevice {
        IommuDevice {
            dma_mask: self.dma_mask(),
            seg_boundary_mask: self.seg_boundary_mask(),
            max_seg_size: self.max_seg_size(),
            ..self.dev
        }
    }

    pub(crate) fn current_constraints(&self) -> DmaConstraints {
        DmaConstraints {
            dma_mask: self.dma_mask(),
            coherent_mask: self.coherent_mask(),
            min_align_mask: self.lim.min_align_mask.load(Ordering::Relaxed),
            max_seg_size: u32::try_from(self.max_seg_size()).unwrap_or(u32::MAX),
            seg_boundary_mask: self.seg_boundary_mask(),
            virt_boundary_mask: 0,
        }
    }

    /// Linux `dma_supported` for a device on dma-iommu accepts every mask
    /// (kernel/dma/mapping.c `use_dma_iommu`). We refuse only a mask that
    /// cannot hold one IOVA granule, where every allocation would fail with
    /// a transient-looking `IovaExhausted` forever. Then all limits change
    /// at once; the IOVA limit follows the new mask from the next
    /// allocation on. The min-align mask is kept but unused: the IOVA keeps
    /// the offset inside its granule, and untrusted devices bounce with
    /// granule alignment (`iommu_dma_map_swiotlb`).
    pub(crate) fn adopt(&self, req: &ConstraintsRequest) -> Result<(), DmaError> {
        let c = req.constraints;
        let m = c.seg_boundary_mask;
        if m.wrapping_add(1) & m != 0 {
            return Err(DmaError::InvalidConstraint {
                device: req.device,
                what: "seg_boundary_mask",
                value: m,
                rule: "must be 2^n - 1",
            });
        }
        let g = self.granule();
        for (mask, coherent) in [(c.dma_mask, false), (c.coherent_mask, true)] {
            if mask.value() < g {
                return Err(DmaError::MaskNotSupported {
                    device: req.device,
                    mask,
                    coherent,
                    needs: g,
                    what: "one IOVA granule",
                });
            }
        }
        let l = &self.lim;
        l.dma_mask.store(c.dma_mask.value(), Ordering::Relaxed);
        l.coherent_mask
            .store(c.coherent_mask.value(), Ordering::Relaxed);
        l.min_align_mask.store(c.min_align_mask, Ordering::Relaxed);
        l.seg_boundary_mask.store(m, Ordering::Relaxed);
        l.max_seg_size
            .store(u64::from(c.max_seg_size), Ordering::Relaxed);
        Ok(())
    }
}
