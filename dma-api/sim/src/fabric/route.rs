//! Routing one TLP like PCIe address routing does.
//!
//! 1. **Below the root complex.** The address is decoded against the memory
//!    BARs under the requester's host bridge (a port's memory window is the
//!    union of the BARs below it). If a BAR holds it, the TLP climbs to the
//!    nearest common upstream node of requester and target and turns there:
//!    * at a switch's internal bus (the common node is a switch upstream
//!      port), the ingress downstream port's ACS decides: P2P Request
//!      Redirect (RR) sends it upstream, P2P Egress Control (EC, vector not
//!      modelled: all peers) blocks it, otherwise it goes across to the
//!      sibling downstream port and down;
//!    * at a port whose secondary link holds a multi-function device (the
//!      common node is a root or downstream port), the requesting function's
//!      own ACS decides the same way; without redirect the device delivers
//!      between its functions internally;
//!    * the requester's own BAR is handled inside the function.
//!
//!    A redirected TLP climbs on; every root or downstream port above whose
//!    downstream side still holds the target must have ACS Upstream
//!    Forwarding (UF) enabled (as `pci_acs_flags_enabled` counts it: a
//!    port without the UF capability forwards by construction), otherwise
//!    the TLP would have to leave through its ingress link: a fault.
//! 2. **At the root complex** (the requester's host bridge): the IOMMU, if
//!    the host bridge has one and one is attached, translates. Untranslated
//!    addresses are bus addresses: an address inside an MMIO window's bus
//!    range is a peer BAR; otherwise dma-ranges give the RAM address.
//! 3. **The physical address** is a memory BAR (host-bridge P2P, allowed
//!    per `p2p::host_bridge_verdict` for this access), RAM or stolen RAM
//!    (the memory controller), device-private memory (fault) or nothing
//!    (fault).
//!
//! Completions (read data) follow the request path in reverse, except
//! where ACS P2P Completion Redirect (CR) on the completer's switch
//! downstream port sends a completion that would cross the switch up to the
//! root complex and back down (UF checked on the way up; the host bridge
//! must forward peer-to-peer reads).

use super::fault::FaultReason;
use super::hop::{Dir, Hop, LinkId, Node, Target, Translation};
use crate::fabric::{RcFault, RootComplexIommu};
use dma_pci::bdf::Bdf;
use dma_pci::memmap::{MemoryMap, RangeKind};
use dma_pci::p2p::{host_bridge_verdict, Access, Reason};
use dma_pci::topology::{Acs, DeviceId, HostBridgeId, PortType, Topology};
use dma_pci::types::{BusAddr, DmaAddr, PhysAddr};
use std::sync::Arc;

/// A routed TLP: its hops (ending in [`Hop::Deliver`]) and its target.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Routed {
    pub hops: Vec<Hop>,
    pub target: Target,
    /// For a read whose completion does not simply retrace the request
    /// (ACS Completion Redirect): the links the data takes, in order and
    /// in its real direction.
    pub completion: Option<Vec<Hop>>,
}

/// What the router asks at the root complex: the attached IOMMU, or a run
/// of its answers the fabric fetched at once.
pub(crate) trait Translate {
    /// [`RootComplexIommu::translate`] for a request of `len` bytes.
    fn translate(
        &self,
        requester: Bdf,
        addr: DmaAddr,
        len: u64,
        write: bool,
    ) -> Result<Option<PhysAddr>, RcFault>;
}

impl Translate for Arc<dyn RootComplexIommu> {
    fn translate(
        &self,
        requester: Bdf,
        addr: DmaAddr,
        len: u64,
        write: bool,
    ) -> Result<Option<PhysAddr>, RcFault> {
        RootComplexIommu::translate(&**self, requester, addr, len, write)
    }
}

/// Everything the router reads.
pub(crate) struct RouteCtx<'a> {
    pub topo: &'a Topology,
    pub memmap: &'a MemoryMap,
    pub iommu: Option<&'a dyn Translate>,
}

fn dev_node(topo: &Topology, id: DeviceId) -> Node {
    Node::Device(topo.device(id).map(|d| d.bdf).unwrap_or_default())
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

fn link(lower: Node, upper: Node, dir: Dir) -> Hop {
    Hop::Link {
        link: LinkId::new(lower, upper),
        dir,
    }
}

/// Up-links along `chain[from..=to]` (indices into the chain).
fn climb(topo: &Topology, chain: &[DeviceId], from: usize, to: usize, hops: &mut Vec<Hop>) {
    for w in chain.get(from..=to).unwrap_or(&[]).windows(2) {
        if let [a, b] = w {
            hops.push(link(dev_node(topo, *a), dev_node(topo, *b), Dir::Up));
        }
    }
}

/// Down-links from `chain[to]` to `chain[0]` (reverse of [`climb`]).
fn descend(topo: &Topology, chain: &[DeviceId], to: usize, hops: &mut Vec<Hop>) {
    let part = chain.get(..=to).unwrap_or(&[]);
    for w in part.windows(2).rev() {
        if let [a, b] = w {
            hops.push(link(dev_node(topo, *a), dev_node(topo, *b), Dir::Down));
        }
    }
}

/// The memory BAR holding `[phys, phys + len)`: owner, index, or a
/// straddle fault when it starts inside a BAR and runs past its end.
fn bar_holding(
    topo: &Topology,
    phys: PhysAddr,
    len: u64,
) -> Result<Option<(DeviceId, u8)>, FaultReason> {
    let Some((id, idx)) = topo.bar_at(phys) else {
        return Ok(None);
    };
    let d = topo.device(id).ok_or(FaultReason::NoMemory { phys, len })?;
    let b = d.bar(idx).ok_or(FaultReason::NoMemory { phys, len })?;
    let fits = phys
        .offset_from(b.addr)
        .is_some_and(|off| len <= b.size.saturating_sub(off));
    if fits {
        Ok(Some((id, idx)))
    } else {
        Err(FaultReason::StraddlesBar {
            device: d.bdf,
            bar: idx,
        })
    }
}

/// The BAR a bus address hits below host bridge `hb` (what the switches'
/// memory windows decode), with the BAR's CPU address.
fn decode_below(
    topo: &Topology,
    hb: HostBridgeId,
    bus: BusAddr,
    len: u64,
) -> Result<Option<(DeviceId, u8, PhysAddr)>, FaultReason> {
    let Some(h) = topo.host_bridge(hb) else {
        return Ok(None);
    };
    let phys = if h.mmio.is_empty() {
        PhysAddr::new(bus.raw())
    } else {
        match h.mmio.window_for_bus(bus) {
            Some(w) => match bus.offset_from(w.bus_start) {
                Some(off) => match w.cpu_start.checked_add(off) {
                    Some(p) => p,
                    None => return Ok(None),
                },
                None => return Ok(None),
            },
            None => return Ok(None),
        }
    };
    match bar_holding(topo, phys, len)? {
        Some((id, idx)) if topo.device(id).is_some_and(|d| d.host_bridge == hb) => {
            Ok(Some((id, idx, phys)))
        }
        _ => Ok(None),
    }
}

/// The ACS bits of `id` that act on a peer request it forwards: RR
/// (redirect) and EC (block).
fn peer_acs(topo: &Topology, id: DeviceId) -> Acs {
    topo.device(id)
        .and_then(|d| d.acs)
        .map_or(Acs::empty(), |c| c.ctrl & (Acs::RR | Acs::EC))
}

/// Does port `id` forward upstream a TLP that targets its own downstream
/// side? `pci_acs_flags_enabled(UF)` semantics: no ACS capability, or a
/// capability without UF, forwards by construction; otherwise UF must be on.
fn forwards_upstream(topo: &Topology, id: DeviceId) -> bool {
    match topo.device(id).and_then(|d| d.acs) {
        None => true,
        Some(c) => c.flags_enabled(Acs::UF),
    }
}

/// A redirected TLP climbs `chain[from..]` to the root bus: every root or
/// downstream port it passes holds the target below, so each must forward
/// upstream (UF).
fn ascend_redirected(
    topo: &Topology,
    chain: &[DeviceId],
    from: usize,
    hops: &mut Vec<Hop>,
) -> Result<(), FaultReason> {
    for w in chain.get(from..).unwrap_or(&[]).windows(2) {
        let [a, b] = w else { continue };
        hops.push(link(dev_node(topo, *a), dev_node(topo, *b), Dir::Up));
        let bd = topo.device(*b).ok_or(FaultReason::UnknownRequester)?;
        if downstream_facing(bd.port) {
            if !forwards_upstream(topo, *b) {
                return Err(FaultReason::LoopbackRefused { port: bd.bdf });
            }
            hops.push(Hop::UpstreamForward { port: bd.bdf });
        }
    }
    Ok(())
}

const fn downstream_facing(p: PortType) -> bool {
    matches!(p, PortType::RootPort | PortType::SwitchDownstream)
}

impl RouteCtx<'_> {
    /// Routes one TLP of `len` bytes (not crossing a page) from `requester`.
    pub fn route(
        &self,
        requester: Bdf,
        addr: DmaAddr,
        len: u64,
        write: bool,
    ) -> Result<Routed, FaultReason> {
        let topo = self.topo;
        let rid = topo
            .lookup(requester)
            .ok_or(FaultReason::UnknownRequester)?;
        let rd = topo.device(rid).ok_or(FaultReason::UnknownRequester)?;
        let hb_r = rd.host_bridge;
        let rchain = chain(topo, rid);
        let mut hops = Vec::new();

        // 1. Below the root complex: does a BAR under this host bridge claim it?
        if let Some((tid, bar, phys)) = decode_below(topo, hb_r, addr.as_bus(), len)? {
            let target = Target::Bar {
                device: topo.device(tid).map(|d| d.bdf).unwrap_or_default(),
                bar,
                phys,
            };
            if tid == rid {
                hops.push(Hop::Internal {
                    from: requester,
                    to: requester,
                });
                hops.push(Hop::Deliver(target));
                return Ok(Routed {
                    hops,
                    target,
                    completion: None,
                });
            }
            let tchain = chain(topo, tid);
            // Nearest common node: index in each chain.
            let common = rchain
                .iter()
                .enumerate()
                .find_map(|(i, a)| tchain.iter().position(|b| b == a).map(|j| (i, j)));
            if let Some((i, j)) = common {
                if let Some(done) = self.below(&rchain, &tchain, i, j, target, write, &mut hops)? {
                    return Ok(done);
                }
                // Redirected at rchain[i]: climb on with UF checks.
                ascend_redirected(topo, &rchain, i, &mut hops)?;
                return self.at_root_complex(requester, rid, &rchain, addr, len, write, hops);
            }
        }
        // 2. Not claimed below: all the way up.
        climb(topo, &rchain, 0, rchain.len() - 1, &mut hops);
        self.at_root_complex(requester, rid, &rchain, addr, len, write, hops)
    }

    /// Handles a target below the common node `rchain[i] == tchain[j]`.
    /// Returns the finished route, or `None` when the request was
    /// redirected upstream (the caller climbs on from `rchain[i]`, with the
    /// hops up to it already pushed).
    #[allow(clippy::too_many_arguments)]
    fn below(
        &self,
        rchain: &[DeviceId],
        tchain: &[DeviceId],
        i: usize,
        j: usize,
        target: Target,
        write: bool,
        hops: &mut Vec<Hop>,
    ) -> Result<Option<Routed>, FaultReason> {
        let topo = self.topo;
        let finish = |mut hops: Vec<Hop>| {
            hops.push(Hop::Deliver(target));
            Some(Routed {
                hops,
                target,
                completion: None,
            })
        };
        if j == 0 {
            // The target is an ancestor of the requester (a port's own BAR):
            // claimed when the TLP reaches it.
            climb(topo, rchain, 0, i, hops);
            return Ok(finish(std::mem::take(hops)));
        }
        if i == 0 {
            // The requester is a bridge above the target: straight down.
            descend(topo, tchain, j, hops);
            return Ok(finish(std::mem::take(hops)));
        }
        let c = rchain[i];
        let cd = topo.device(c).ok_or(FaultReason::UnknownRequester)?;
        let x = rchain[i - 1];
        let xd = topo.device(x).ok_or(FaultReason::UnknownRequester)?;
        let y = tchain[j - 1];
        let acs = peer_acs(topo, x);
        climb(topo, rchain, 0, i - 1, hops);
        match cd.port {
            PortType::RootPort | PortType::SwitchDownstream => {
                // Functions of one device on this port's link.
                if acs.contains(Acs::RR) {
                    hops.push(Hop::AcsRedirect {
                        port: xd.bdf,
                        bits: Acs::RR,
                    });
                    hops.push(link(dev_node(topo, x), dev_node(topo, c), Dir::Up));
                    if !forwards_upstream(topo, c) {
                        return Err(FaultReason::LoopbackRefused { port: cd.bdf });
                    }
                    hops.push(Hop::UpstreamForward { port: cd.bdf });
                    // The caller climbs on from c.
                    return Ok(None);
                }
                if acs.contains(Acs::EC) {
                    return Err(FaultReason::AcsBlocked {
                        port: xd.bdf,
                        bits: Acs::EC,
                    });
                }
                let yb = topo.device(y).map(|d| d.bdf).unwrap_or_default();
                hops.push(Hop::Internal {
                    from: xd.bdf,
                    to: yb,
                });
                descend(topo, tchain, j - 1, hops);
                Ok(finish(std::mem::take(hops)))
            }
            _ => {
                // A switch's internal bus (or a conventional bridge's
                // secondary bus, modelled the same way, without ACS).
                if acs.contains(Acs::RR) {
                    hops.push(Hop::AcsRedirect {
                        port: xd.bdf,
                        bits: Acs::RR,
                    });
                    hops.push(link(dev_node(topo, x), dev_node(topo, c), Dir::Up));
                    return Ok(None);
                }
                if acs.contains(Acs::EC) {
                    return Err(FaultReason::AcsBlocked {
                        port: xd.bdf,
                        bits: Acs::EC,
                    });
                }
                hops.push(link(dev_node(topo, x), dev_node(topo, c), Dir::Up));
                hops.push(link(dev_node(topo, y), dev_node(topo, c), Dir::Down));
                descend(topo, tchain, j - 1, hops);
                let completion = if write {
                    None
                } else {
                    self.redirected_completion(rchain, tchain, i, j, target)?
                };
                Ok(finish(std::mem::take(hops)).map(|r| Routed { completion, ..r }))
            }
        }
    }

    /// ACS P2P Completion Redirect on the completer's downstream port
    /// `tchain[j - 1]`: the read completion goes up to the root complex and
    /// back down to the requester instead of across the switch. The host
    /// bridge forwards it only if it forwards peer-to-peer reads.
    fn redirected_completion(
        &self,
        rchain: &[DeviceId],
        tchain: &[DeviceId],
        i: usize,
        j: usize,
        target: Target,
    ) -> Result<Option<Vec<Hop>>, FaultReason> {
        let topo = self.topo;
        let (Some(&y), Some(&c)) = (tchain.get(j.wrapping_sub(1)), tchain.get(j)) else {
            return Ok(None);
        };
        let yd = topo.device(y).ok_or(FaultReason::UnknownRequester)?;
        let cr = yd.acs.is_some_and(|a| a.ctrl.contains(Acs::CR));
        if !cr {
            return Ok(None);
        }
        let mut comp = vec![Hop::Completion];
        climb(topo, tchain, 0, j - 1, &mut comp);
        comp.push(Hop::AcsRedirect {
            port: yd.bdf,
            bits: Acs::CR,
        });
        comp.push(link(dev_node(topo, y), dev_node(topo, c), Dir::Up));
        ascend_redirected(topo, rchain, i, &mut comp)?;
        let root = rchain
            .last()
            .copied()
            .ok_or(FaultReason::UnknownRequester)?;
        let hb = topo
            .device(root)
            .ok_or(FaultReason::UnknownRequester)?
            .host_bridge;
        comp.push(link(dev_node(topo, root), Node::HostBridge(hb), Dir::Up));
        let mut reasons = Vec::new();
        if !host_bridge_verdict(topo, hb, hb, &mut reasons).read {
            let provider = match target {
                Target::Bar { device, .. } => device,
                Target::Ram { .. } => Bdf::default(),
            };
            let host_bridge = refusing_bridge(&reasons, Access::Read).unwrap_or_else(|| {
                topo.host_bridge(hb)
                    .map(|h| h.name.clone())
                    .unwrap_or_default()
            });
            return Err(FaultReason::HostBridgeP2pRefused {
                provider,
                host_bridge,
                access: Access::Read,
                reasons,
            });
        }
        comp.push(link(dev_node(topo, root), Node::HostBridge(hb), Dir::Down));
        descend(topo, rchain, rchain.len() - 1, &mut comp);
        Ok(Some(comp))
    }

    /// The TLP has reached the requester's host bridge.
    #[allow(clippy::too_many_arguments)]
    fn at_root_complex(
        &self,
        requester: Bdf,
        rid: DeviceId,
        rchain: &[DeviceId],
        addr: DmaAddr,
        len: u64,
        write: bool,
        mut hops: Vec<Hop>,
    ) -> Result<Routed, FaultReason> {
        let topo = self.topo;
        let rd = topo.device(rid).ok_or(FaultReason::UnknownRequester)?;
        let hb_r = rd.host_bridge;
        let hb = topo
            .host_bridge(hb_r)
            .ok_or(FaultReason::UnknownRequester)?;
        let root = rchain.last().copied().unwrap_or(rid);
        hops.push(link(dev_node(topo, root), Node::HostBridge(hb_r), Dir::Up));

        let translated = match (hb.iommu, self.iommu) {
            (true, Some(mmu)) => mmu
                .translate(requester, addr, len, write)
                .map_err(FaultReason::IommuFault)?,
            _ => None,
        };
        let (phys, by) = match translated {
            Some(p) => (p, Translation::Iommu),
            None => {
                let bus = addr.as_bus();
                let unroutable = || FaultReason::Unroutable {
                    bus,
                    host_bridge: hb.name.clone(),
                };
                if hb.mmio.window_for_bus(bus).is_some() {
                    let p = hb.mmio.bus_to_phys(bus, len).map_err(|_| unroutable())?;
                    (p, Translation::MmioWindow)
                } else {
                    let p = hb
                        .dma_ranges
                        .bus_to_phys(bus, len)
                        .map_err(|_| unroutable())?;
                    (p, Translation::DmaRanges)
                }
            }
        };
        hops.push(Hop::Translate {
            at: hb_r,
            by,
            from: addr,
            to: phys,
        });

        // 3. What the physical address is.
        if let Some((tid, bar)) = bar_holding(topo, phys, len)? {
            let td = topo
                .device(tid)
                .ok_or(FaultReason::NoMemory { phys, len })?;
            let hb_t = td.host_bridge;
            let access = if write { Access::Write } else { Access::Read };
            let mut reasons: Vec<Reason> = Vec::new();
            let v = host_bridge_verdict(topo, hb_t, hb_r, &mut reasons);
            if !v.allows(access) {
                let host_bridge =
                    refusing_bridge(&reasons, access).unwrap_or_else(|| hb.name.clone());
                return Err(FaultReason::HostBridgeP2pRefused {
                    provider: td.bdf,
                    host_bridge,
                    access,
                    reasons,
                });
            }
            if hb_t != hb_r {
                hops.push(link(Node::HostBridge(hb_r), Node::RootComplex, Dir::Up));
                hops.push(link(Node::HostBridge(hb_t), Node::RootComplex, Dir::Down));
            }
            let tchain = chain(topo, tid);
            let troot = tchain.last().copied().unwrap_or(tid);
            hops.push(link(
                dev_node(topo, troot),
                Node::HostBridge(hb_t),
                Dir::Down,
            ));
            descend(topo, &tchain, tchain.len() - 1, &mut hops);
            let target = Target::Bar {
                device: td.bdf,
                bar,
                phys,
            };
            hops.push(Hop::Deliver(target));
            return Ok(Routed {
                hops,
                target,
                completion: None,
            });
        }
        match self.memmap.kind_of_range(phys, len).map(|(r, _)| r.kind) {
            Some(RangeKind::Ram) | Some(RangeKind::StolenRam { .. }) => {
                hops.push(link(Node::HostBridge(hb_r), Node::RootComplex, Dir::Up));
                hops.push(link(Node::RootComplex, Node::Ram, Dir::Up));
                let target = Target::Ram { phys };
                hops.push(Hop::Deliver(target));
                Ok(Routed {
                    hops,
                    target,
                    completion: None,
                })
            }
            Some(RangeKind::DevicePrivate { owner }) => {
                Err(FaultReason::DevicePrivate { phys, owner })
            }
            // A BAR the topology no longer has (hot-removed), or nothing.
            Some(RangeKind::Bar { .. }) | None => Err(FaultReason::NoMemory { phys, len }),
        }
    }
}

/// The host bridge named by the oracle's reasons as refusing `access`.
fn refusing_bridge(reasons: &[Reason], access: Access) -> Option<String> {
    reasons.iter().find_map(|r| match r {
        Reason::AccessNotForwarded { bridge, access: a } if *a == access => Some(bridge.clone()),
        Reason::HostBridgeNotAllowListed { bridge, .. }
        | Reason::HostBridgeSameOnly { bridge, .. }
        | Reason::HostBridgeUnidentified { bridge } => Some(bridge.clone()),
        _ => None,
    })
}
