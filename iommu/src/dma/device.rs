//! The per-device parameters the IOMMU DMA path needs.

use crate::domain::GroupId;
use dma_api::{Bdf, DmaMask};

/// Linux's default segment boundary (`dma_get_seg_boundary` without
/// `dma_parms`): 4 GiB.
pub const DEFAULT_SEG_BOUNDARY_MASK: u64 = 0xffff_ffff;

/// Linux's default maximum DMA segment size (`dma_get_max_seg_size` without
/// `dma_parms`): 64 KiB.
pub const DEFAULT_MAX_SEG_SIZE: u64 = 0x1_0000;

/// One device behind the IOMMU, as the DMA layer sees it.
///
/// Untrusted devices (external-facing ports) always get strict invalidation.
/// Like Linux, their RAM buffers that do not fill whole granules are bounced
/// through swiotlb when the backend has a pool
/// ([`IommuDmaBackend::with_swiotlb`](super::IommuDmaBackend::with_swiotlb)),
/// so the device cannot reach the rest of the granule. Without a pool RAM
/// ranges are mapped in whole granules (Linux with `CONFIG_SWIOTLB=n`). MMIO
/// and `REQUIRE_COHERENT` ranges that would need the bounce fail as Linux
/// fails them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IommuDevice {
    /// The requester.
    pub bdf: Bdf,
    /// Its IOMMU group.
    pub group: GroupId,
    /// False for external-facing (untrusted) devices.
    pub trusted: bool,
    /// Cache-coherent DMA (`dev_is_dma_coherent`).
    pub coherent: bool,
    /// A PCI device (gets the 32-bit-first IOVA policy).
    pub is_pci: bool,
    /// `iommu.forcedac=1`: no 32-bit-first attempt.
    pub forcedac: bool,
    /// The device's DMA mask (caps the IOVA).
    pub dma_mask: DmaMask,
    /// `dma_get_seg_boundary`: a DMA segment never crosses a multiple of
    /// `mask + 1`. Must be `2^n - 1`.
    pub seg_boundary_mask: u64,
    /// `dma_get_max_seg_size`: concatenated DMA segments stay within this.
    pub max_seg_size: u64,
}

impl IommuDevice {
    /// A trusted, coherent PCI device with a 64-bit mask and Linux's default
    /// segment parameters.
    pub const fn pci(bdf: Bdf, group: GroupId) -> Self {
        Self {
            bdf,
            group,
            trusted: true,
            coherent: true,
            is_pci: true,
            forcedac: false,
            dma_mask: DmaMask::of::<64>(),
            seg_boundary_mask: DEFAULT_SEG_BOUNDARY_MASK,
            max_seg_size: DEFAULT_MAX_SEG_SIZE,
        }
    }
}
