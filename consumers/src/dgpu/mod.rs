//! A discrete GPU exporting VRAM objects whose CPU-visible BAR window is
//! smaller than its VRAM (resizable BAR off): the driver registered only the
//! window as p2pmem, so an object outside it cannot be reached by peers at
//! all, and an object inside it may still be unreachable for a given
//! importer (ACS redirect to a host bridge that does not forward reads).
//!
//! The exporter's answer (Linux amdgpu's `amdgpu_dma_buf_attach` clearing
//! `peer2peer`, then TTM moving the BO to GTT): migrate the object to system
//! RAM when the importer accepts RAM and migration is enabled, else refuse
//! with the reason (outside the window, or the verdict's own chain).

mod migrate;

use dma_api::share::{
    Action, AttachAsk, ExportRange, Exporter, ExporterCaps, Placement, ShareError, SharedBuffer,
};
use dma_api::{Bdf, DmaContext, PhysAddr};
use std::sync::{Arc, Mutex};

/// The GPU's VRAM layout as its driver knows it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct VramLayout {
    /// CPU address of VRAM offset 0 (the BAR's start).
    pub bar: PhysAddr,
    /// Bytes of VRAM behind the BAR.
    pub vram: u64,
    /// Bytes of the CPU-visible window (registered as p2pmem).
    pub window: u64,
}

/// The dGPU exporter.
pub struct DGpu {
    ctx: Arc<DmaContext>,
    bdf: Bdf,
    layout: VramLayout,
    migrate: bool,
    /// RAM copies made by migrations (freed with the driver).
    copies: Mutex<Vec<PhysAddr>>,
}

impl core::fmt::Debug for DGpu {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DGpu")
            .field("bdf", &self.bdf)
            .field("layout", &self.layout)
            .field("migrate", &self.migrate)
            .finish()
    }
}

impl DGpu {
    /// The driver of `bdf` with `layout`; `migrate` enables moving objects
    /// to system RAM for importers that cannot reach VRAM.
    pub fn new(ctx: Arc<DmaContext>, bdf: Bdf, layout: VramLayout, migrate: bool) -> Arc<Self> {
        Arc::new(Self {
            ctx,
            bdf,
            layout,
            migrate,
            copies: Mutex::new(Vec::new()),
        })
    }

    /// The layout.
    pub fn layout(&self) -> VramLayout {
        self.layout
    }

    /// The CPU address of VRAM `offset`.
    pub fn vram_addr(&self, offset: u64) -> PhysAddr {
        PhysAddr::new(self.layout.bar.raw() + offset)
    }

    /// Exports the VRAM object `[offset, offset + len)`.
    pub fn export(self: &Arc<Self>, offset: u64, len: u64) -> Result<SharedBuffer, ShareError> {
        let me: Arc<dyn Exporter> = self.clone();
        SharedBuffer::export(&self.ctx, me, &[(self.vram_addr(offset), len)])
    }

    fn outside_window(&self, r: &ExportRange) -> Option<u64> {
        let off = r.phys.raw().checked_sub(self.layout.bar.raw())?;
        (off.saturating_add(r.len) > self.layout.window).then_some(off)
    }
}

impl Drop for DGpu {
    fn drop(&mut self) {
        let copies = std::mem::take(&mut *self.copies.lock().unwrap_or_else(|e| e.into_inner()));
        for c in copies {
            if let Err(e) = self.ctx.free_ram(c) {
                self.ctx.report_drop_error(e);
            }
        }
    }
}

impl Exporter for DGpu {
    fn device(&self) -> Bdf {
        self.bdf
    }

    fn caps(&self) -> ExporterCaps {
        ExporterCaps {
            pin: true,
            migrate: self.migrate,
        }
    }

    fn answer(&self, ask: &AttachAsk<'_>) -> Action {
        if self.migrate && ask.caps.accepts(Placement::SystemRam) {
            return Action::Migrate;
        }
        let window = self.layout.window >> 20;
        for v in ask.verdicts {
            let r = ExportRange {
                phys: v.phys,
                len: v.len,
                kind: v.kind,
            };
            if let Some(off) = self.outside_window(&r) {
                return Action::Refuse(format!(
                    "{}: object at VRAM offset {off:#x} (+{:#x}) lies outside the {window} MiB CPU-visible BAR window and migration is {}",
                    self.bdf,
                    v.len,
                    if self.migrate { "not accepted by the importer" } else { "disabled" }
                ));
            }
        }
        Action::Refuse(format!(
            "{}: VRAM is not reachable by {} as it accepts it and migration is {}",
            self.bdf,
            ask.importer,
            if self.migrate {
                "not accepted by the importer"
            } else {
                "disabled"
            }
        ))
    }

    fn migrate(&self, ranges: &[ExportRange]) -> Result<Vec<(PhysAddr, u64)>, ShareError> {
        let copies = migrate::to_ram(&self.ctx, ranges)?;
        self.copies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(copies.iter().map(|c| c.0));
        Ok(copies)
    }
}
