//! A system-RAM exporter (Linux memfd + udmabuf): pages from the context's
//! RAM pool shared as a buffer. Every importer maps them as RAM; they can be
//! pinned (sealed memfd pages do not move) and are never migrated.

use dma_api::share::{Exporter, ExporterCaps, ShareError, SharedBuffer};
use dma_api::{Bdf, DmaContext, PhysAddr};
use std::sync::Arc;

/// The exporter; `bdf` is the function it exports on behalf of (udmabuf's
/// misc device has no PCI function of its own: the host bridge stands in).
#[derive(Debug)]
pub struct SysRamExporter {
    ctx: Arc<DmaContext>,
    bdf: Bdf,
    pages: Vec<PhysAddr>,
}

impl SysRamExporter {
    /// Allocates `pages` zeroed pages of `page` bytes each (not contiguous
    /// in general: one allocation per page, like memfd folios).
    pub fn new(
        ctx: Arc<DmaContext>,
        bdf: Bdf,
        pages: usize,
        page: u64,
    ) -> Result<Arc<Self>, ShareError> {
        let mut got = Vec::with_capacity(pages);
        for _ in 0..pages {
            match ctx.alloc_ram(page) {
                Ok(p) => got.push(p),
                Err(e) => {
                    for p in got {
                        if let Err(f) = ctx.free_ram(p) {
                            ctx.report_drop_error(f);
                        }
                    }
                    return Err(e.into());
                }
            }
        }
        Ok(Arc::new(Self {
            ctx,
            bdf,
            pages: got,
        }))
    }

    /// The pages.
    pub fn pages(&self) -> &[PhysAddr] {
        &self.pages
    }

    /// Exports the pages as one buffer of `page`-byte ranges.
    pub fn export(self: &Arc<Self>, page: u64) -> Result<SharedBuffer, ShareError> {
        let ranges: Vec<(PhysAddr, u64)> = self.pages.iter().map(|&p| (p, page)).collect();
        let me: Arc<dyn Exporter> = self.clone();
        SharedBuffer::export(&self.ctx, me, &ranges)
    }
}

impl Drop for SysRamExporter {
    fn drop(&mut self) {
        for &p in &self.pages {
            if let Err(e) = self.ctx.free_ram(p) {
                self.ctx.report_drop_error(e);
            }
        }
    }
}

impl Exporter for SysRamExporter {
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
