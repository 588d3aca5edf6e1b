//! Picking devices by role: a client and a registered p2pmem range whose
//! mapping the dispatcher decides a given way. Peer memory is only what a
//! provider registered: the ranges of the registered providers
//! ([`crate::providers::registered_for_mapping`]), published first (what
//! `pci_p2pmem_find` would hand out), then unpublished ones — never a BAR
//! nobody registered. Each pair is judged by
//! [`DmaDevice::explain_map`](dma_api::device::DmaDevice::explain_map), the
//! same dispatcher the scenario then maps through.
//!
//! Judging every (provider, client) pair is quadratic: a machine of 65 536
//! functions has about 10^9 of them, and a scenario whose pair does not
//! exist would judge them all. Clients are therefore judged by class
//! ([`ClientIndex`]): two clients the dispatcher cannot tell apart for a
//! provider get one judgement, so a search costs the providers times the
//! classes near each, not the pairs.

use super::{skip, Stop};
use dma_api::device::{Decision, DmaConstraints};
use dma_api::topology::{DeviceId, HostBridgeId, Topology};
use dma_api::{Bdf, Direction, PhysAddr};
use dma_sim::assembly::{Assembly, Endpoint};
use std::collections::HashMap;

/// A client and where in a peer's BAR it will map.
pub(crate) struct Pair {
    /// The DMA master.
    pub client: Bdf,
    /// The BAR's owner.
    pub provider: Bdf,
    /// CPU physical address of the first byte.
    pub at: PhysAddr,
    /// The dispatcher's explanation for the pair.
    pub decision: Decision,
}

/// Registered peer memory to try, `(owner, start)`, each at least `len`
/// bytes; a scenario without any is skipped saying no registered provider
/// fits.
fn candidates(a: &Assembly, len: u64) -> Result<Vec<(Bdf, PhysAddr)>, Stop> {
    let m = &a.machine;
    let providers = crate::providers::registered_for_mapping(m);
    if providers.is_empty() {
        return Err(skip(
            "no registered p2pmem provider fits (the machine registers none)",
        ));
    }
    let mut v: Vec<(Bdf, PhysAddr)> = Vec::new();
    for id in providers {
        let Some(d) = m.topology.device(id) else {
            continue;
        };
        for r in m.p2pmem.resources(id).iter().filter(|r| r.size >= len) {
            v.push((d.bdf, r.phys));
        }
    }
    if v.is_empty() {
        return Err(skip(format!(
            "no registered p2pmem provider fits (no registered range of at least {len:#x} bytes)"
        )));
    }
    Ok(v)
}

/// The first (registered peer memory, client) pair, client a DMA master and
/// not a function of the provider's own device, whose `len`-byte mapping in
/// `dir` satisfies `want`; `Ok(None)` if no pair does. Skips (`Err`) when no
/// registered provider has a range of `len` bytes.
///
/// "First" is in the order of [`candidates`], then clients below a port
/// before root-bus functions, each in BDF order. One client of a class
/// stands for the class ([`ClientIndex`]); the pair returned is judged on
/// its own and satisfies `want`.
pub(crate) fn pair(
    a: &Assembly,
    len: u64,
    dir: Direction,
    want: impl Fn(&Decision) -> bool,
) -> Result<Option<Pair>, Stop> {
    let cands = candidates(a, len)?;
    let index = ClientIndex::new(a);
    let mut memo: HashMap<(Class, ProviderKey), bool> = HashMap::new();
    for (provider, at) in cands {
        let Some(p) = index.provider(a, provider, at, len) else {
            continue;
        };
        let judge = |pos: usize| -> Option<Decision> {
            let d = index.clients.get(pos)?.device.explain_map(at, len, dir);
            Some(d)
        };
        if let Some((pos, decision)) = index.first(&p, &mut memo, &judge, &want) {
            if let Some(e) = index.clients.get(pos) {
                return Ok(Some(Pair {
                    client: e.bdf,
                    provider,
                    at,
                    decision,
                }));
            }
        }
    }
    Ok(None)
}

/// What the dispatcher reads of a client when it maps peer memory, beyond
/// where the client sits: its backend and domain, its DMA constraints
/// (mask, segment rules), coherency, trust, and its own ACS redirect (the
/// oracle counts ACS on the client itself, like drivers/pci/p2pdma.c
/// `calc_map_type_and_dist` does on every device of the path).
#[derive(Clone, PartialEq, Eq, Hash)]
struct Attrs {
    backend: String,
    domain: Option<String>,
    constraints: DmaConstraints,
    coherent: bool,
    untrusted: bool,
    acs_redirects: bool,
}

/// A class of clients one judgement stands for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Class {
    /// Clients with one parent and the same [`Attrs`], below the
    /// provider's root port: their path to the provider is the same
    /// bridges with the same ACS.
    Near(usize),
    /// Clients of one host bridge with the same [`Attrs`], not below the
    /// provider's root port: no common upstream bridge, so the oracle's
    /// verdict depends only on the two host bridges (step 2 of
    /// `calc_map_type_and_dist`).
    Far(usize),
}

/// What the dispatcher reads of a provider range for a class of clients:
/// for near clients its parent and its own ACS, for all its host bridge
/// and how many address bits the range needs (a client's mask reaches all
/// ranges of one length alike); `own` makes the key the provider's own when
/// it has an owner policy (which answers per client).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct ProviderKey {
    parent: Option<DeviceId>,
    acs_redirects: bool,
    host_bridge: HostBridgeId,
    start_bits: u32,
    end_bits: u32,
    own: Option<DeviceId>,
}

/// A provider range being searched.
struct Provider {
    bdf: Bdf,
    /// The root port (the topmost bridge) above it, `None` on a root bus.
    top: Option<DeviceId>,
    near: ProviderKey,
    far: ProviderKey,
}

/// The masters in search order, with their classes, built once per search
/// in one pass over the endpoints.
struct ClientIndex<'a> {
    /// The masters: below a port first, then root-bus functions, each in
    /// BDF order. Positions in this list order everything below.
    clients: Vec<&'a Endpoint>,
    /// The root port above each client.
    top: Vec<Option<DeviceId>>,
    /// Members (positions, ascending) of each near class.
    near: Vec<Vec<usize>>,
    /// The near classes below each root port, by first member.
    near_of_top: HashMap<DeviceId, Vec<usize>>,
    /// Members of each far class; the classes are in first-member order.
    far: Vec<Vec<usize>>,
}

/// The topmost bridge above `id` (its root port), `None` on a root bus.
fn root_port(topo: &Topology, id: DeviceId) -> Option<DeviceId> {
    let mut top = None;
    let mut at = topo.upstream(id);
    while let Some(b) = at {
        top = Some(b);
        at = topo.upstream(b);
    }
    top
}

/// Bits needed to address `x` (0 for 0).
fn bits(x: u64) -> u32 {
    u64::BITS - x.leading_zeros()
}

impl<'a> ClientIndex<'a> {
    fn new(a: &'a Assembly) -> Self {
        let topo = &a.machine.topology;
        let dev = |b: Bdf| topo.lookup(b).and_then(|id| Some((id, topo.device(id)?)));
        let mut clients: Vec<&Endpoint> = super::masters(a).collect();
        clients.sort_by_key(|e| dev(e.bdf).is_some_and(|(_, d)| d.parent.is_none()));
        let mut attrs: HashMap<Attrs, usize> = HashMap::new();
        let mut near_ids: HashMap<(DeviceId, usize), usize> = HashMap::new();
        let mut far_ids: HashMap<(HostBridgeId, usize), usize> = HashMap::new();
        let mut index = ClientIndex {
            clients: Vec::with_capacity(clients.len()),
            top: Vec::with_capacity(clients.len()),
            near: Vec::new(),
            near_of_top: HashMap::new(),
            far: Vec::new(),
        };
        for e in clients {
            let Some((id, d)) = dev(e.bdf) else {
                continue;
            };
            let pos = index.clients.len();
            let domain = a
                .iommu
                .as_ref()
                .and_then(|io| io.domains.get(&e.group))
                .map(|g| format!("{:?}", g.ty));
            let key = Attrs {
                backend: e.backend_name.clone(),
                domain,
                constraints: e.device.constraints(),
                coherent: d.coherent,
                untrusted: d.untrusted,
                acs_redirects: d.acs_redirects(),
            };
            let n = attrs.len();
            let at = *attrs.entry(key).or_insert(n);
            let top = root_port(topo, id);
            if let (Some(t), Some(parent)) = (top, d.parent) {
                let n = index.near.len();
                let c = *near_ids.entry((parent, at)).or_insert(n);
                if c == n {
                    index.near.push(Vec::new());
                    index.near_of_top.entry(t).or_default().push(c);
                }
                if let Some(m) = index.near.get_mut(c) {
                    m.push(pos);
                }
            }
            let n = index.far.len();
            let c = *far_ids.entry((d.host_bridge, at)).or_insert(n);
            if c == n {
                index.far.push(Vec::new());
            }
            if let Some(m) = index.far.get_mut(c) {
                m.push(pos);
            }
            index.clients.push(e);
            index.top.push(top);
        }
        index
    }

    /// The search keys of the provider range `[at, at + len)` of `bdf`.
    fn provider(&self, a: &Assembly, bdf: Bdf, at: PhysAddr, len: u64) -> Option<Provider> {
        let topo = &a.machine.topology;
        let id = topo.lookup(bdf)?;
        let d = topo.device(id)?;
        let own = a.ctx.policy(id.provider_id()).map(|_| id);
        let far = ProviderKey {
            parent: None,
            acs_redirects: false,
            host_bridge: d.host_bridge,
            start_bits: bits(at.raw()),
            end_bits: bits(at.raw().saturating_add(len.saturating_sub(1))),
            own,
        };
        Some(Provider {
            bdf,
            top: root_port(topo, id),
            near: ProviderKey {
                parent: d.parent,
                acs_redirects: d.acs_redirects(),
                ..far
            },
            far,
        })
    }

    /// The first client (position) for `p` whose decision satisfies
    /// `want`, with the decision: near classes, then far ones, each class
    /// judged once per provider key (`memo`) by its first member the
    /// provider may pair with.
    fn first(
        &self,
        p: &Provider,
        memo: &mut HashMap<(Class, ProviderKey), bool>,
        judge: &dyn Fn(usize) -> Option<Decision>,
        want: &dyn Fn(&Decision) -> bool,
    ) -> Option<(usize, Decision)> {
        let mut best: Option<(usize, Decision)> = None;
        let same_slot = |pos: usize| self.clients.get(pos).is_none_or(|e| e.bdf.same_slot(p.bdf));
        let near_p = |pos: usize| p.top.is_some() && self.top.get(pos).copied().flatten() == p.top;
        let near_classes = p.top.and_then(|t| self.near_of_top.get(&t));
        let near = near_classes
            .into_iter()
            .flatten()
            .filter_map(|&c| Some((Class::Near(c), self.near.get(c)?, p.near)));
        let far = self
            .far
            .iter()
            .enumerate()
            .map(|(c, m)| (Class::Far(c), m, p.far));
        for (class, members, key) in near.chain(far) {
            let limit = best.as_ref().map_or(usize::MAX, |b| b.0);
            let far_class = matches!(class, Class::Far(_));
            if members.first().is_none_or(|&f| f >= limit) {
                // Classes come in first-member order within near and far.
                if far_class {
                    break;
                }
                continue;
            }
            let eligible = |pos: &&usize| !same_slot(**pos) && (!far_class || !near_p(**pos));
            let mut rest = members
                .iter()
                .filter(eligible)
                .take_while(|&&pos| pos < limit);
            let Some(&e) = rest.next() else {
                continue;
            };
            let fits = match memo.get(&(class, key)) {
                Some(&fits) => fits,
                None => {
                    let d = judge(e)?;
                    let fits = want(&d);
                    memo.insert((class, key), fits);
                    if fits {
                        best = Some((e, d));
                    }
                    continue;
                }
            };
            if !fits {
                continue;
            }
            // The class fits: judge the member itself; should it differ
            // from its class after all, judge the rest one by one.
            for pos in std::iter::once(e).chain(rest.copied()) {
                let d = judge(pos)?;
                if want(&d) {
                    best = Some((pos, d));
                    break;
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dma_api::port::SegTarget;
    use dma_api::ErrorKind;
    use dma_sim::assembly::{AssemblyOptions, IommuMode};
    use dma_sim::machine::Machine;

    /// Every pair judged, in the search order: what [`pair`] must agree with.
    fn exhaustive(
        a: &Assembly,
        len: u64,
        dir: Direction,
        want: &dyn Fn(&Decision) -> bool,
    ) -> Option<(Bdf, Bdf, PhysAddr)> {
        let topo = &a.machine.topology;
        let root = |b: Bdf| {
            topo.lookup(b)
                .and_then(|id| topo.device(id))
                .is_some_and(|d| d.parent.is_none())
        };
        let mut clients: Vec<_> = super::super::masters(a).collect();
        clients.sort_by_key(|e| root(e.bdf));
        for (provider, at) in candidates(a, len).ok()? {
            for e in clients.iter().filter(|e| !e.bdf.same_slot(provider)) {
                if want(&e.device.explain_map(at, len, dir)) {
                    return Some((e.bdf, provider, at));
                }
            }
        }
        None
    }

    /// The class search picks what judging every pair picks, for each
    /// scenario's wish, on machines with switches, ACS redirects, host
    /// bridges that refuse reads, several host bridges and root-bus
    /// endpoints, in every IOMMU mode.
    #[test]
    fn class_search_picks_what_every_pair_picks() {
        let gen = |shape| {
            let spec = crate::gen::GenSpec {
                functions: 300,
                shape,
                providers: Some(20),
            };
            let text = crate::gen::machine_toml(&spec).unwrap();
            Machine::from_toml_str("gen", &text).unwrap()
        };
        let mut machines = vec![
            Machine::reference().unwrap(),
            gen(crate::gen::Shape::Switch),
            gen(crate::gen::Shape::Flat),
        ];
        for f in ["amd-zen-two-gpus", "arm64-soc", "s390x-zpci"] {
            let p = format!("{}/examples/machines/{f}.toml", env!("CARGO_MANIFEST_DIR"));
            machines.push(Machine::from_path(std::path::Path::new(&p)).unwrap());
        }
        let wants: [&dyn Fn(&Decision) -> bool; 4] = [
            &|d| matches!(d.target, Some((_, SegTarget::PeerBus(_)))) && d.error.is_none(),
            &|d| matches!(d.target, Some((_, SegTarget::PeerHostBridge))) && d.error.is_none(),
            &super::super::refused_read::read_refused,
            &|d| {
                d.error
                    .as_ref()
                    .is_some_and(|e| e.kind() == ErrorKind::Fallback)
            },
        ];
        let mut found = 0;
        for m in &machines {
            for mode in [IommuMode::Strict, IommuMode::Off] {
                let options = AssemblyOptions {
                    iommu: mode,
                    ..AssemblyOptions::default()
                };
                let Ok(a) = Assembly::build(m.clone(), options) else {
                    continue;
                };
                for dir in [Direction::ToDevice, Direction::FromDevice] {
                    for (w, want) in wants.iter().enumerate() {
                        let got = pair(&a, 0x1000, dir, want)
                            .ok()
                            .flatten()
                            .map(|p| (p.client, p.provider, p.at));
                        let all = exhaustive(&a, 0x1000, dir, want);
                        assert_eq!(got, all, "{} {mode:?} {dir:?} want {w}", m.name);
                        found += usize::from(got.is_some());
                    }
                }
            }
        }
        assert!(found >= 20, "only {found} searches found a pair");
    }
}
