//! The provider's policy: the exporting driver's say over peer access.
//!
//! Linux lets an exporter only refuse (clear `attach->peer2peer`) or migrate.
//! Here the driver that owns a BAR, a stolen-RAM carve-out or device-private
//! memory answers every peer mapping with allow, refuse (with a reason that
//! ends up in the typed error) or redirect to a RAM range it chooses — which
//! is how an APU says "my VRAM is really this system RAM".

use crate::bdf::Bdf;
use crate::direction::Direction;
use crate::types::{PhysAddr, SegKind};
use alloc::string::String;
use alloc::vec::Vec;

/// The provider's answer for one range.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum PolicyDecision {
    /// Map it as asked (peer BAR through the route the oracle chose).
    Allow,
    /// Do not map; the reason is carried into the `Fallback` error.
    Refuse(String),
    /// Map this RAM range instead (same length): the memory really is, or has
    /// been migrated to, system RAM. Mapped as coherent RAM, not MMIO.
    Redirect(PhysAddr),
    /// Map these RAM ranges `(start, length)`, in order, instead: together
    /// they hold the asked range's bytes (their lengths sum to its length)
    /// — a buffer migrated to scattered system pages. A table entry becomes
    /// one DMA segment per range (adjacent ranges merge); the two-step IOVA
    /// API links them at running offsets into one IOVA range; a single
    /// mapping of ranges that are not adjacent has no one DMA address and is
    /// refused with [`DmaError::RedirectScattered`](crate::DmaError). Each
    /// range is held to the rules of [`PolicyDecision::Redirect`].
    RedirectRanges(Vec<(PhysAddr, u64)>),
}

/// Implemented by the driver that owns non-RAM memory.
pub trait ProviderPolicy: Send + Sync {
    /// Decides for `client` mapping `[phys, phys + len)` of kind `kind` in `dir`.
    fn decide(
        &self,
        client: Bdf,
        phys: PhysAddr,
        len: u64,
        kind: SegKind,
        dir: Direction,
    ) -> PolicyDecision;
}

/// The default for peer BARs with no registered policy: allow (the oracle and
/// arch still decide reachability).
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowAll;

impl ProviderPolicy for AllowAll {
    fn decide(&self, _: Bdf, _: PhysAddr, _: u64, _: SegKind, _: Direction) -> PolicyDecision {
        PolicyDecision::Allow
    }
}
