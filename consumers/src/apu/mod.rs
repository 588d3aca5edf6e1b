//! An APU whose "VRAM" is a stolen-RAM carve-out of system memory, shown to
//! the PCI world through a small BAR aperture (Christian König's case in the
//! P2P threads). Linux's dma-buf exports such a buffer as MMIO; here the
//! exporter says what the memory really is: importers are redirected to the
//! carve-out pages behind the aperture, mapped as coherent RAM, and no byte
//! touches the aperture.
//!
//! The aperture goes through a GART: aperture page *i* shows carve-out page
//! `gart[i]`, so one object may be several carve-out ranges. The driver's
//! provider policy on the aperture redirects any mapping that lands in one
//! contiguous piece (so even a plain `map_phys` of the aperture is RAM);
//! a shared buffer over several pieces is redirected range by range through
//! the sharing protocol.

mod gart;

pub use gart::Gart;

use dma_api::share::{Action, AttachAsk, Exporter, ExporterCaps, ShareError, SharedBuffer};
use dma_api::{Bdf, DmaContext, DmaError, PhysAddr};
use std::sync::Arc;

/// The APU exporter.
#[derive(Debug)]
pub struct Apu {
    ctx: Arc<DmaContext>,
    bdf: Bdf,
    gart: Arc<Gart>,
}

impl Apu {
    /// Probes the APU at `bdf`: `gart` maps its registered aperture onto its
    /// carve-out; the aperture's provider policy becomes the GART's
    /// redirect.
    pub fn probe(ctx: Arc<DmaContext>, bdf: Bdf, gart: Gart) -> Result<Arc<Self>, DmaError> {
        let gart = Arc::new(gart);
        ctx.set_range_policy(bdf, gart.aperture().0, gart.clone())?;
        Ok(Arc::new(Self { ctx, bdf, gart }))
    }

    /// The GART.
    pub fn gart(&self) -> &Gart {
        &self.gart
    }

    /// Exports `[offset, offset + len)` of the aperture.
    pub fn export(self: &Arc<Self>, offset: u64, len: u64) -> Result<SharedBuffer, ShareError> {
        let at = PhysAddr::new(self.gart.aperture().0.raw() + offset);
        let me: Arc<dyn Exporter> = self.clone();
        SharedBuffer::export(&self.ctx, me, &[(at, len)])
    }
}

impl Exporter for Apu {
    fn device(&self) -> Bdf {
        self.bdf
    }

    fn caps(&self) -> ExporterCaps {
        // The carve-out never moves: pinning is free; there is nothing to
        // migrate to.
        ExporterCaps {
            pin: true,
            migrate: false,
        }
    }

    fn answer(&self, ask: &AttachAsk<'_>) -> Action {
        let mut to = Vec::new();
        for v in ask.verdicts {
            match self.gart.translate(v.phys, v.len) {
                Some(pieces) => to.extend(pieces),
                None => {
                    return Action::Refuse(format!(
                        "{}: [{}, +{:#x}) is not behind the aperture",
                        self.bdf, v.phys, v.len
                    ))
                }
            }
        }
        Action::Redirect(to)
    }
}
