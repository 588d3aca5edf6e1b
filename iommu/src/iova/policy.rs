//! Which IOVA limit a device allocates under: dma-iommu's 32-bit-first rule.
//!
//! drivers/iommu/dma-iommu.c `iommu_dma_alloc_iova`: a PCI device whose limit
//! is above 4 GiB first tries below 4 GiB (without flushing the rcache),
//! because enough hardware still mishandles 64-bit DMA addresses. The first
//! time that fails, the device's `pci_32bit_workaround` flag is cleared for
//! good ("Using N-bit DMA addresses") and it allocates under its full limit,
//! flushing the rcache on failure. `iommu.forcedac=1` starts with the flag
//! cleared; non-PCI devices never have it.

use super::range::IovaRange;
use super::rcache::CachedIovaDomain;
use core::sync::atomic::{AtomicBool, Ordering};
use dma_api::{DmaError, ErrorKind, Iova};

/// The highest 32-bit IOVA, `DMA_BIT_MASK(32)`.
pub const IOVA_32BIT_LIMIT: Iova = Iova::new(0xffff_ffff);

/// Per-device IOVA policy: the sticky 32-bit-first flag.
#[derive(Debug)]
pub struct DeviceIovaPolicy {
    pci_32bit_workaround: AtomicBool,
}

impl DeviceIovaPolicy {
    /// The policy of a device: 32-bit first for PCI devices unless
    /// `forcedac` (`iommu.forcedac=1`) is set.
    pub const fn new(is_pci: bool, forcedac: bool) -> Self {
        Self {
            pci_32bit_workaround: AtomicBool::new(is_pci && !forcedac),
        }
    }

    /// True while the device still tries below 4 GiB first.
    pub fn pci_32bit_workaround(&self) -> bool {
        self.pci_32bit_workaround.load(Ordering::Relaxed)
    }

    /// Allocates `pages` granules for the device on CPU `cpu` under
    /// `dma_limit` (the device's `min_not_zero(dma_mask, bus_dma_limit)`,
    /// capped to the aperture), applying the 32-bit-first rule.
    ///
    /// Only exhaustion below 4 GiB clears the flag; an invalid request
    /// returns its error and leaves the flag alone.
    pub fn alloc_on(
        &self,
        iovad: &CachedIovaDomain,
        cpu: usize,
        pages: u64,
        dma_limit: Iova,
    ) -> Result<IovaRange, DmaError> {
        if dma_limit > IOVA_32BIT_LIMIT && self.pci_32bit_workaround() {
            match iovad.alloc_fast_on(cpu, pages, IOVA_32BIT_LIMIT, false) {
                Ok(r) => return Ok(r),
                Err(e) if e.kind() != ErrorKind::NoResources => return Err(e),
                Err(_) => self.pci_32bit_workaround.store(false, Ordering::Relaxed),
            }
        }
        iovad.alloc_fast_on(cpu, pages, dma_limit, true)
    }

    /// [`alloc_on`](Self::alloc_on) on the calling thread's slot.
    #[cfg(feature = "std")]
    pub fn alloc(
        &self,
        iovad: &CachedIovaDomain,
        pages: u64,
        dma_limit: Iova,
    ) -> Result<IovaRange, DmaError> {
        self.alloc_on(iovad, super::rcache::thread_slot(), pages, dma_limit)
    }
}
