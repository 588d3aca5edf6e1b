//! A udmabuf-like exporter (Linux drivers/dma-buf/udmabuf.c, and
//! drivers/xen/gntdev-dmabuf.c's export of mapped grants): a set of RAM
//! pages someone else owns — memfd pages, or another domain's pages mapped
//! through grants — turned into a buffer of the sharing protocol. Every page
//! must be system RAM in the memory map; the pages stay where they are
//! (pinnable, never migrated), and whatever keeps them alive (the grant
//! mappings of a [`crate::xen_zcopy::ZcopyImport`]) is held as long as the
//! exporter lives.

use dma_api::share::{Exporter, ExporterCaps, ShareError, SharedBuffer};
use dma_api::{Bdf, DmaContext, PhysAddr, SegKind, PAGE_SIZE};
use std::any::Any;
use std::sync::Arc;

/// The exporter.
pub struct Udmabuf {
    ctx: Arc<DmaContext>,
    bdf: Bdf,
    pages: Vec<PhysAddr>,
    _keep: Option<Box<dyn Any + Send + Sync>>,
}

impl core::fmt::Debug for Udmabuf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Udmabuf")
            .field("bdf", &self.bdf)
            .field("pages", &self.pages.len())
            .finish()
    }
}

impl Udmabuf {
    /// An exporter of `pages` (page-aligned RAM, in buffer order) on behalf
    /// of `bdf`; `keep` is dropped with the exporter. A page that is not
    /// system RAM is [`ShareError::NotExportable`] naming it and its kind.
    pub fn new(
        ctx: Arc<DmaContext>,
        bdf: Bdf,
        pages: Vec<PhysAddr>,
        keep: Option<Box<dyn Any + Send + Sync>>,
    ) -> Result<Arc<Self>, ShareError> {
        if pages.is_empty() {
            return Err(ShareError::EmptyExport);
        }
        {
            let map = ctx.memmap.read();
            for (index, &p) in pages.iter().enumerate() {
                if !p.is_aligned(PAGE_SIZE) {
                    return Err(ShareError::Unaligned {
                        index,
                        phys: p,
                        len: PAGE_SIZE,
                    });
                }
                match map.kind_of_range(p, PAGE_SIZE) {
                    Some((_, SegKind::Ram)) => {}
                    Some((_, kind)) => {
                        return Err(ShareError::NotExportable {
                            index,
                            phys: p,
                            len: PAGE_SIZE,
                            kind,
                        })
                    }
                    None => {
                        return Err(ShareError::UnknownMemory {
                            index,
                            phys: p,
                            len: PAGE_SIZE,
                        })
                    }
                }
            }
        }
        Ok(Arc::new(Self {
            ctx,
            bdf,
            pages,
            _keep: keep,
        }))
    }

    /// The pages.
    pub fn pages(&self) -> &[PhysAddr] {
        &self.pages
    }

    /// Exports the pages as one buffer; physically contiguous pages become
    /// one range.
    pub fn export(self: &Arc<Self>) -> Result<SharedBuffer, ShareError> {
        let mut ranges: Vec<(PhysAddr, u64)> = Vec::new();
        for &p in &self.pages {
            match ranges.last_mut() {
                Some((s, n)) if s.raw() + *n == p.raw() => *n += PAGE_SIZE,
                _ => ranges.push((p, PAGE_SIZE)),
            }
        }
        let me: Arc<dyn Exporter> = self.clone();
        SharedBuffer::export(&self.ctx, me, &ranges)
    }
}

impl Exporter for Udmabuf {
    fn device(&self) -> Bdf {
        self.bdf
    }

    fn caps(&self) -> ExporterCaps {
        ExporterCaps {
            pin: true,
            migrate: false,
        }
    }
}
