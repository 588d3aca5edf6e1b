//! The P2P oracle: can `client` DMA to `provider`'s BAR, and how?
//!
//! Linux-exact core (drivers/pci/p2pdma.c `calc_map_type_and_dist`,
//! `pci_p2pdma_distance_many`, `host_bridge_whitelist`,
//! `cpu_supports_p2pdma`), plus our extensions: per-access verdicts
//! (host bridges may forward P2P writes but not reads), a reason chain for
//! every verdict, and a route cache keyed by the topology generation.
//!
//! A second oracle, [`hardware`], answers what PCIe routing does per access
//! (ACS applied at each request's ingress port); [`Oracle`] picks one.

pub mod allowlist;
pub mod cache;
pub mod hardware;
pub mod mode;
pub mod oracle;
pub mod provider;
pub mod reason;

pub use crate::access::Access;
pub use cache::RouteCache;
pub use hardware::{hardware_route, AccessRoute, HardwareRoute};
pub use mode::{Judgement, Oracle};
pub use oracle::{
    calc_map_type_and_dist, distance_many, host_bridge_verdict, DistanceError, HostBridgeVerdict,
};
pub use provider::{P2pAlloc, P2pMemError, P2pMemRegistry, P2pMemStats};
pub use reason::Reason;

use crate::bdf::Bdf;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// drivers/pci/p2pdma.c `enum pci_p2pdma_map_type` (the values a query can
/// return; `UNKNOWN` and `NONE` are not verdicts).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MapType {
    /// Through a switch: program the bus address, no IOMMU mapping.
    BusAddr,
    /// Through an allowed host bridge: map normally, as MMIO.
    ThruHostBridge,
    /// Not reachable: fall back to system memory.
    NotSupported,
}

impl MapType {
    /// Stable name for text and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            MapType::BusAddr => "bus_addr",
            MapType::ThruHostBridge => "thru_host_bridge",
            MapType::NotSupported => "not_supported",
        }
    }
}

impl fmt::Display for MapType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The cacheable part of a route: map type, distance and per-access verdicts.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Verdict {
    /// Linux's map type.
    pub map_type: MapType,
    /// Linux's distance (hops through the nearest common upstream bridge, or
    /// the two chain lengths when there is none).
    pub distance: u32,
    /// The client may read the provider's memory P2P.
    pub read: bool,
    /// The client may write the provider's memory P2P.
    pub write: bool,
}

impl Verdict {
    /// True if `access` is allowed.
    #[inline]
    pub const fn allows(&self, access: Access) -> bool {
        match access {
            Access::Read => self.read,
            Access::Write => self.write,
        }
    }

    /// True if the client may do every access asked for: reads when `reads`,
    /// writes when `writes` (`dma_api::Direction` says which a mapping needs).
    #[inline]
    pub const fn permits(&self, reads: bool, writes: bool) -> bool {
        (!reads || self.read) && (!writes || self.write)
    }
}

/// A full verdict with its explanation.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Route {
    /// Provider (owner of the memory).
    pub provider: Bdf,
    /// Client (the DMA master).
    pub client: Bdf,
    /// Map type, distance and access verdicts.
    pub verdict: Verdict,
    /// Why, outermost first.
    pub reasons: Vec<Reason>,
}

impl Route {
    /// The `pci=disable_acs_redir=` value drivers/pci/p2pdma.c
    /// `calc_map_type_and_dist` prints in its verbose warning: the
    /// redirecting functions in the order the kernel finds them (provider
    /// side up to and including the common upstream bridge, then the client
    /// side below it), as `pci_name` strings joined by `;`. `None` when no
    /// ACS redirect is in the way (the kernel prints nothing).
    pub fn disable_acs_redir_param(&self) -> Option<String> {
        let list: Vec<String> = self
            .reasons
            .iter()
            .filter_map(|r| match r {
                Reason::AcsRedirect { bridge, .. } => Some(bridge.to_string()),
                _ => None,
            })
            .collect();
        (!list.is_empty()).then(|| list.join(";"))
    }
}
