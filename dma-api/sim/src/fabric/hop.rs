//! The path a TLP takes, as a printable list of hops.
//!
//! Nodes are PCI functions (ports and endpoints), host bridges (the PCIe side
//! of the root complex: root ports attach there, the IOMMU translates there,
//! peer traffic between root ports turns there), the root complex's system
//! interconnect (between host bridges and to memory) and RAM. A link joins a
//! lower node to an upper node; "up" is towards RAM.

use dma_pci::bdf::Bdf;
use dma_pci::topology::{Acs, HostBridgeId};
use dma_pci::types::{DmaAddr, PhysAddr};
use std::fmt;

/// A place a TLP passes through.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Node {
    /// A PCI function (endpoint, port, bridge).
    Device(Bdf),
    /// A host bridge: root ports below, the root complex interconnect above.
    HostBridge(HostBridgeId),
    /// The root complex's system interconnect (memory controller side).
    RootComplex,
    /// System RAM.
    Ram,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Device(b) => write!(f, "{b}"),
            Node::HostBridge(h) => write!(f, "hb#{}", h.index()),
            Node::RootComplex => f.write_str("root-complex"),
            Node::Ram => f.write_str("ram"),
        }
    }
}

/// A link, named by its two ends (`lower` is further from RAM).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct LinkId {
    /// The end further from RAM (the child).
    pub lower: Node,
    /// The end nearer RAM (the parent).
    pub upper: Node,
}

impl LinkId {
    /// The link between `lower` and `upper`.
    pub const fn new(lower: Node, upper: Node) -> Self {
        Self { lower, upper }
    }
}

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}<->{}", self.lower, self.upper)
    }
}

/// Direction a TLP crosses a link.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Dir {
    /// From `lower` to `upper` (towards RAM).
    Up,
    /// From `upper` to `lower`.
    Down,
}

impl Dir {
    /// The opposite direction (a read's completion data flows back).
    pub const fn reverse(self) -> Self {
        match self {
            Dir::Up => Dir::Down,
            Dir::Down => Dir::Up,
        }
    }
}

/// How the root complex turned the DMA address into a physical address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Translation {
    /// The IOMMU translated it (the requester's domain).
    Iommu,
    /// An MMIO window of the host bridge (bus → CPU, a peer BAR).
    MmioWindow,
    /// The host bridge's dma-ranges (bus → CPU, RAM).
    DmaRanges,
}

impl fmt::Display for Translation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Translation::Iommu => "IOMMU",
            Translation::MmioWindow => "MMIO window",
            Translation::DmaRanges => "dma-ranges",
        })
    }
}

/// Where the bytes of a TLP end up.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Target {
    /// System RAM (including stolen RAM) at a physical address.
    Ram {
        /// CPU physical address.
        phys: PhysAddr,
    },
    /// A memory BAR.
    Bar {
        /// The BAR's owner.
        device: Bdf,
        /// BAR index.
        bar: u8,
        /// CPU physical address of the first byte (the backing key).
        phys: PhysAddr,
    },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Ram { phys } => write!(f, "RAM at {phys}"),
            Target::Bar { device, bar, phys } => {
                write!(f, "BAR{bar} of {device} (phys {phys})")
            }
        }
    }
}

/// One step of a TLP's route.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Hop {
    /// The TLP crosses a link (its payload is counted on it).
    Link {
        /// The link.
        link: LinkId,
        /// Which way.
        dir: Dir,
    },
    /// Delivered inside one device without using a link: to the requester's
    /// own BAR (`from == to`) or between functions of one multi-function
    /// device.
    Internal {
        /// The requesting function (or the one on the requester's side).
        from: Bdf,
        /// The function holding the target.
        to: Bdf,
    },
    /// ACS P2P Request Redirect on the ingress port sent a peer request
    /// upstream instead of across.
    AcsRedirect {
        /// The port (or function) doing the redirect.
        port: Bdf,
        /// Its redirect bits that are set.
        bits: Acs,
    },
    /// A redirected request passed a port whose downstream side holds the
    /// target: ACS Upstream Forwarding sent it further up.
    UpstreamForward {
        /// The port.
        port: Bdf,
    },
    /// The root complex translated the address.
    Translate {
        /// The host bridge that received the request.
        at: dma_pci::topology::HostBridgeId,
        /// How.
        by: Translation,
        /// The address as emitted by the device.
        from: DmaAddr,
        /// The physical address.
        to: PhysAddr,
    },
    /// The bytes are written to / read from here.
    Deliver(Target),
    /// The hops after this mark are the path a read's completion (its data)
    /// takes back to the requester, in their real direction; without the
    /// mark, completions retrace the request path.
    Completion,
}

impl fmt::Display for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hop::Link { link, dir: Dir::Up } => write!(f, "{} -> {}", link.lower, link.upper),
            Hop::Link {
                link,
                dir: Dir::Down,
            } => write!(f, "{} -> {}", link.upper, link.lower),
            Hop::Internal { from, to } if from == to => {
                write!(f, "{from}: handled inside the function")
            }
            Hop::Internal { from, to } => write!(f, "{from} -> {to} inside the device"),
            Hop::AcsRedirect { port, bits } => {
                write!(f, "ACS {bits} on {port}: redirected upstream")
            }
            Hop::UpstreamForward { port } => {
                write!(f, "ACS UF on {port}: forwarded upstream")
            }
            Hop::Translate { at, by, from, to } => {
                write!(f, "{by} at hb#{}: {from} -> phys {to}", at.index())
            }
            Hop::Deliver(t) => write!(f, "deliver to {t}"),
            Hop::Completion => f.write_str("read completion returns:"),
        }
    }
}

/// Prints a route one hop per line (for the CLI and test failures).
pub fn format_route(hops: &[Hop]) -> String {
    let mut s = String::new();
    for (i, h) in hops.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        s.push_str(&h.to_string());
    }
    s
}
