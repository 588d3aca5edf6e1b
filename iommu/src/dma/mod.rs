//! The IOMMU DMA backend: `dma_api::port::DmaBackend` and the two-step
//! `IovaOps` over a translating domain of the simulated [`Iommu`](crate::Iommu).
//!
//! Semantics of drivers/iommu/dma-iommu.c: IOVA sized in whole granules with
//! the in-granule offset kept in the DMA address (`__iommu_dma_map`), the
//! 32-bit-first allocation policy (`iommu_dma_alloc_iova`), protection from
//! direction, coherency and MMIO (`dma_info_to_prot`), one IOVA allocation per
//! scatterlist with segment-boundary padding and `__finalise_sg`
//! concatenation (`iommu_dma_map_sg`), and strict versus lazy completion of
//! unmaps (the IOVA goes back to the allocator only once the IOTLB
//! invalidation covering it has completed).
//!
//! Deliberate differences (RFC): bus-address segments keep their own length,
//! host-bridge peer segments get `IOMMU_MMIO` per segment, boundary padding
//! is left unmapped instead of mapping the memory after the previous segment,
//! and errors are typed. Untrusted devices are strict, and with a swiotlb
//! pool attached their sub-granule RAM ranges are bounced (`bounce`).
//! Coherent allocations (`iommu_dma_alloc`) are mapped in place and never
//! bounced, untrusted devices included.

mod backend;
mod bounce;
mod device;
mod domain;
mod limits;
mod link;
mod prot;
mod sg;

pub use backend::{IommuDmaBackend, IommuDmaStats, SyncRecord};
pub use device::{IommuDevice, DEFAULT_MAX_SEG_SIZE, DEFAULT_SEG_BOUNDARY_MASK};
pub use domain::{DmaDomain, SharedIommu};
pub use prot::dma_info_to_prot;
pub use sg::{SgLayout, SgPiece};

use crate::domain::DomainError;
use dma_api::DmaError;

/// Maps a domain-layer error onto the DMA error taxonomy.
pub(crate) fn dom_err(e: DomainError) -> DmaError {
    match e {
        DomainError::Pt(p) => p.into(),
        DomainError::UnknownDomain(d) => DmaError::IommuDomain {
            domain: d.0,
            reason: "no such domain".into(),
        },
        DomainError::NotTranslating { domain, ty } => DmaError::IommuDomain {
            domain: domain.0,
            reason: format!("{ty:?} domains do not translate"),
        },
        other => DmaError::IommuDomain {
            domain: 0,
            reason: other.to_string(),
        },
    }
}
