//! The APU's aperture remapping table and the provider policy it implies.

use dma_api::port::{PolicyDecision, ProviderPolicy};
use dma_api::{Bdf, Direction, PhysAddr, SegKind};

/// The page size of the GART.
pub const GART_PAGE: u64 = 4096;

/// Aperture page *i* shows carve-out page `pages[i]`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Gart {
    aperture: PhysAddr,
    carve: PhysAddr,
    pages: Vec<u64>,
}

impl Gart {
    /// The identity GART over `pages` pages.
    pub fn identity(aperture: PhysAddr, carve: PhysAddr, pages: u64) -> Self {
        Self::new(aperture, carve, (0..pages).collect())
    }

    /// A GART with an explicit page table.
    pub fn new(aperture: PhysAddr, carve: PhysAddr, pages: Vec<u64>) -> Self {
        Self {
            aperture,
            carve,
            pages,
        }
    }

    /// The aperture: start and size.
    pub fn aperture(&self) -> (PhysAddr, u64) {
        (self.aperture, self.pages.len() as u64 * GART_PAGE)
    }

    /// The carve-out ranges behind `[phys, phys + len)` of the aperture, in
    /// order, contiguous pages merged; `None` outside the aperture.
    pub fn translate(&self, phys: PhysAddr, len: u64) -> Option<Vec<(PhysAddr, u64)>> {
        let off = phys.raw().checked_sub(self.aperture.raw())?;
        let end = off.checked_add(len)?;
        if len == 0 || end > self.aperture().1 {
            return None;
        }
        let mut out: Vec<(PhysAddr, u64)> = Vec::new();
        let mut at = off;
        while at < end {
            let page = at / GART_PAGE;
            let take = (GART_PAGE - at % GART_PAGE).min(end - at);
            let to = self.carve.raw() + self.pages[page as usize] * GART_PAGE + at % GART_PAGE;
            match out.last_mut() {
                Some((p, l)) if p.raw() + *l == to => *l += take,
                _ => out.push((PhysAddr::new(to), take)),
            }
            at += take;
        }
        Some(out)
    }
}

impl ProviderPolicy for Gart {
    /// The carve-out pieces behind the mapping: one is a plain redirect,
    /// several a redirect to ranges (each mapped as RAM; the dispatcher
    /// gives a table one segment per piece and links them at running IOVA
    /// offsets).
    fn decide(&self, _: Bdf, phys: PhysAddr, len: u64, _: SegKind, _: Direction) -> PolicyDecision {
        match self.translate(phys, len) {
            Some(p) if p.len() == 1 => PolicyDecision::Redirect(p[0].0),
            Some(p) => PolicyDecision::RedirectRanges(p),
            None => PolicyDecision::Refuse(format!("[{phys}, +{len:#x}) is outside the aperture")),
        }
    }
}
