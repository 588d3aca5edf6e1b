//! A domain's DMA context for a device assigned to it: the domain's pages
//! are translated to host physical by the second stage, then mapped through
//! the device's own [`DmaDevice`] — the memory map classifies the host
//! pages and the dispatcher decides, as for every mapping (Linux:
//! drivers/xen/swiotlb-xen.c `xen_swiotlb_map_page` with `xen_phys_to_dma`).

use super::error::GrantError;
use super::grant::GrantOps;
use super::ids::{DomId, GuestAddr};
use crate::attrs::DmaAttrs;
use crate::device::DmaDevice;
use crate::direction::Direction;
use crate::types::{DmaAddr, PhysAddr, PAGE_SIZE};
use alloc::sync::Arc;
use alloc::vec::Vec;
use scatterlist::SgTable;

/// The DMA context of one device in one domain.
pub struct DomainDma {
    dom: DomId,
    ops: Arc<dyn GrantOps>,
    dev: Arc<DmaDevice>,
}

impl core::fmt::Debug for DomainDma {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DomainDma")
            .field("dom", &self.dom)
            .field("dev", &self.dev.bdf())
            .finish()
    }
}

/// A live mapping of domain pages for the device.
#[derive(Debug)]
pub struct DomainMapping {
    dev: Arc<DmaDevice>,
    table: SgTable,
    dir: Direction,
    live: bool,
}

impl DomainMapping {
    /// The DMA segments (address, length) in order.
    pub fn segments(&self) -> Vec<(DmaAddr, u64)> {
        self.table
            .dma_iter()
            .map(|e| (e.dma_address(), u64::from(e.dma_len())))
            .collect()
    }

    /// Unmaps.
    pub fn unmap(mut self) -> Result<(), GrantError> {
        self.live = false;
        Ok(self
            .dev
            .unmap_sgtable(&mut self.table, self.dir, DmaAttrs::empty())?)
    }
}

impl Drop for DomainMapping {
    fn drop(&mut self) {
        if core::mem::replace(&mut self.live, false) {
            if let Err(e) = self
                .dev
                .unmap_sgtable(&mut self.table, self.dir, DmaAttrs::empty())
            {
                self.dev.context().report_drop_error(e);
            }
        }
    }
}

impl DomainDma {
    /// The context of `dev`, assigned to `dom`.
    pub fn new(dom: DomId, ops: Arc<dyn GrantOps>, dev: Arc<DmaDevice>) -> Self {
        Self { dom, ops, dev }
    }

    /// The domain.
    pub fn domain(&self) -> DomId {
        self.dom
    }

    /// Maps the domain's `pages` (page-aligned guest addresses, in buffer
    /// order) for the device: host-contiguous runs become one entry.
    pub fn map_pages(
        &self,
        pages: &[GuestAddr],
        dir: Direction,
    ) -> Result<DomainMapping, GrantError> {
        if pages.is_empty() {
            return Err(GrantError::Empty);
        }
        let mut runs: Vec<(PhysAddr, u64)> = Vec::new();
        for &p in pages {
            let h = self.ops.to_host(self.dom, p)?;
            match runs.last_mut() {
                Some((s, n)) if s.raw() + *n == h.raw() => *n += PAGE_SIZE,
                _ => runs.push((h, PAGE_SIZE)),
            }
        }
        let mut table = self.dev.table_from_ranges(&runs, u64::from(u32::MAX))?;
        self.dev.map_sgtable(&mut table, dir, DmaAttrs::empty())?;
        Ok(DomainMapping {
            dev: self.dev.clone(),
            table,
            dir,
            live: true,
        })
    }
}
