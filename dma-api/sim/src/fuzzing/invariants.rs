//! The invariants, checked through the fabric after every step.
//!
//! Nothing here asks the code under test what it did. Bytes are moved by
//! the simulated devices and read back by the simulated CPU; reach is
//! probed with `Fabric::route_of` (the route a TLP would take, IOMMU
//! included); the only state read from the implementation is at the end,
//! when everything was unmapped and every counter must be back where it
//! started (IOVA space, page-table leaves, swiotlb slots, dma-debug).
//!
//! * every live mapping moves exactly its bytes, between its DMA addresses
//!   and where they must land, in each direction its direction allows (with
//!   the syncs the DMA API prescribes), and a device write to a read-only
//!   (`ToDevice`) IOMMU mapping faults;
//! * a device whose group translates reaches nothing through the IOMMU that
//!   no live mapping of its group explains (same IOVA page, same physical
//!   page, or a swiotlb slot), probed at every mapping's edges and at random
//!   addresses;
//! * an unmap in a strict domain faults at once; in a lazy domain a stale
//!   translation may still work, but only to the old memory and only until
//!   the flush-queue timeout has passed;
//! * no two live IOVA allocations of a group overlap (a stale translation
//!   whose IOVA was handed out again must be gone: the new mapping's bytes
//!   say so, and it explains nothing any more);
//! * after an ACS change or a re-added device, the cached P2P verdicts equal
//!   the oracle's fresh ones;
//! * after unmapping everything: IOVA allocations, page-table leaves,
//!   swiotlb slots, dma-debug entries and drop errors are back to the start.

use super::harness::{Handle, Run, Span, PAGE};
use super::ops::Op;
use crate::fabric::{Hop, Translation};
use dma_api::p2p::calc_map_type_and_dist;
use dma_api::{Bdf, Direction, DmaAddr, PhysAddr};
use dma_iommu::domain::PER_CPU_FQ_TIMEOUT;
use dma_iommu::GroupId;
use std::collections::BTreeMap;

/// The state every domain must return to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// Allocated IOVA ranges and page-table leaves, by group.
    domains: BTreeMap<GroupId, (Vec<(u64, u64)>, usize)>,
}

fn pattern(land: u64, epoch: u64) -> u8 {
    let x = land
        .wrapping_mul(0x9e37_79b9)
        .wrapping_add(epoch.wrapping_mul(0x85eb_ca6b));
    ((x >> 13) as u8) ^ (land as u8) ^ 0x5a
}

/// The windows of a span checked: up to 16 bytes at each end.
fn windows(s: &Span) -> Vec<(u64, u64, usize)> {
    let n = s.len.min(16);
    let mut v = vec![(s.dma, s.land, n as usize)];
    if s.len > 16 {
        let off = s.len - n;
        v.push((s.dma + off, s.land + off, n as usize));
    }
    v
}

/// The physical address the IOMMU translated to on the route, if the route
/// went through the IOMMU.
fn iommu_target(hops: &[Hop]) -> Option<u64> {
    hops.iter().find_map(|h| match h {
        Hop::Translate {
            by: Translation::Iommu,
            to,
            ..
        } => Some(to.raw()),
        _ => None,
    })
}

/// The spans of `bdf` that go through the IOMMU now (bus-address peer
/// spans do not), probed through the fabric.
pub(crate) fn translated(run: &Run<'_>, bdf: Bdf, spans: &[Span], dir: Direction) -> Vec<Span> {
    spans
        .iter()
        .filter(|s| {
            run.a
                .fabric
                .route_of(bdf, DmaAddr::new(s.dma), dir == Direction::FromDevice)
                .ok()
                .as_deref()
                .and_then(iommu_target)
                .is_some()
        })
        .copied()
        .collect()
}

/// Syncs live mapping `i` (all of it) for the CPU or the device, as a
/// driver must before it touches the bytes.
pub(crate) fn sync_live(run: &mut Run<'_>, i: usize, for_cpu: bool) -> Result<(), String> {
    let live = &run.lives[i];
    let Some(dev) = run.devs.iter().find(|d| d.bdf == live.dev) else {
        return Ok(());
    };
    let d = &dev.device;
    let r = match &live.handle {
        Handle::Single { dma, len } => {
            if for_cpu {
                d.sync_single_for_cpu(*dma, *len, live.dir)
            } else {
                d.sync_single_for_device(*dma, *len, live.dir)
            }
        }
        Handle::Table(t) => {
            if for_cpu {
                d.sync_sgtable_for_cpu(t, live.dir)
            } else {
                d.sync_sgtable_for_device(t, live.dir)
            }
        }
        Handle::Coherent { .. } => Ok(()),
        // Links are page-aligned whole pages, which no backend bounces;
        // `dma_iova_sync` ran at link time (there is no CPU sync of a link
        // in the DMA API: dma-debug would call it a sync of nothing).
        Handle::Iova { .. } => Ok(()),
    };
    r.map_err(|e| format!("sync of a live mapping of {} failed: {e}", live.dev))
}

/// The spans of live `i` with the direction each allows.
fn live_spans(run: &Run<'_>, i: usize) -> Vec<(Span, Direction)> {
    let live = &run.lives[i];
    match &live.handle {
        Handle::Iova { links, .. } => links.iter().map(|l| (l.span, l.dir)).collect(),
        _ => live.spans.iter().map(|s| (*s, live.dir)).collect(),
    }
}

/// Faults of a peer route the P2P oracle cannot see, by design: Linux's
/// `calc_map_type_and_dist` knows redirect bits only, not ACS Upstream
/// Forwarding nor the egress vector, so with some ACS settings the route it
/// picks is refused by the switch (`LoopbackRefused`, `AcsBlocked`). Real
/// hardware does the same; the mapping layer matches Linux.
fn oracle_blind(f: &crate::fabric::FabricFault) -> bool {
    use crate::fabric::FaultReason;
    matches!(
        f.reason,
        FaultReason::LoopbackRefused { .. } | FaultReason::AcsBlocked { .. }
    )
}

/// Which checks a pass runs: after step `k`, the state that step made in
/// full and a sample of the older state; at the end of the case,
/// everything.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scope {
    Step(usize),
    All,
}

impl Scope {
    /// Is live mapping `l` checked in full?
    fn fresh(self, l: &super::harness::Live) -> bool {
        match self {
            Scope::Step(k) => l.born == k,
            Scope::All => true,
        }
    }
}

/// Older live mappings whose bytes a step moves again (the ones the step
/// made or linked into are always moved).
const OLD_LIVES_PER_STEP: usize = 2;
/// Older edges (of live and stale mappings) a step probes again.
const OLD_EDGES_PER_STEP: usize = 16;
/// Translating devices, besides those of the mappings a step made, that
/// probe after the step.
const OTHER_DEVS_PER_STEP: usize = 3;

/// `n` indices below `len` drawn from the run's generator (deterministic
/// from the input).
fn sample(run: &mut Run<'_>, len: usize, n: usize) -> Vec<usize> {
    if len == 0 {
        return Vec::new();
    }
    (0..n.min(len))
        .map(|_| (run.next_rand() % len as u64) as usize)
        .collect()
}

/// Bytes: every live mapping in `scope` (and a sample of the older ones)
/// moves its bytes both ways its direction allows.
fn bytes(run: &mut Run<'_>, scope: Scope) -> Result<(), String> {
    let (mut which, old): (Vec<usize>, Vec<usize>) =
        (0..run.lives.len()).partition(|&i| scope.fresh(&run.lives[i]));
    for k in sample(run, old.len(), OLD_LIVES_PER_STEP) {
        which.push(old[k]);
    }
    which.sort_unstable();
    which.dedup();
    for i in which {
        live_bytes(run, i)?;
    }
    Ok(())
}

/// Live mapping `i` moves its bytes both ways its direction allows, and a
/// read-only IOMMU mapping refuses device writes.
fn live_bytes(run: &mut Run<'_>, i: usize) -> Result<(), String> {
    let bdf = run.lives[i].dev;
    let spans = live_spans(run, i);
    let translating = run
        .group_of(bdf)
        .is_some_and(|g| run.translating.contains(&g));
    // Device to memory.
    if spans.iter().any(|(_, d)| d.device_writes()) {
        run.epoch += 1;
        let epoch = run.epoch;
        let mut wrote = Vec::new();
        for (s, d) in spans.iter().filter(|(_, d)| d.device_writes()) {
            for (dma, land, n) in windows(s) {
                let data: Vec<u8> = (0..n as u64).map(|k| pattern(land + k, epoch)).collect();
                match run.a.fabric.dma_write(bdf, DmaAddr::new(dma), &data) {
                        Ok(()) => {}
                        Err(f) if oracle_blind(&f) => continue,
                        Err(f) => return Err(format!(
                            "{bdf} writing its live {d:?} mapping at DMA {dma:#x} (landing at {land:#x}) faulted: {f}"
                        )),
                    }
                wrote.push((dma, land, data));
                run.stats.windows += 1;
            }
        }
        sync_live(run, i, true)?;
        for (dma, land, data) in wrote {
            let mut got = vec![0u8; data.len()];
            run.a
                .fabric
                .cpu_read(PhysAddr::new(land), &mut got)
                .map_err(|e| format!("CPU read at {land:#x} failed: {e}"))?;
            if got != data {
                return Err(format!(
                        "{bdf} wrote {} bytes at DMA {dma:#x}; they must land at {land:#x} but the CPU reads {got:02x?} there, not {data:02x?}",
                        data.len()
                    ));
            }
        }
    }
    // Memory to device.
    if spans.iter().any(|(_, d)| d.device_reads()) {
        run.epoch += 1;
        let epoch = run.epoch;
        let mut wrote = Vec::new();
        for (s, _) in spans.iter().filter(|(_, d)| d.device_reads()) {
            for (dma, land, n) in windows(s) {
                let data: Vec<u8> = (0..n as u64).map(|k| pattern(land + k, epoch)).collect();
                run.a
                    .fabric
                    .cpu_write(PhysAddr::new(land), &data)
                    .map_err(|e| format!("CPU write at {land:#x} failed: {e}"))?;
                wrote.push((dma, land, data));
            }
        }
        sync_live(run, i, false)?;
        for (dma, land, data) in wrote {
            let mut got = vec![0u8; data.len()];
            match run.a.fabric.dma_read(bdf, DmaAddr::new(dma), &mut got) {
                    Ok(()) => {}
                    Err(f) if oracle_blind(&f) => continue,
                    Err(f) => return Err(format!(
                        "{bdf} reading its live mapping at DMA {dma:#x} (memory at {land:#x}) faulted: {f}"
                    )),
                }
            run.stats.windows += 1;
            if got != data {
                return Err(format!(
                        "{bdf} read DMA {dma:#x}, which must carry the bytes at {land:#x} ({data:02x?}), and got {got:02x?}"
                    ));
            }
        }
    }
    // A read-only IOMMU mapping refuses device writes.
    if translating {
        for (s, d) in &spans {
            if *d != Direction::ToDevice {
                continue;
            }
            let routed = run.a.fabric.route_of(bdf, DmaAddr::new(s.dma), false);
            if routed.ok().as_deref().and_then(iommu_target).is_none() {
                continue;
            }
            if run
                .a
                .fabric
                .route_of(bdf, DmaAddr::new(s.dma), true)
                .is_ok()
            {
                return Err(format!(
                    "{bdf} may write its to-device (read-only) mapping at DMA {:#x}",
                    s.dma
                ));
            }
        }
    }
    Ok(())
}

/// Drops stale translations whose flush window is over.
fn expire(run: &mut Run<'_>) {
    let timeout = PER_CPU_FQ_TIMEOUT.as_millis() as u64;
    let now = run.now_ms;
    run.stale.retain(|s| now - s.at_ms < timeout);
}

/// Does a translation of `addr` to `to` in `group` have an explanation?
fn explained(run: &Run<'_>, group: GroupId, addr: u64, to: u64) -> bool {
    let fits = |s: &Span| {
        let lo = s.dma & !(PAGE - 1);
        let hi = (s.dma + s.len).div_ceil(PAGE) * PAGE;
        if addr < lo || addr >= hi {
            return false;
        }
        let want = s.land.wrapping_add(addr.wrapping_sub(s.dma));
        want == to || run.a.swiotlb.contains(PhysAddr::new(to))
    };
    let live = run
        .lives
        .iter()
        .filter(|l| run.group_of(l.dev) == Some(group))
        .any(|l| l.spans.iter().any(fits));
    let reused = |s: &Span| {
        run.lives
            .iter()
            .filter(|l| run.group_of(l.dev) == Some(group))
            .flat_map(|l| l.spans.iter())
            .any(|x| x.dma < s.dma + s.len && s.dma < x.dma + x.len)
    };
    live || run
        .stale
        .iter()
        .filter(|s| s.group == group)
        .flat_map(|s| s.spans.iter())
        .any(|s| fits(s) && !reused(s))
}

/// Every device of a translating group (or of `only`).
fn translating_devs(run: &Run<'_>, only: Option<GroupId>) -> Vec<(Bdf, GroupId)> {
    run.devs
        .iter()
        .filter(|d| run.translating.contains(&d.group))
        .filter(|d| only.is_none_or(|g| d.group == g))
        .map(|d| (d.bdf, d.group))
        .collect()
}

/// Probes `addrs` from every device of a translating group (or of `only`).
fn probe(run: &mut Run<'_>, addrs: &[u64], only: Option<GroupId>) -> Result<(), String> {
    let devs = translating_devs(run, only);
    probe_from(run, addrs, &devs)
}

/// Probes `addrs` from `devs`.
fn probe_from(run: &mut Run<'_>, addrs: &[u64], devs: &[(Bdf, GroupId)]) -> Result<(), String> {
    expire(run);
    for &(bdf, g) in devs {
        for &a in addrs {
            run.stats.probes += 1;
            let Ok(hops) = run.a.fabric.route_of(bdf, DmaAddr::new(a), false) else {
                continue;
            };
            let Some(to) = iommu_target(&hops) else {
                continue;
            };
            if !explained(run, g, a, to) {
                return Err(format!(
                    "{bdf} reaches physical {to:#x} through the IOMMU at DMA {a:#x}, which no live mapping of its group explains"
                ));
            }
        }
    }
    Ok(())
}

fn edges(spans: &[Span], out: &mut Vec<u64>) {
    for s in spans {
        let end = s.dma + s.len;
        let lo = s.dma & !(PAGE - 1);
        let hi = end.div_ceil(PAGE) * PAGE;
        out.extend([s.dma, end - 1, lo, hi - 1]);
        out.extend(
            [s.dma.checked_sub(1), lo.checked_sub(1), Some(end), Some(hi)]
                .into_iter()
                .flatten(),
        );
    }
}

/// Reach: nothing translated that no live mapping explains. After a step:
/// the edges of the mappings the step made, a sample of the older edges
/// (live and stale) and random addresses, from the new mappings' devices
/// and a few other translating devices drawn at random; at the end of the
/// case every edge from every device.
fn reach(run: &mut Run<'_>, scope: Scope) -> Result<(), String> {
    let (mut addrs, mut old) = (Vec::new(), Vec::new());
    let mut fresh_devs = Vec::new();
    for l in &run.lives {
        let out = if scope.fresh(l) {
            fresh_devs.push(l.dev);
            &mut addrs
        } else {
            &mut old
        };
        edges(&l.spans, out);
        if let Handle::Iova { state, .. } = &l.handle {
            let b = state.base.raw();
            out.extend([b, b + state.size - 1, b + state.size]);
        }
    }
    for s in &run.stale {
        edges(&s.spans, &mut old);
    }
    match scope {
        Scope::All => addrs.extend(old),
        Scope::Step(_) => {
            for k in sample(run, old.len(), OLD_EDGES_PER_STEP) {
                addrs.push(old[k]);
            }
        }
    }
    for _ in 0..4 {
        let r = run.next_rand();
        let a = match r % 4 {
            0 => (r >> 8) % (1 << 32),
            1 => (1u64 << 32) - ((r >> 8) % 64 + 1) * PAGE,
            2 => (r >> 8) % (1 << 48),
            _ => (1u64 << 48) - ((r >> 8) % 64 + 1) * PAGE,
        };
        addrs.push(a);
    }
    if run.history.len() < 4096 {
        run.history.extend(addrs.iter().copied().take(16));
    }
    addrs.sort_unstable();
    match scope {
        Scope::All => addrs.dedup(),
        // The IOMMU translates whole pages: within a step one address per
        // page tells (the end of the case probes every edge).
        Scope::Step(_) => addrs.dedup_by_key(|a| *a / PAGE),
    }
    let all = translating_devs(run, None);
    let devs = match scope {
        Scope::All => all,
        Scope::Step(_) => {
            let mut devs: Vec<(Bdf, GroupId)> = sample(run, all.len(), OTHER_DEVS_PER_STEP)
                .into_iter()
                .map(|k| all[k])
                .collect();
            devs.extend(all.iter().filter(|(b, _)| fresh_devs.contains(b)));
            devs.sort_unstable();
            devs.dedup();
            devs
        }
    };
    probe_from(run, &addrs, &devs)
}

/// Right after an unmap: the unmapped range is unreachable (strict) or
/// reachable only as the stale old translation (lazy).
pub(crate) fn after_unmap(
    run: &mut Run<'_>,
    group: Option<GroupId>,
    spans: &[Span],
) -> Result<(), String> {
    let Some(g) = group.filter(|g| run.translating.contains(g)) else {
        return Ok(());
    };
    let mut addrs = Vec::new();
    edges(spans, &mut addrs);
    // Probed again at the end, when every flush queue has drained.
    if run.history.len() < 4096 {
        run.history.extend(addrs.iter().copied());
    }
    probe(run, &addrs, Some(g))
}

/// No two live IOVA allocations of a group overlap. Whether a span goes
/// through the IOMMU is remembered per (device, DMA address, write) until
/// a re-add or an ACS write may change routes (`Run::via_iommu`).
fn overlap(run: &mut Run<'_>) -> Result<(), String> {
    let mut by_group: BTreeMap<GroupId, Vec<(u64, u64, usize)>> = BTreeMap::new();
    for (i, l) in run.lives.iter().enumerate() {
        let Some(g) = run.group_of(l.dev).filter(|g| run.translating.contains(g)) else {
            continue;
        };
        let v = by_group.entry(g).or_default();
        if let Handle::Iova { state, .. } = &l.handle {
            v.push((state.base.raw(), state.base.raw() + state.size, i));
            continue;
        }
        for s in &l.spans {
            let key = (l.dev, s.dma, l.dir == Direction::FromDevice);
            let via = *run.via_iommu.entry(key).or_insert_with(|| {
                let routed = run.a.fabric.route_of(l.dev, DmaAddr::new(s.dma), key.2);
                routed.ok().as_deref().and_then(iommu_target).is_some()
            });
            if !via {
                continue;
            }
            let lo = s.dma & !(PAGE - 1);
            v.push((lo, (s.dma + s.len).div_ceil(PAGE) * PAGE, i));
        }
    }
    for (g, mut v) in by_group {
        v.sort_unstable();
        for w in v.windows(2) {
            let (a, b) = (w[0], w[1]);
            if b.0 < a.1 && a.2 != b.2 {
                let what = |t: usize| match run.lives.get(t) {
                    Some(l) => format!("live mapping of {} ({})", l.dev, l.kind()),
                    None => format!(
                        "unmapped at {} ms, not yet flushed",
                        run.stale.get(usize::MAX - t).map_or(0, |s| s.at_ms)
                    ),
                };
                return Err(format!(
                    "group {}: IOVA [{:#x}, {:#x}) ({}) and [{:#x}, {:#x}) ({}) overlap (now {} ms)",
                    g.0, a.0, a.1, what(a.2), b.0, b.1, what(b.2), run.now_ms
                ));
            }
        }
    }
    Ok(())
}

/// Cached P2P verdicts equal the oracle's fresh ones.
fn verdicts(run: &Run<'_>) -> Result<(), String> {
    let topo = run.a.ctx.topology.read();
    let ids: Vec<_> = topo
        .devices()
        .filter(|(_, d)| !d.port.is_bridge())
        .map(|(id, d)| (id, d.bdf))
        .collect();
    let mut cache = run.a.ctx.route_cache.lock();
    for &(p, pb) in &ids {
        for &(c, cb) in &ids {
            let cached = cache.verdict(&topo, p, c).map_err(|e| e.to_string());
            let fresh = calc_map_type_and_dist(&topo, p, c)
                .map(|r| r.verdict)
                .map_err(|e| e.to_string());
            if cached != fresh {
                return Err(format!(
                    "P2P verdict {pb} -> {cb}: cached {cached:?}, fresh oracle {fresh:?}"
                ));
            }
        }
    }
    Ok(())
}

/// Every check after step `step` (`op`): the state the step made in full,
/// the older state sampled (deterministically from the input).
pub(crate) fn after_step(run: &mut Run<'_>, op: &Op, step: usize) -> Result<(), String> {
    bytes(run, Scope::Step(step))?;
    reach(run, Scope::Step(step))?;
    overlap(run)?;
    if matches!(op, Op::SetAcs { .. } | Op::Replug { .. }) {
        verdicts(run)?;
    }
    Ok(())
}

/// Every check over the whole state: every live mapping's bytes, every
/// edge probed from every translating device (at the end of a case,
/// before the teardown).
pub(crate) fn full(run: &mut Run<'_>) -> Result<(), String> {
    bytes(run, Scope::All)?;
    reach(run, Scope::All)?;
    overlap(run)
}

/// IOVA allocations and page-table leaves of every translating domain.
pub(crate) fn snapshot(run: &Run<'_>) -> Snapshot {
    let mut s = Snapshot::default();
    let Some(io) = &run.a.iommu else {
        return s;
    };
    let iommu = io.iommu.lock().unwrap_or_else(|e| e.into_inner());
    for (g, gd) in &io.domains {
        let Some(dd) = &gd.dma else { continue };
        dd.iovad().flush_all();
        let ranges = dd.iovad().with_domain(|d| {
            d.allocated_ranges()
                .iter()
                .map(|r| (r.start().raw(), r.len()))
                .collect()
        });
        let leaves = iommu.page_table(gd.id).map_or(0, |pt| pt.leaf_count());
        s.domains.insert(*g, (ranges, leaves));
    }
    s
}

/// After everything was unmapped (or before anything was mapped): the
/// machine is back at its start.
pub(crate) fn at_end(run: &mut Run<'_>) -> Result<(), String> {
    if !run.lives.is_empty() {
        return Err(format!(
            "{} mappings still live at the end",
            run.lives.len()
        ));
    }
    for d in &run.devs {
        let dev = &d.device;
        let n = (dev.live_singles(), dev.live_tables(), dev.live_coherent());
        if n != (0, 0, 0) {
            return Err(format!(
                "{} still holds (singles, tables, coherent) = {n:?} after every unmap",
                d.bdf
            ));
        }
        if let Some(dbg) = &d.debug {
            if dbg.active_count() != 0 {
                return Err(format!(
                    "dma-debug of {} still tracks {} mappings after every unmap",
                    d.bdf,
                    dbg.active_count()
                ));
            }
            // Overlapping buffers are the sequence's doing (it maps the same
            // memory twice on purpose), not the implementation's.
            let reports: Vec<_> = dbg
                .reports()
                .into_iter()
                .filter(|r| !matches!(r, dma_api::debug::DebugReport::CachelineOverlap { .. }))
                .collect();
            if !reports.is_empty() {
                return Err(format!("dma-debug of {} reported {reports:?}", d.bdf));
            }
        }
    }
    let tlb = &run.a.swiotlb;
    if tlb.used_slots() != 0 || tlb.live_mappings() != 0 {
        return Err(format!(
            "swiotlb still has {} slots in {} mappings after every unmap",
            tlb.used_slots(),
            tlb.live_mappings()
        ));
    }
    let drops = run.a.ctx.take_drop_errors();
    if !drops.is_empty() {
        return Err(format!("errors reported from drops: {drops:?}"));
    }
    let now = snapshot(run);
    match run.start.clone() {
        None => run.start = Some(now),
        Some(start) => {
            // Nothing is mapped any more, so one address per IOMMU page
            // tells, from one device of each translating group (every
            // device probed every edge before the teardown).
            let mut addrs: Vec<u64> = core::mem::take(&mut run.history)
                .into_iter()
                .map(|a| a & !(PAGE - 1))
                .collect();
            addrs.sort_unstable();
            addrs.dedup();
            let mut reps = translating_devs(run, None);
            reps.sort_by_key(|&(b, g)| (g, b));
            reps.dedup_by_key(|&mut (_, g)| g);
            probe_from(run, &addrs, &reps)?;
            for (g, (ranges, leaves)) in &now.domains {
                let (want_ranges, want_leaves) = start
                    .domains
                    .get(g)
                    .cloned()
                    .unwrap_or_else(|| (ranges.clone(), 0));
                if *leaves != want_leaves {
                    return Err(format!(
                        "group {}: {leaves} page-table leaves after every unmap, {want_leaves} at the start",
                        g.0
                    ));
                }
                if *ranges != want_ranges {
                    return Err(format!(
                        "group {}: IOVA allocations {ranges:x?} after every unmap, {want_ranges:x?} at the start",
                        g.0
                    ));
                }
            }
        }
    }
    Ok(())
}
