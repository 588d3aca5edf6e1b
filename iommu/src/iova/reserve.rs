//! Reservations a DMA domain makes before its first allocation.
//!
//! drivers/iommu/dma-iommu.c `iova_reserve_iommu_regions` reserves the
//! IOMMU's reserved regions (on x86 the MSI doorbell window) and, for PCI
//! devices, `iova_reserve_pci_windows` reserves the host bridge's MMIO windows
//! (an IOVA there would be claimed by a peer BAR instead of reaching the
//! IOMMU) and every gap between the bridge's `dma-ranges` (addresses the
//! bridge does not forward upstream).

use super::alloc::vec::Vec;
use super::domain::IovaDomain;
use dma_api::{DmaError, Iova, WindowMap};

/// First address of the x86 interrupt (MSI) window, `0xfee00000`.
pub const X86_MSI_WINDOW_FIRST: Iova = Iova::new(0xfee0_0000);
/// Last address of the x86 interrupt (MSI) window, `0xfeefffff`.
pub const X86_MSI_WINDOW_LAST: Iova = Iova::new(0xfeef_ffff);

impl IovaDomain {
    /// Reserves the x86 MSI window `0xfee00000..=0xfeefffff`, which VT-d and
    /// AMD-Vi report as an `IOMMU_RESV_MSI` region: DMA writes there are
    /// interrupt messages, never memory.
    pub fn reserve_x86_msi_window(&mut self) -> Result<(), DmaError> {
        self.reserve(X86_MSI_WINDOW_FIRST, X86_MSI_WINDOW_LAST)
    }

    /// Reserves the bus side of every window in `bridge_windows` (a host
    /// bridge's MMIO windows: `res->start - offset ..= res->end - offset`).
    pub fn reserve_bus_windows(&mut self, bridge_windows: &WindowMap) -> Result<(), DmaError> {
        for w in bridge_windows.windows() {
            // A valid WindowMap never wraps, so `last_of` succeeds.
            if let Some(last) = w.bus_start.last_of(w.size) {
                self.reserve(Iova::new(w.bus_start.raw()), Iova::new(last.raw()))?;
            }
        }
        Ok(())
    }

    /// Reserves every bus address *outside* the windows of `dma_ranges` (a host
    /// bridge's inbound `dma-ranges`): below the first window, between
    /// windows, and above the last one. An empty map reserves nothing.
    ///
    /// Matches Linux exactly, including that each gap is reserved up to and
    /// including the granule that holds the next window's first address
    /// (`reserve_iova(iova_pfn(start), iova_pfn(end))` with `end` the next
    /// window's start), so that granule is never allocated either.
    pub fn reserve_dma_ranges_gaps(&mut self, dma_ranges: &WindowMap) -> Result<(), DmaError> {
        let mut windows: Vec<_> = dma_ranges.windows().to_vec();
        windows.sort_by_key(|w| w.bus_start);
        let mut start: Option<u64> = Some(0);
        for w in &windows {
            let end = w.bus_start.raw();
            if let Some(s) = start {
                if end > s {
                    self.reserve(Iova::new(s), Iova::new(end))?;
                }
            }
            start = w
                .bus_start
                .last_of(w.size)
                .and_then(|l| l.raw().checked_add(1));
        }
        if let (Some(s), false) = (start, windows.is_empty()) {
            if u64::MAX > s {
                self.reserve(Iova::new(s), Iova::MAX)?;
            }
        }
        Ok(())
    }
}
