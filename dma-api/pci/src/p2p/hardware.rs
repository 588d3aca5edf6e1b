//! The hardware oracle: what PCIe address routing does with a client's
//! request at a provider's BAR, access by access.
//!
//! Linux's oracle ([`super::calc_map_type_and_dist`]) counts an ACS redirect
//! bit on *any* port below the common upstream bridge, on either side, for
//! both accesses at once: one mapping may carry both directions, so the
//! kernel is conservative. Hardware is not symmetric. A request is judged
//! at its **ingress** port (the client-side port of the common node): P2P
//! Request Redirect (RR) sends it upstream, P2P Egress Control (EC) without
//! RR blocks it; a read's completion is judged at the completer's port (P2P
//! Completion Redirect, CR); a redirected TLP needs Upstream Forwarding (UF)
//! on every port above whose downstream side still holds the target (PCIe
//! r6.0 §6.12). This module answers that per access, with reasons naming
//! the port and the direction. It is the model `dma-sim`'s fabric routes by
//! (its tests check the two agree on every example machine and every ACS
//! setting); the mapping dispatcher keeps the Linux oracle.
//!
//! The request modelled is the one carrying the provider's bus address
//! (what a bus-address mapping programs). A request that reaches the root
//! complex is then peer-to-peer through the host bridge(s), allowed per
//! [`host_bridge_verdict`] for this access.

use super::oracle::host_bridge_verdict;
use super::reason::Reason;
use super::{MapType, Route, Verdict};
use crate::access::Access;
use crate::bdf::Bdf;
use crate::topology::{Acs, DeviceId, PortType, Topology, TopologyError};
use alloc::vec;
use alloc::vec::Vec;

/// The hardware oracle's answer for one access of one pair.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AccessRoute {
    /// The access judged.
    pub access: Access,
    /// The path the transaction takes: `BusAddr` when request and
    /// completion stay below the root complex, `ThruHostBridge` when either
    /// crosses it, `NotSupported` when it cannot be delivered.
    pub map_type: MapType,
    /// The access reaches the provider's memory.
    pub allowed: bool,
    /// Why, outermost first.
    pub reasons: Vec<Reason>,
}

/// The hardware oracle's answer for one (provider, client) pair.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HardwareRoute {
    /// Provider (owner of the memory).
    pub provider: Bdf,
    /// Client (the DMA master).
    pub client: Bdf,
    /// Linux's distance (a property of the tree, the same in both oracles).
    pub distance: u32,
    /// The client reads the provider's memory.
    pub read: AccessRoute,
    /// The client writes the provider's memory.
    pub write: AccessRoute,
}

impl HardwareRoute {
    /// The answer for `access`.
    pub const fn access(&self, access: Access) -> &AccessRoute {
        match access {
            Access::Read => &self.read,
            Access::Write => &self.write,
        }
    }

    /// The pair as one [`Route`], the shape the Linux oracle answers in:
    /// the map type is the farthest path either access takes (a mapping
    /// for both directions must take it), `read`/`write` are the per-access
    /// answers, and the reasons are the write's chain, then the read's
    /// where it differs (each hardware reason names its access).
    pub fn route(&self) -> Route {
        let rank = |m: MapType| match m {
            MapType::BusAddr => 0,
            MapType::ThruHostBridge => 1,
            MapType::NotSupported => 2,
        };
        let map_type = if rank(self.read.map_type) >= rank(self.write.map_type) {
            self.read.map_type
        } else {
            self.write.map_type
        };
        let mut reasons = self.write.reasons.clone();
        for r in &self.read.reasons {
            if !reasons.contains(r) {
                reasons.push(r.clone());
            }
        }
        Route {
            provider: self.provider,
            client: self.client,
            verdict: Verdict {
                map_type,
                distance: self.distance,
                read: self.read.allowed,
                write: self.write.allowed,
            },
            reasons,
        }
    }
}

/// `id`, its parent, ..., the function on the root bus.
fn chain(topo: &Topology, id: DeviceId) -> Vec<DeviceId> {
    let mut v = vec![id];
    let mut cur = id;
    while let Some(p) = topo.upstream(cur) {
        v.push(p);
        cur = p;
    }
    v
}

fn bdf(topo: &Topology, id: DeviceId) -> Bdf {
    topo.device(id).map(|d| d.bdf).unwrap_or_default()
}

fn ctrl(topo: &Topology, id: DeviceId) -> Acs {
    topo.device(id)
        .and_then(|d| d.acs)
        .map_or(Acs::empty(), |c| c.ctrl)
}

/// Does port `id` send upstream a TLP whose target is below it?
/// `pci_acs_flags_enabled(UF)` counting: no ACS capability, or one without
/// UF, forwards by construction.
fn forwards_upstream(topo: &Topology, id: DeviceId) -> bool {
    topo.device(id)
        .and_then(|d| d.acs)
        .is_none_or(|c| c.flags_enabled(Acs::UF))
}

const fn downstream_facing(p: PortType) -> bool {
    matches!(p, PortType::RootPort | PortType::SwitchDownstream)
}

/// A redirected TLP climbs from `chain[from]` to the root bus: every root
/// or downstream port on the way (from `chain[from]` itself when
/// `include_first`) holds the target below, so each must forward upstream.
/// Returns the port that refuses.
fn upstream_refusal(
    topo: &Topology,
    chain: &[DeviceId],
    from: usize,
    include_first: bool,
) -> Option<DeviceId> {
    let start = if include_first { from } else { from + 1 };
    chain
        .get(start..)
        .unwrap_or(&[])
        .iter()
        .copied()
        .find(|&p| {
            topo.device(p)
                .is_some_and(|d| downstream_facing(d.port) && !forwards_upstream(topo, p))
        })
}

/// How one transaction goes, before the host bridge is asked.
enum Path {
    /// Delivered below the root complex.
    Direct,
    /// Crosses the root complex.
    RootComplex,
    /// Cannot be delivered.
    Blocked,
}

/// The hardware answer for one access: see the module docs.
fn judge(
    topo: &Topology,
    provider: DeviceId,
    client: DeviceId,
    access: Access,
) -> Result<AccessRoute, TopologyError> {
    let pd = topo.known(provider)?;
    let cd = topo.known(client)?;
    let mut reasons = Vec::new();
    let rchain = chain(topo, client);
    let tchain = chain(topo, provider);
    let common = if pd.host_bridge == cd.host_bridge {
        rchain
            .iter()
            .enumerate()
            .find_map(|(i, a)| tchain.iter().position(|b| b == a).map(|j| (i, j)))
    } else {
        None
    };
    let path = match common {
        None => {
            reasons.push(Reason::NoCommonUpstream);
            Path::RootComplex
        }
        Some(_) if provider == client => {
            reasons.push(Reason::SameFunction);
            Path::Direct
        }
        Some((i, j)) if i == 0 || j == 0 => {
            // One is a bridge above the other: straight up or down.
            reasons.push(Reason::CommonUpstream {
                bridge: bdf(topo, rchain[i]),
            });
            Path::Direct
        }
        Some((i, j)) => {
            let c = rchain[i];
            let x = rchain[i - 1];
            let y = tchain[j - 1];
            reasons.push(Reason::CommonUpstream {
                bridge: bdf(topo, c),
            });
            let port_link = topo.device(c).is_some_and(|d| downstream_facing(d.port));
            let xc = ctrl(topo, x);
            if xc.contains(Acs::RR) {
                reasons.push(Reason::IngressRedirect {
                    port: bdf(topo, x),
                    access,
                });
                // Below a root or downstream port the common node itself
                // holds the target and must forward upstream too.
                match upstream_refusal(topo, &rchain, i, port_link) {
                    Some(p) => {
                        reasons.push(Reason::UpstreamForwardingOff {
                            port: bdf(topo, p),
                            access,
                            completion: false,
                        });
                        Path::Blocked
                    }
                    None => Path::RootComplex,
                }
            } else if xc.contains(Acs::EC) {
                reasons.push(Reason::EgressBlocked {
                    port: bdf(topo, x),
                    access,
                });
                Path::Blocked
            } else if port_link {
                reasons.push(Reason::InsideDevice {
                    from: bdf(topo, x),
                    to: bdf(topo, y),
                    access,
                });
                Path::Direct
            } else if access == Access::Read && ctrl(topo, y).contains(Acs::CR) {
                reasons.push(Reason::CompletionRedirect { port: bdf(topo, y) });
                match upstream_refusal(topo, &rchain, i, false) {
                    Some(p) => {
                        reasons.push(Reason::UpstreamForwardingOff {
                            port: bdf(topo, p),
                            access,
                            completion: true,
                        });
                        Path::Blocked
                    }
                    None => Path::RootComplex,
                }
            } else {
                reasons.push(Reason::DirectAcross {
                    port: bdf(topo, x),
                    bridge: bdf(topo, c),
                    access,
                });
                Path::Direct
            }
        }
    };
    let (map_type, allowed) = match path {
        Path::Direct => (MapType::BusAddr, true),
        Path::Blocked => (MapType::NotSupported, false),
        Path::RootComplex => {
            let hv = host_bridge_verdict(topo, pd.host_bridge, cd.host_bridge, &mut reasons);
            let map_type = if hv.supported {
                MapType::ThruHostBridge
            } else {
                MapType::NotSupported
            };
            // Keep only the refusal of the access judged here.
            reasons.retain(
                |r| !matches!(r, Reason::AccessNotForwarded { access: a, .. } if *a != access),
            );
            (map_type, hv.allows(access))
        }
    };
    Ok(AccessRoute {
        access,
        map_type,
        allowed,
        reasons,
    })
}

/// The hardware oracle for `(provider, client)`: both accesses, as PCIe
/// routing carries a request at the provider's bus address (see the module
/// docs). Errors for an id not in the topology, like the Linux oracle.
pub fn hardware_route(
    topo: &Topology,
    provider: DeviceId,
    client: DeviceId,
) -> Result<HardwareRoute, TopologyError> {
    let read = judge(topo, provider, client, Access::Read)?;
    let write = judge(topo, provider, client, Access::Write)?;
    let rchain = chain(topo, client);
    let tchain = chain(topo, provider);
    let same_hb =
        topo.device(provider).map(|d| d.host_bridge) == topo.device(client).map(|d| d.host_bridge);
    let common = rchain
        .iter()
        .enumerate()
        .find_map(|(i, a)| tchain.iter().position(|b| b == a).map(|j| (i, j)))
        .filter(|_| same_hb);
    // drivers/pci/p2pdma.c counts the steps to the common bridge from both
    // sides, or both whole chains when there is none.
    let distance = match common {
        Some((i, j)) => i + j,
        None => rchain.len() + tchain.len(),
    };
    Ok(HardwareRoute {
        provider: bdf(topo, provider),
        client: bdf(topo, client),
        distance: u32::try_from(distance).unwrap_or(u32::MAX),
        read,
        write,
    })
}
