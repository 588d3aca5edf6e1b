//! `calc_map_type_and_dist` and `distance_many`, matching
//! drivers/pci/p2pdma.c step by step.

use super::allowlist;
use super::reason::Reason;
use super::{MapType, Route, Verdict};
use crate::access::Access;
use crate::topology::{Acs, DeviceId, HostBridgeId, Topology, TopologyError};
use alloc::vec::Vec;
use core::fmt;

/// The host-bridge check (`host_bridge_whitelist`): same host bridge → its
/// entry must match (REQ_SAME_HOST_BRIDGE allowed); different → both must
/// match without REQ_SAME_HOST_BRIDGE.
fn host_bridge_allowed(
    topo: &Topology,
    hp: HostBridgeId,
    hc: HostBridgeId,
    reasons: &mut Vec<Reason>,
) -> bool {
    let same = hp == hc;
    let check = |hb: HostBridgeId, reasons: &mut Vec<Reason>| -> bool {
        let name = topo
            .host_bridge(hb)
            .map(|h| h.name.clone())
            .unwrap_or_default();
        let Some((vendor, device)) = topo.host_bridge_ident(hb) else {
            reasons.push(Reason::HostBridgeUnidentified { bridge: name });
            return false;
        };
        match allowlist::lookup(vendor, device) {
            Some(en) if en.req_same_host_bridge && !same => {
                reasons.push(Reason::HostBridgeSameOnly {
                    bridge: name,
                    vendor,
                    device,
                });
                false
            }
            Some(_) => {
                reasons.push(Reason::HostBridgeAllowListed {
                    bridge: name,
                    vendor,
                    device,
                });
                true
            }
            None => {
                reasons.push(Reason::HostBridgeNotAllowListed {
                    bridge: name,
                    vendor,
                    device,
                });
                false
            }
        }
    };
    if same {
        check(hp, reasons)
    } else {
        // Linux short-circuits; we evaluate both to explain both.
        let a = check(hp, reasons);
        let b = check(hc, reasons);
        a && b
    }
}

/// What the host bridge(s) say about a peer-to-peer transfer that goes
/// through the root complex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct HostBridgeVerdict {
    /// Step 4 of `calc_map_type_and_dist`: AMD family >= 0x17 or allow-listed.
    pub supported: bool,
    /// Reads are forwarded (false when not supported).
    pub read: bool,
    /// Writes are forwarded (false when not supported).
    pub write: bool,
}

impl HostBridgeVerdict {
    /// True if `access` is forwarded.
    pub const fn allows(&self, access: Access) -> bool {
        match access {
            Access::Read => self.read,
            Access::Write => self.write,
        }
    }
}

/// The host-bridge part of drivers/pci/p2pdma.c `calc_map_type_and_dist`
/// (step 4: `cpu_supports_p2pdma() || host_bridge_whitelist()`), plus our
/// per-access extension (each involved host bridge must forward the access,
/// `p2p_read` / `p2p_write`). `hp` is the provider's host bridge, `hc` the
/// client's. Used by the oracle and by the fabric when a TLP really reaches
/// the root complex.
pub fn host_bridge_verdict(
    topo: &Topology,
    hp: HostBridgeId,
    hc: HostBridgeId,
    reasons: &mut Vec<Reason>,
) -> HostBridgeVerdict {
    if hp != hc {
        let name = |h| {
            topo.host_bridge(h)
                .map(|x| x.name.clone())
                .unwrap_or_default()
        };
        reasons.push(Reason::DifferentHostBridges {
            provider: name(hp),
            client: name(hc),
        });
    }
    let cpu = topo.cpu();
    let supported = if cpu.supports_p2pdma() {
        reasons.push(Reason::AmdZen { family: cpu.family });
        true
    } else {
        host_bridge_allowed(topo, hp, hc, reasons)
    };
    if !supported {
        return HostBridgeVerdict {
            supported,
            read: false,
            write: false,
        };
    }
    let (mut read, mut write) = (true, true);
    let hbs: &[HostBridgeId] = if hp == hc { &[hp] } else { &[hp, hc] };
    for &h in hbs {
        if let Some(hb) = topo.host_bridge(h) {
            if !hb.p2p_read {
                read = false;
                reasons.push(Reason::AccessNotForwarded {
                    bridge: hb.name.clone(),
                    access: Access::Read,
                });
            }
            if !hb.p2p_write {
                write = false;
                reasons.push(Reason::AccessNotForwarded {
                    bridge: hb.name.clone(),
                    access: Access::Write,
                });
            }
        }
    }
    HostBridgeVerdict {
        supported,
        read,
        write,
    }
}

/// drivers/pci/p2pdma.c `calc_map_type_and_dist(provider, client)`, with
/// reasons and per-access verdicts.
///
/// 1. Walk up from the provider (`a`, `dist_a`); at each step note ACS
///    redirect on `a`, then walk up from the client (`bb`, `dist_b`) looking
///    for `a`.
/// 2. No common ancestor: distance = both chain lengths; go to the
///    host-bridge check.
/// 3. Common ancestor: add ACS redirects on the client side below it;
///    distance = `dist_a + dist_b`; none → `BusAddr`, else host-bridge check.
/// 4. Host-bridge check: AMD family >= 0x17 or allow-listed →
///    `ThruHostBridge`, else `NotSupported`.
///
/// Extension: on a `ThruHostBridge` route each involved host bridge must
/// forward the access (`p2p_read` / `p2p_write`); bus routes allow both.
pub fn calc_map_type_and_dist(
    topo: &Topology,
    provider: DeviceId,
    client: DeviceId,
) -> Result<Route, TopologyError> {
    let pd = topo.known(provider)?;
    let cd = topo.known(client)?;
    let mut reasons = Vec::new();
    let mut acs: Vec<DeviceId> = Vec::new();
    let mut a = Some(provider);
    let mut dist_a: u32 = 0;
    let mut dist_b: u32 = 0;
    let mut common = None;
    'outer: while let Some(ai) = a {
        dist_b = 0;
        if topo.device(ai).is_some_and(|d| d.acs_redirects()) {
            acs.push(ai);
        }
        let mut bb = Some(client);
        while let Some(bi) = bb {
            if bi == ai {
                common = Some(ai);
                break 'outer;
            }
            bb = topo.upstream(bi);
            dist_b += 1;
        }
        a = topo.upstream(ai);
        dist_a += 1;
    }
    let distance = dist_a + dist_b;
    let mut map_type = MapType::ThruHostBridge;
    let mut needs_host_bridge = true;
    match common {
        None => reasons.push(Reason::NoCommonUpstream),
        Some(anc) => {
            let mut bb = Some(client);
            while let Some(bi) = bb {
                if bi == anc {
                    break;
                }
                if topo.device(bi).is_some_and(|d| d.acs_redirects()) {
                    acs.push(bi);
                }
                bb = topo.upstream(bi);
            }
            if provider == client {
                reasons.push(Reason::SameFunction);
            } else if let Some(ad) = topo.device(anc) {
                reasons.push(Reason::CommonUpstream { bridge: ad.bdf });
            }
            if acs.is_empty() {
                map_type = MapType::BusAddr;
                needs_host_bridge = false;
            } else {
                for id in &acs {
                    if let Some(d) = topo.device(*id) {
                        let bits = d.acs.map_or(Acs::empty(), |c| c.ctrl & Acs::REDIRECT);
                        reasons.push(Reason::AcsRedirect {
                            bridge: d.bdf,
                            bits,
                        });
                    }
                }
            }
        }
    }
    let (hp, hc) = (pd.host_bridge, cd.host_bridge);
    let (mut read, mut write) = (true, true);
    if needs_host_bridge {
        let hv = host_bridge_verdict(topo, hp, hc, &mut reasons);
        if !hv.supported {
            map_type = MapType::NotSupported;
        }
        read = hv.read;
        write = hv.write;
    }
    Ok(Route {
        provider: pd.bdf,
        client: cd.bdf,
        verdict: Verdict {
            map_type,
            distance,
            read,
            write,
        },
        reasons,
    })
}

/// Why `distance_many` has no answer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum DistanceError {
    /// No clients given (Linux returns -1).
    NoClients,
    /// A device id that is not in the topology.
    Topology(TopologyError),
    /// Some clients cannot reach the provider; their routes explain why.
    NotSupported {
        /// The failing routes.
        routes: Vec<Route>,
    },
}

impl fmt::Display for DistanceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DistanceError::NoClients => f.write_str("no clients"),
            DistanceError::Topology(e) => e.fmt(f),
            DistanceError::NotSupported { routes } => {
                f.write_str("P2P not supported for")?;
                for r in routes {
                    write!(f, " {}->{}", r.provider, r.client)?;
                }
                Ok(())
            }
        }
    }
}

/// drivers/pci/p2pdma.c `pci_p2pdma_distance_many`: the sum of distances,
/// or an error if any client is `NotSupported` (all failing routes are
/// reported, like `verbose`). Host-bridge routes count with their plain
/// distance.
pub fn distance_many(
    topo: &Topology,
    provider: DeviceId,
    clients: &[DeviceId],
) -> Result<u32, DistanceError> {
    if clients.is_empty() {
        return Err(DistanceError::NoClients);
    }
    let mut total: u32 = 0;
    let mut failed = Vec::new();
    for &c in clients {
        let r = calc_map_type_and_dist(topo, provider, c).map_err(DistanceError::Topology)?;
        if r.verdict.map_type == MapType::NotSupported {
            failed.push(r);
        } else {
            total = total.saturating_add(r.verdict.distance);
        }
    }
    if failed.is_empty() {
        Ok(total)
    } else {
        Err(DistanceError::NotSupported { routes: failed })
    }
}
