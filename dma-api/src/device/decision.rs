//! The explanation of one segment's mapping: every step the dispatcher took.
//! `unidma map` prints it.

use crate::bdf::Bdf;
use crate::direction::Direction;
use crate::error::DmaError;
use crate::p2p::MapType;
use crate::port::{Bounce, PolicyDecision, SegTarget};
use crate::types::{DmaAddr, PhysAddr, SegKind};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// What the P2P oracle said.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RouteStep {
    /// Owner of the memory.
    pub provider: Bdf,
    /// Linux map type.
    pub map_type: MapType,
    /// Linux distance.
    pub distance: u32,
    /// Client reads allowed.
    pub read: bool,
    /// Client writes allowed.
    pub write: bool,
    /// The oracle's reason chain, outermost first.
    pub reasons: Vec<String>,
}

/// What the arch said about a peer route.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ArchStep {
    /// The arch carries the route.
    Allowed {
        /// The arch.
        arch: &'static str,
    },
    /// The arch vetoed it.
    Vetoed {
        /// The arch.
        arch: &'static str,
        /// Why.
        why: &'static str,
    },
}

/// One segment's decision trace.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Decision {
    /// The client device.
    pub client: Bdf,
    /// Physical start asked for.
    pub phys: PhysAddr,
    /// Length.
    pub len: u64,
    /// Direction.
    pub dir: Direction,
    /// The memory's kind (from the segment or the memory map).
    pub kind: SegKind,
    /// The provider policy's answer, if one was asked.
    pub policy: Option<PolicyDecision>,
    /// The oracle's verdict, for peer memory that got that far.
    pub route: Option<RouteStep>,
    /// The arch step, for peer routes.
    pub arch: Option<ArchStep>,
    /// The effective physical address and target handed to the backend.
    pub target: Option<(PhysAddr, SegTarget)>,
    /// The backend that mapped it.
    pub backend: String,
    /// The DMA address the backend produced.
    pub dma: Option<DmaAddr>,
    /// The swiotlb slot the mapping bounced through, if it did
    /// ([`DmaBackend::bounce_of`](crate::port::DmaBackend::bounce_of)
    /// asked while it was mapped).
    pub bounce: Option<Bounce>,
    /// The error, if the mapping failed.
    pub error: Option<DmaError>,
}

impl Decision {
    pub(crate) fn new(
        client: Bdf,
        phys: PhysAddr,
        len: u64,
        dir: Direction,
        kind: SegKind,
    ) -> Self {
        Self {
            client,
            phys,
            len,
            dir,
            kind,
            policy: None,
            route: None,
            arch: None,
            target: None,
            backend: String::new(),
            dma: None,
            bounce: None,
            error: None,
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "map {} + {:#x} {} for {}",
            self.phys, self.len, self.dir, self.client
        )?;
        writeln!(f, "  kind:    {}", self.kind)?;
        if let Some(p) = &self.policy {
            let s = match p {
                PolicyDecision::Allow => "allow".to_string(),
                PolicyDecision::Refuse(r) => format!("refuse ({r})"),
                PolicyDecision::Redirect(to) => format!("redirect to RAM at {to}"),
                PolicyDecision::RedirectRanges(r) => {
                    let parts: Vec<String> =
                        r.iter().map(|(p, l)| format!("{p} + {l:#x}")).collect();
                    format!("redirect to RAM at {}", parts.join(", "))
                }
            };
            writeln!(f, "  policy:  {s}")?;
        }
        if let Some(r) = &self.route {
            writeln!(
                f,
                "  route:   {} -> {}: {} distance {} (read {}, write {})",
                r.provider,
                self.client,
                r.map_type,
                r.distance,
                if r.read { "yes" } else { "no" },
                if r.write { "yes" } else { "no" }
            )?;
            for why in &r.reasons {
                writeln!(f, "           - {why}")?;
            }
        }
        match &self.arch {
            Some(ArchStep::Allowed { arch }) => writeln!(f, "  arch:    {arch} carries it")?,
            Some(ArchStep::Vetoed { arch, why }) => writeln!(f, "  arch:    {arch} vetoes: {why}")?,
            None => {}
        }
        if let Some((phys, t)) = &self.target {
            let t = match t {
                SegTarget::Ram => "RAM".to_string(),
                SegTarget::PeerHostBridge => "peer MMIO through the host bridge".to_string(),
                SegTarget::PeerBus(b) => format!("peer bus address {b} (BUS_ADDRESS)"),
            };
            writeln!(f, "  target:  {t} at {phys}")?;
        }
        if !self.backend.is_empty() {
            writeln!(f, "  backend: {}", self.backend)?;
        }
        if let Some(b) = self.bounce {
            writeln!(
                f,
                "  swiotlb: bounced through the slot at {}: {}",
                b.slot, b.cause
            )?;
        }
        match (&self.dma, &self.error) {
            (_, Some(e)) => write!(f, "  result:  error {e}"),
            (Some(d), None) => write!(f, "  result:  DMA address {d}"),
            (None, None) => write!(f, "  result:  (not mapped)"),
        }
    }
}
