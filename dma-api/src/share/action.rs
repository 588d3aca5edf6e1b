//! The exporter's answer to an attach and the negotiated outcome.
//!
//! The protocol first asks the dispatcher where the importer's device would
//! reach each range (a [`RangeVerdict`]). If every range lands on a
//! placement the importer accepts, the answer is [`Action::None`]. If not,
//! the exporter is asked ([`Exporter::answer`](super::Exporter::answer)) and
//! may redirect the importer to RAM it names, migrate the buffer to RAM, or
//! refuse with a reason — Linux's dma-buf can only migrate (clear
//! `peer2peer`) or fail.

use super::caps::ImporterCaps;
use super::caps::Placement;
use super::reason::Reason;
use crate::bdf::Bdf;
use crate::types::{PhysAddr, SegKind};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// What the exporter does about an attach.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Action {
    /// Nothing: the importer maps the buffer where it is (or is refused if
    /// that is no placement it accepts).
    None,
    /// Send the importer to these system-RAM ranges instead (same total
    /// length, in buffer order): the memory really is RAM (an APU's
    /// carve-out), or the exporter keeps a RAM copy for this importer. They
    /// are mapped as coherent RAM, never as MMIO.
    Redirect(Vec<(PhysAddr, u64)>),
    /// Move the buffer to system RAM first (every importer is notified);
    /// the exporter's [`migrate`](super::Exporter::migrate) does the copy.
    Migrate,
    /// Refuse the attach; the reason heads the chain of the typed error.
    Refuse(String),
}

impl Action {
    /// Short name (`none`, `redirect`, `migrate`, `refuse`).
    pub const fn name(&self) -> &'static str {
        match self {
            Action::None => "none",
            Action::Redirect(_) => "redirect",
            Action::Migrate => "migrate",
            Action::Refuse(_) => "refuse",
        }
    }
}

/// Where the importer's device reaches one exported range, as the
/// dispatcher decided (the same decision a map makes).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RangeVerdict {
    /// Start of the range.
    pub phys: PhysAddr,
    /// Its length.
    pub len: u64,
    /// What the memory map says it is.
    pub kind: SegKind,
    /// The placement, or why the device cannot reach it.
    pub placement: Result<Placement, Vec<Reason>>,
}

/// What the exporter is asked when the buffer as it is does not suit the
/// importer.
#[derive(Debug)]
pub struct AttachAsk<'a> {
    /// The importing device.
    pub importer: Bdf,
    /// What it accepts.
    pub caps: &'a ImporterCaps,
    /// The dispatcher's verdict per range.
    pub verdicts: &'a [RangeVerdict],
}

/// The outcome of a successful attach.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Negotiation {
    /// The importing device.
    pub importer: Bdf,
    /// The placement its maps will get (the importer's least preferred
    /// among the ranges').
    pub placement: Placement,
    /// What the exporter did.
    pub action: Action,
    /// The verdicts before the exporter acted.
    pub verdicts: Vec<RangeVerdict>,
    /// Why this outcome, outermost first (empty when the buffer suited the
    /// importer as it was).
    pub reasons: Vec<Reason>,
}

impl fmt::Display for Negotiation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (action: {})",
            self.importer,
            self.placement,
            self.action.name()
        )?;
        for r in &self.reasons {
            write!(f, "; {r}")?;
        }
        Ok(())
    }
}
