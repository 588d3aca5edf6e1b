//! Per-segment dispatch by kind (RFC §5.7): one decision per segment,
//! from the kind recorded in the segment — no per-page lookups.
//!
//! * `Ram` → [`SegTarget::Ram`], no lock taken.
//! * `PeerBar(p)` → only a range `p` registered as p2pmem is peer memory
//!   (else [`DmaError::NotPeerMemory`]); then the range's policy (or the
//!   owner's) first (refuse → typed fallback,
//!   redirect → RAM at the redirected address), then the P2P oracle through
//!   the route cache with the direction's access (`ToDevice`: the client
//!   reads, `FromDevice`: it writes, `Bidirectional`: both), then the arch's
//!   veto; bus route → [`SegTarget::PeerBus`] with the BAR's bus address +
//!   offset, host-bridge route → [`SegTarget::PeerHostBridge`].
//! * `StolenRam(owner)` → RAM: at the owner's redirect, or in place when the
//!   owner allows (the carve-out *is* RAM); never MMIO.
//! * `DevicePrivate(owner)` → only an owner redirect (it migrated the data to
//!   RAM) makes it mappable; otherwise [`DmaError::DevicePrivate`], a
//!   `Fallback`: migrate to system RAM first (mm/hmm.c semantics).
//!
//! Linux equivalent: `pci_p2pdma_state()` per sg entry in
//! kernel/dma/direct.c `dma_direct_map_sg` / drivers/iommu/dma-iommu.c, with
//! the map type from drivers/pci/p2pdma.c `__pci_p2pdma_update_state`.

use super::context::DmaContext;
use super::decision::{ArchStep, Decision, RouteStep};
use crate::arch_port::PeerRoute;
use crate::bdf::Bdf;
use crate::direction::Direction;
use crate::error::DmaError;
use crate::memmap::MemoryMap;
use crate::p2p::{calc_map_type_and_dist, MapType, P2pMemRegistry, RouteCache};
use crate::port::{PolicyDecision, ProviderPolicy, SegPlan, SegTarget};
use crate::sync::{MutexGuard, RwLockReadGuard};
use crate::topology::{DeviceId, Topology};
use crate::types::{BusAddr, PhysAddr, ProviderId, SegKind};
use alloc::collections::BTreeMap;
use alloc::string::ToString;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// Locks taken lazily, once per table, the first time a non-RAM segment
/// needs them (RAM-only tables take none).
pub(crate) struct Env<'a> {
    ctx: &'a DmaContext,
    topo: Option<RwLockReadGuard<'a, Topology>>,
    memmap: Option<RwLockReadGuard<'a, MemoryMap>>,
    cache: Option<MutexGuard<'a, RouteCache>>,
    policies: Option<RwLockReadGuard<'a, BTreeMap<ProviderId, Arc<dyn ProviderPolicy>>>>,
    p2pmem: Option<RwLockReadGuard<'a, P2pMemRegistry>>,
    range_policies: Option<RangePolicies<'a>>,
    /// The last peer provider decided in this environment: consecutive
    /// segments of one provider skip the oracle, arch and BAR lookups (the
    /// locks held make the memo exact). The policy is still asked per
    /// segment.
    memo: Option<PeerMemo>,
}

type RangePolicies<'a> = RwLockReadGuard<'a, BTreeMap<(ProviderId, u64), Arc<dyn ProviderPolicy>>>;

struct PeerMemo {
    provider: ProviderId,
    dir: Direction,
    owner_bdf: Bdf,
    route: MemoRoute,
}

enum MemoRoute {
    HostBridge,
    Bus {
        bar_start: PhysAddr,
        bar_size: u64,
        bus_base: BusAddr,
    },
}

impl PeerMemo {
    /// The target for `[phys, phys + len)` if the memo covers it.
    fn target(&self, phys: PhysAddr, len: u64) -> Option<SegTarget> {
        match self.route {
            MemoRoute::HostBridge => Some(SegTarget::PeerHostBridge),
            MemoRoute::Bus {
                bar_start,
                bar_size,
                bus_base,
            } => {
                let off = phys.offset_from(bar_start)?;
                (off < bar_size && len <= bar_size - off)
                    .then(|| bus_base.checked_add(off).map(SegTarget::PeerBus))
                    .flatten()
            }
        }
    }
}

impl<'a> Env<'a> {
    pub(crate) fn new(ctx: &'a DmaContext) -> Self {
        Self {
            ctx,
            topo: None,
            memmap: None,
            cache: None,
            policies: None,
            p2pmem: None,
            range_policies: None,
            memo: None,
        }
    }

    pub(crate) fn memmap(&mut self) -> &MemoryMap {
        let ctx = self.ctx;
        self.memmap.get_or_insert_with(|| ctx.memmap.read())
    }

    /// Takes the topology lock now (if not yet held), ahead of the memory
    /// map: the context's lock order.
    pub(crate) fn ensure_topo(&mut self) {
        if self.topo.is_none() {
            self.topo = Some(self.ctx.topology.read());
        }
    }

    fn policy(&mut self, p: ProviderId) -> Option<Arc<dyn ProviderPolicy>> {
        let ctx = self.ctx;
        self.policies
            .get_or_insert_with(|| ctx.policies.read())
            .get(&p)
            .cloned()
    }

    /// For a peer BAR range: `Ok(policy)` (the registered range's own, else
    /// the owner's) if `owner` registered a p2pmem range holding all of it;
    /// `Err(())` if not — the range is not peer memory.
    fn peer_policy(
        &mut self,
        owner: ProviderId,
        phys: PhysAddr,
        len: u64,
    ) -> Result<Option<Arc<dyn ProviderPolicy>>, ()> {
        let ctx = self.ctx;
        // The context's lock order: topology, memmap, policies, then the
        // registry and its range policies.
        self.ensure_topo();
        self.memmap();
        self.policies.get_or_insert_with(|| ctx.policies.read());
        let start = self
            .p2pmem
            .get_or_insert_with(|| ctx.p2pmem.read())
            .resource_for(DeviceId::from_provider(owner), phys, len)
            .map(|r| r.phys.raw())
            .ok_or(())?;
        let own = self
            .range_policies
            .get_or_insert_with(|| ctx.range_policies.read())
            .get(&(owner, start))
            .cloned();
        Ok(own.or_else(|| self.policy(owner)))
    }

    fn owner_bdf(&mut self, owner: ProviderId, client_bdf: Bdf) -> Result<Bdf, DmaError> {
        self.ensure_topo();
        let topo = self
            .topo
            .as_deref()
            .ok_or(DmaError::UnknownDevice { bdf: client_bdf })?;
        let id = DeviceId::from_provider(owner);
        topo.device(id)
            .map(|d| d.bdf)
            .ok_or(DmaError::UnknownDeviceId { id })
    }

    fn not_peer_memory(&mut self, owner: ProviderId, phys: PhysAddr, len: u64) -> DmaError {
        self.ensure_topo();
        let topo = self.topo.as_deref();
        let id = DeviceId::from_provider(owner);
        // An owner missing from the topology is named by its id, never by a
        // made-up BDF.
        let Some(provider) = topo.and_then(|t| t.device(id)).map(|d| d.bdf) else {
            return DmaError::UnknownDeviceId { id };
        };
        let bar = topo
            .and_then(|t| t.bar_at(phys))
            .filter(|(id, _)| *id == DeviceId::from_provider(owner))
            .map(|(_, b)| b);
        DmaError::NotPeerMemory {
            provider,
            bar,
            phys,
            len,
        }
    }
}

/// Decides one segment for `client`. `trace` is filled when given (the
/// explain path); the fast path passes `None` and allocates nothing.
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan_segment(
    env: &mut Env<'_>,
    client: DeviceId,
    client_bdf: Bdf,
    phys: PhysAddr,
    len: u64,
    kind: SegKind,
    dir: Direction,
    mut trace: Option<&mut Decision>,
) -> Result<SegPlan, DmaError> {
    let owner = match kind {
        SegKind::Ram => {
            return Ok(SegPlan {
                phys,
                target: SegTarget::Ram,
            })
        }
        SegKind::PeerBar(p) | SegKind::StolenRam(p) | SegKind::DevicePrivate(p) => p,
    };
    // Peer memory is what its owner registered: a BAR range outside every
    // p2pmem range of its owner is not DMA-able by peers at all.
    let range_policy = match kind {
        SegKind::PeerBar(_) => match env.peer_policy(owner, phys, len) {
            Ok(p) => Some(p),
            Err(()) => return Err(env.not_peer_memory(owner, phys, len)),
        },
        _ => None,
    };
    if trace.is_none() && matches!(kind, SegKind::PeerBar(_)) {
        let hit = env
            .memo
            .as_ref()
            .filter(|m| m.provider == owner && m.dir == dir)
            .and_then(|m| m.target(phys, len).map(|t| (t, m.owner_bdf)));
        if let Some((target, owner_bdf)) = hit {
            let policy = range_policy.clone().flatten();
            return match policy.map(|p| p.decide(client_bdf, phys, len, kind, dir)) {
                Some(PolicyDecision::Refuse(reason)) => Err(DmaError::ProviderRefused {
                    provider: owner_bdf,
                    client: client_bdf,
                    reason,
                }),
                Some(PolicyDecision::Redirect(to)) => {
                    redirect_to_ram(env, owner, owner_bdf, to, len)
                }
                Some(PolicyDecision::RedirectRanges(r)) => {
                    redirect_to_ranges(env, owner, owner_bdf, &r, len)
                }
                Some(PolicyDecision::Allow) | None => Ok(SegPlan { phys, target }),
            };
        }
    }
    let owner_id = DeviceId::from_provider(owner);
    let owner_bdf = env.owner_bdf(owner, client_bdf)?;
    let policy = match range_policy {
        Some(p) => p,
        None => env.policy(owner),
    };
    let decision = policy
        .as_ref()
        .map(|p| p.decide(client_bdf, phys, len, kind, dir));
    if let Some(t) = trace.as_deref_mut() {
        t.policy = decision.clone();
    }
    match decision {
        Some(PolicyDecision::Refuse(reason)) => {
            return Err(DmaError::ProviderRefused {
                provider: owner_bdf,
                client: client_bdf,
                reason,
            })
        }
        Some(PolicyDecision::Redirect(to)) => {
            return redirect_to_ram(env, owner, owner_bdf, to, len)
        }
        Some(PolicyDecision::RedirectRanges(r)) => {
            return redirect_to_ranges(env, owner, owner_bdf, &r, len)
        }
        Some(PolicyDecision::Allow) | None => {}
    }
    match kind {
        SegKind::StolenRam(_) => {
            return Ok(SegPlan {
                phys,
                target: SegTarget::Ram,
            })
        }
        SegKind::DevicePrivate(_) => {
            return Err(DmaError::DevicePrivate {
                owner: owner_bdf,
                phys,
                len,
            })
        }
        _ => {}
    }
    // Peer BAR: the oracle, per direction.
    let ctx = env.ctx;
    let topo = env
        .topo
        .as_deref()
        .ok_or(DmaError::UnknownDevice { bdf: client_bdf })?;
    let cache = env.cache.get_or_insert_with(|| ctx.route_cache.lock());
    let verdict = cache
        .verdict(topo, owner_id, client)
        .map_err(DmaError::from)?;
    let refused = verdict.map_type == MapType::NotSupported || !dir.permitted_by(&verdict);
    if refused || trace.is_some() {
        let route = calc_map_type_and_dist(topo, owner_id, client).map_err(DmaError::from)?;
        if let Some(t) = trace.as_deref_mut() {
            t.route = Some(RouteStep {
                provider: route.provider,
                map_type: route.verdict.map_type,
                distance: route.verdict.distance,
                read: route.verdict.read,
                write: route.verdict.write,
                reasons: route.reasons.iter().map(|r| r.to_string()).collect(),
            });
        }
        if refused {
            dir.check_route(&route)?;
            // The cache and a fresh computation disagree only if the topology
            // changed under us, which the read lock excludes.
            return Err(DmaError::P2pUnreachable {
                provider: route.provider,
                client: route.client,
                reasons: route.reasons.iter().map(|r| r.to_string()).collect(),
            });
        }
    }
    let (pdev, cdev) = match (topo.device(owner_id), topo.device(client)) {
        (Some(p), Some(c)) => (p, c),
        _ => return Err(DmaError::UnknownDevice { bdf: client_bdf }),
    };
    let peer_route = match verdict.map_type {
        MapType::BusAddr => PeerRoute::BusAddr,
        _ => PeerRoute::HostBridge,
    };
    let same_hb = pdev.host_bridge == cdev.host_bridge;
    let arch_res = ctx.arch.check_p2p(peer_route, same_hb);
    if let Some(t) = trace {
        t.arch = Some(match &arch_res {
            Err(DmaError::ArchNoP2p { arch, why }) => ArchStep::Vetoed { arch, why },
            _ => ArchStep::Allowed {
                arch: ctx.arch.name(),
            },
        });
    }
    arch_res?;
    let (target, route) = match peer_route {
        PeerRoute::HostBridge => (SegTarget::PeerHostBridge, MemoRoute::HostBridge),
        PeerRoute::BusAddr => {
            let unknown = DmaError::UnknownMemory { phys, len };
            let (bar_owner, idx) = topo.bar_at(phys).ok_or(unknown.clone())?;
            let bar = pdev.bar(idx).ok_or(unknown.clone())?;
            if bar_owner != owner_id {
                return Err(unknown);
            }
            let off = phys.offset_from(bar.addr).ok_or(unknown.clone())?;
            if len > bar.size.saturating_sub(off) {
                return Err(unknown);
            }
            let base = topo.bar_bus_addr(owner_id, idx)?;
            let bus = base.checked_add(off).ok_or(unknown)?;
            (
                SegTarget::PeerBus(bus),
                MemoRoute::Bus {
                    bar_start: bar.addr,
                    bar_size: bar.size,
                    bus_base: base,
                },
            )
        }
    };
    env.memo = Some(PeerMemo {
        provider: owner,
        dir,
        owner_bdf,
        route,
    });
    Ok(SegPlan { phys, target })
}

/// A redirect must land in system RAM: ordinary RAM, or the redirecting
/// owner's own stolen-RAM carve-out (an APU pointing its "BAR" at the RAM it
/// really is). Anything else — MMIO, another owner's carve-out,
/// device-private memory, unknown memory — is `BadRedirect`.
fn redirect_to_ram(
    env: &mut Env<'_>,
    owner: ProviderId,
    provider: Bdf,
    to: PhysAddr,
    len: u64,
) -> Result<SegPlan, DmaError> {
    match env.memmap().kind_of_range(to, len) {
        Some((_, SegKind::Ram)) => Ok(SegPlan {
            phys: to,
            target: SegTarget::Ram,
        }),
        Some((_, SegKind::StolenRam(o))) if o == owner => Ok(SegPlan {
            phys: to,
            target: SegTarget::Ram,
        }),
        _ => Err(DmaError::BadRedirect { provider, to, len }),
    }
}

/// A redirect to several ranges: each held to [`redirect_to_ram`]'s rules,
/// their lengths adding up to `len`. Adjacent ranges merge; one range left
/// is an ordinary redirect, several are [`DmaError::RedirectScattered`],
/// which the table and IOVA paths expand (one segment or link per range).
fn redirect_to_ranges(
    env: &mut Env<'_>,
    owner: ProviderId,
    provider: Bdf,
    ranges: &[(PhysAddr, u64)],
    len: u64,
) -> Result<SegPlan, DmaError> {
    let total = ranges
        .iter()
        .try_fold(0u64, |acc, &(_, l)| acc.checked_add(l));
    if total != Some(len) || ranges.iter().any(|&(_, l)| l == 0) {
        return Err(DmaError::RedirectLength {
            provider,
            asked: len,
            total,
        });
    }
    let mut pieces: Vec<(PhysAddr, u64)> = Vec::with_capacity(ranges.len());
    for &(to, l) in ranges {
        redirect_to_ram(env, owner, provider, to, l)?;
        match pieces.last_mut() {
            Some((start, n)) if start.checked_add(*n) == Some(to) => *n += l,
            _ => pieces.push((to, l)),
        }
    }
    match pieces.as_slice() {
        [(phys, _)] => Ok(SegPlan {
            phys: *phys,
            target: SegTarget::Ram,
        }),
        _ => Err(DmaError::RedirectScattered { provider, pieces }),
    }
}
