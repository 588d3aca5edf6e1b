//! The per-device parameters the IOMMU DMA path needs.

use crate::domain::GroupId;
use dma_api::{Bdf, DmaMask};

/// A PCI device's default segment boundary: 4 GiB, set by `pci_device_add`
/// (drivers/pci/probe.c). (`dma_get_seg_boundary` without `dma_parms` is
/// `ULONG_MAX` since Linux 5.10.) Same value as
/// `dma_api::device::DEFAULT_SEG_BOUNDARY_MASK`.
pub const DEFAULT_SEG_BOUNDARY_MASK: u64 = dma_api::device::DEFAULT_SEG_BOUNDARY_MASK;

/// Linux's default maximum DMA segment size: 64 KiB (`dma_get_max_seg_size`
/// without `dma_parms`, and what `pci_device_add` sets).
pub const DEFAULT_MAX_SEG_SIZE: u64 = dma_api::device::DEFAULT_MAX_SEG_SIZE as u64;

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
    /// The device's DMA mask at construction (caps the IOVA; the device's
    /// `set_dma_mask` changes it later, and the coherent mask starts equal).
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
