//! The DMA cookie of one translating domain: its IOVA allocator, wired to the
//! domain's release path.
//!
//! drivers/iommu/dma-iommu.c `iommu_dma_init_domain`: the IOVA granule is the
//! domain's smallest page size, the space starts at frame 1 (IOVA 0 is never
//! handed out) and ends at the aperture (the table's input size). The domain
//! hands ranges back through [`IovaSource`] only once the invalidation
//! covering them has completed (strict flush or flush-queue release).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dma_api::{DmaError, Iova, WindowMap};

use super::dom_err;
use crate::domain::{DomainId, DomainType, Iommu, IovaSource};
use crate::iova::{CachedIovaDomain, IovaDomain, IovaRange, IOVA_RANGE_CACHE_MAX_SIZE};
use crate::pgtable::PtFormat;

/// An IOMMU shared by every device (and group) behind it.
pub type SharedIommu = Arc<Mutex<Iommu>>;

/// Locks the IOMMU, surviving a poisoned lock (the simulated state stays
/// consistent: every operation completes or returns before panicking paths).
pub(crate) fn lock(iommu: &SharedIommu) -> MutexGuard<'_, Iommu> {
    iommu.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The allocator side of [`IovaSource`]: `free_iova_fast` with the size class
/// the allocation had (`alloc_iova_fast` rounds sizes below 32 granules up to
/// a power of two, so the free does too).
struct AllocatorSink {
    iovad: Arc<CachedIovaDomain>,
    shift: u32,
}

impl IovaSource for AllocatorSink {
    fn free_iova(&mut self, iova: Iova, size: u64) {
        let pages = size >> self.shift;
        if pages == 0 {
            return;
        }
        let pages = if pages < (1 << (IOVA_RANGE_CACHE_MAX_SIZE - 1)) {
            pages.next_power_of_two()
        } else {
            pages
        };
        let range = IovaRange::from_pfn(iova.raw() >> self.shift, pages, self.shift);
        // A range this cookie never allocated cannot reach here (the domain
        // only releases tokens built from our own allocations); a refusal is
        // counted by the allocator and otherwise ignored, like Linux.
        let _ = self.iovad.free_fast_on(super::backend::cpu_slot(), range);
    }
}

/// One translating domain prepared for the DMA API (Linux's IOVA cookie).
#[derive(Debug)]
pub struct DmaDomain {
    iommu: SharedIommu,
    id: DomainId,
    iovad: Arc<CachedIovaDomain>,
    granule: u64,
    aperture_end: Iova,
}

impl DmaDomain {
    /// Prepares `id` (a `Dma` or `DmaFq` domain of `iommu`) for the DMA API:
    /// an IOVA space with the domain's smallest page as granule, cached for
    /// `cpus` CPUs, whose frees come from the domain's completed flushes.
    pub fn new(iommu: SharedIommu, id: DomainId, cpus: usize) -> Result<Arc<Self>, DmaError> {
        let (granule, ias) = {
            let io = lock(&iommu);
            match io.domain_type(id) {
                Some(DomainType::Dma | DomainType::DmaFq) => {}
                Some(ty) => {
                    return Err(dom_err(crate::DomainError::NotTranslating {
                        domain: id,
                        ty,
                    }))
                }
                None => return Err(dom_err(crate::DomainError::UnknownDomain(id))),
            }
            let pt = io
                .page_table(id)
                .ok_or_else(|| dom_err(crate::DomainError::UnknownDomain(id)))?;
            let bitmap = pt.pgsize_bitmap();
            (bitmap & bitmap.wrapping_neg(), pt.format().ias())
        };
        let iovad = Arc::new(CachedIovaDomain::new(
            IovaDomain::new(granule, Iova::new(0))?,
            cpus,
        ));
        let aperture_end = Iova::new(if ias >= 64 {
            u64::MAX
        } else {
            (1u64 << ias) - 1
        });
        let sink = AllocatorSink {
            iovad: Arc::clone(&iovad),
            shift: granule.trailing_zeros(),
        };
        lock(&iommu)
            .set_iova_source(id, Box::new(sink))
            .map_err(dom_err)?;
        Ok(Arc::new(Self {
            iommu,
            id,
            iovad,
            granule,
            aperture_end,
        }))
    }

    /// The IOMMU.
    pub fn iommu(&self) -> &SharedIommu {
        &self.iommu
    }

    /// The domain.
    pub fn id(&self) -> DomainId {
        self.id
    }

    /// The IOVA allocator (for reservations: host-bridge windows, `dma-ranges`
    /// gaps, the MSI window; and for statistics).
    pub fn iovad(&self) -> &CachedIovaDomain {
        &self.iovad
    }

    /// The IOVA granule (smallest page size of the domain).
    pub fn granule(&self) -> u64 {
        self.granule
    }

    /// The last IOVA the domain's table can translate.
    pub fn aperture_end(&self) -> Iova {
        self.aperture_end
    }

    /// `iova_reserve_iommu_regions` for a PCI device: reserves the host
    /// bridge's MMIO windows (bus side) so no IOVA can be claimed by a peer
    /// BAR on the way up, every gap between its inbound `dma-ranges` (an
    /// empty map reserves nothing), and, with `x86_msi`, the interrupt window
    /// `0xfee00000..=0xfeefffff`. Linux does this before the first mapping;
    /// a later call is honoured too (cached IOVAs it covers leave the IOVA
    /// cache, see [`CachedIovaDomain::with_domain`]).
    pub fn reserve_pci_windows(
        &self,
        bridge_windows: &WindowMap,
        dma_ranges: &WindowMap,
        x86_msi: bool,
    ) -> Result<(), DmaError> {
        self.iovad.with_domain(|d| {
            d.reserve_bus_windows(bridge_windows)?;
            d.reserve_dma_ranges_gaps(dma_ranges)?;
            if x86_msi {
                d.reserve_x86_msi_window()?;
            }
            Ok(())
        })
    }

    /// Whether unmaps complete lazily (domain type `DmaFq`).
    pub fn is_lazy(&self) -> bool {
        lock(&self.iommu).domain_type(self.id) == Some(DomainType::DmaFq)
    }
}
