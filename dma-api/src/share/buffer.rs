//! The exported buffer: its ranges (classified by the memory map when it is
//! exported), its reservation with the attachments and live mappings, its
//! per-range provider policies, and the exporter-side operations: migrate,
//! revoke, restore.

use super::action::RangeVerdict;
use super::caps::Placement;
use super::error::ShareError;
use super::exporter::Exporter;
use super::fence::{Wait, WaitBudget};
use super::ids::{AttachId, BufferId, MapId};
use super::importer::{ImporterOps, Notice, NoticeKind};
use super::map::{self, LiveMap};
use super::policy::{Rule, SharePolicy};
use super::reason::Reason;
use super::resv::{Reservation, ResvGuard};
use super::{Action, Fence, ImporterCaps, Negotiation};
use crate::bdf::Bdf;
use crate::device::{DmaContext, DmaDevice};
use crate::port::{ProviderPolicy, SegTarget};
use crate::topology::DeviceId;
use crate::types::{PhysAddr, SegKind};
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

/// The page size multi-range exports are aligned to.
pub const SHARE_PAGE: u64 = 4096;

static NEXT_BUFFER: AtomicU64 = AtomicU64::new(1);

/// One exported range, with its kind from the memory map.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ExportRange {
    /// Start.
    pub phys: PhysAddr,
    /// Length in bytes.
    pub len: u64,
    /// What the memory map says it is.
    pub kind: SegKind,
}

/// Where a buffer's pages are.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Phase {
    /// Usable.
    Live,
    /// A revocation is waiting for importers.
    Revoking,
    /// Revoked: no attach or map until [`SharedBuffer::restore`].
    Revoked,
}

/// One importer's attachment, inside the reservation.
pub(crate) struct Att {
    pub(crate) dev: Arc<DmaDevice>,
    pub(crate) caps: ImporterCaps,
    pub(crate) ops: Arc<dyn ImporterOps>,
    pub(crate) negotiation: Negotiation,
    pub(crate) redirect: Option<Vec<(PhysAddr, u64)>>,
    /// The redirect lives in the buffer's provider policy (keyed by the
    /// importer's BDF) rather than in `redirect`.
    pub(crate) policy_redirect: bool,
    pub(crate) pinned: bool,
    pub(crate) fences: Vec<Fence>,
    pub(crate) acked: bool,
}

/// Everything the reservation guards.
pub(crate) struct State {
    pub(crate) phase: Phase,
    /// RAM copies after a migration, one per exported range.
    pub(crate) migrated: Option<Vec<(PhysAddr, u64)>>,
    pub(crate) atts: BTreeMap<AttachId, Att>,
    pub(crate) maps: BTreeMap<MapId, LiveMap>,
    pub(crate) next: u64,
}

impl State {
    pub(crate) fn next_id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}

pub(crate) struct Inner {
    pub(crate) id: BufferId,
    pub(crate) exporter: Arc<dyn Exporter>,
    pub(crate) exporter_bdf: Bdf,
    pub(crate) ctx: Arc<DmaContext>,
    pub(crate) ranges: Vec<ExportRange>,
    pub(crate) policies: Vec<Arc<SharePolicy>>,
    pub(crate) resv: Reservation<State>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for p in &self.policies {
            p.retire();
        }
    }
}

/// An exported buffer (Linux `struct dma_buf`). Clones share it; the last
/// one gone hands the buffer's ranges back to the policies it replaced.
#[derive(Clone)]
pub struct SharedBuffer(pub(crate) Arc<Inner>);

/// A [`SharedBuffer`] that does not keep it alive.
#[derive(Clone, Debug)]
pub struct WeakBuffer(alloc::sync::Weak<Inner>);

impl WeakBuffer {
    /// The buffer, if it still exists.
    pub fn upgrade(&self) -> Option<SharedBuffer> {
        self.0.upgrade().map(SharedBuffer)
    }
}

impl core::fmt::Debug for Inner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Inner")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl core::fmt::Debug for SharedBuffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SharedBuffer")
            .field("id", &self.0.id)
            .field("exporter", &self.0.exporter_bdf)
            .field("ranges", &self.0.ranges)
            .finish_non_exhaustive()
    }
}

impl SharedBuffer {
    /// `dma_buf_export`: publishes `ranges` of the exporter's memory. Each
    /// range is classified by the memory map and must be one range of it:
    /// system RAM, the exporter's own BAR (its registered p2pmem, or BAR
    /// space outside it — peers then cannot reach it, and the exporter
    /// migrates or refuses), or the exporter's stolen-RAM carve-out.
    /// Device-private memory and other devices' memory are refused. A
    /// multi-range export must be page aligned (each range is linked at its
    /// own running IOVA offset). The buffer installs its provider policy on
    /// every registered p2pmem range it touches.
    pub fn export(
        ctx: &Arc<DmaContext>,
        exporter: Arc<dyn Exporter>,
        ranges: &[(PhysAddr, u64)],
    ) -> Result<Self, ShareError> {
        let bdf = exporter.device();
        let me = ctx.provider_of(bdf)?;
        if ranges.is_empty() {
            return Err(ShareError::EmptyExport);
        }
        let mut out = Vec::with_capacity(ranges.len());
        for (index, &(phys, len)) in ranges.iter().enumerate() {
            if len == 0 {
                return Err(ShareError::ZeroLength { index, phys });
            }
            if ranges.len() > 1 && (phys.raw() | len) & (SHARE_PAGE - 1) != 0 {
                return Err(ShareError::Unaligned { index, phys, len });
            }
            let kind = ctx
                .memmap
                .read()
                .kind_of_range(phys, len)
                .map(|(_, k)| k)
                .ok_or(ShareError::UnknownMemory { index, phys, len })?;
            let mine = match kind {
                SegKind::Ram => true,
                SegKind::PeerBar(p) | SegKind::StolenRam(p) => p == me,
                SegKind::DevicePrivate(_) => false,
            };
            if !mine {
                return Err(ShareError::NotExportable {
                    index,
                    phys,
                    len,
                    kind,
                });
            }
            out.push(ExportRange { phys, len, kind });
        }
        let policies = install_policies(ctx, bdf, me, &out)?;
        Ok(Self(Arc::new(Inner {
            id: BufferId(NEXT_BUFFER.fetch_add(1, Ordering::Relaxed)),
            exporter,
            exporter_bdf: bdf,
            ctx: ctx.clone(),
            ranges: out,
            policies,
            resv: Reservation::new(State {
                phase: Phase::Live,
                migrated: None,
                atts: BTreeMap::new(),
                maps: BTreeMap::new(),
                next: 0,
            }),
        })))
    }

    /// A handle that does not keep the buffer alive (an exporter's list of
    /// its buffers: the buffer holds the exporter, so a strong list would
    /// be a cycle).
    pub fn downgrade(&self) -> WeakBuffer {
        WeakBuffer(Arc::downgrade(&self.0))
    }

    /// The DMA context it lives in.
    pub fn context(&self) -> &Arc<DmaContext> {
        &self.0.ctx
    }

    /// Its name.
    pub fn id(&self) -> BufferId {
        self.0.id
    }

    /// The exporting device.
    pub fn exporter(&self) -> Bdf {
        self.0.exporter_bdf
    }

    /// The exported ranges.
    pub fn ranges(&self) -> &[ExportRange] {
        &self.0.ranges
    }

    /// Total bytes.
    pub fn len(&self) -> u64 {
        self.0.ranges.iter().map(|r| r.len).sum()
    }

    /// True for no bytes (never: exports are not empty).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The phase (live, revoking, revoked).
    pub fn phase(&self) -> Result<Phase, ShareError> {
        Ok(self.0.resv.lock("phase", None)?.phase)
    }

    /// Where the data lives now: the exported ranges, or the RAM copies
    /// after a migration.
    pub fn placement_ranges(&self) -> Result<Vec<(PhysAddr, u64)>, ShareError> {
        let st = self.0.resv.lock("placement_ranges", None)?;
        Ok(self.0.current(&st))
    }

    /// Live attachments.
    pub fn attachments(&self) -> Result<usize, ShareError> {
        Ok(self.0.resv.lock("attachments", None)?.atts.len())
    }

    /// Live mappings of every attachment.
    pub fn live_mappings(&self) -> Result<usize, ShareError> {
        Ok(self.0.resv.lock("live_mappings", None)?.maps.len())
    }

    /// The exporter moves the buffer to system RAM (eviction, or an
    /// importer that cannot reach it): waits for the fences of every
    /// dynamic importer (bounded; nothing changes on a timeout), has the
    /// exporter copy the data, points the provider policies at the copy,
    /// and notifies every dynamic importer — one step under the
    /// reservation. Pinned buffers do not move ([`ShareError::Pinned`]).
    pub fn migrate(&self, budget: WaitBudget, wait: &dyn Wait) -> Result<(), ShareError> {
        let mut st = self.0.resv.lock("migrate", None)?;
        self.0.migrate_locked(&mut st, budget, wait)
    }

    /// `dma_buf_move_notify` without a move the protocol sees (the exporter
    /// re-laid out the buffer in place): waits (bounded) for the dynamic
    /// importers' fences, then notifies each. Returns how many were
    /// notified; on a fence timeout nobody is.
    pub fn invalidate(&self, budget: WaitBudget, wait: &dyn Wait) -> Result<usize, ShareError> {
        let mut st = self.0.resv.lock("invalidate", None)?;
        if st.phase != Phase::Live {
            return Err(ShareError::Revoked { buffer: self.0.id });
        }
        let dynamic: Vec<AttachId> = st
            .atts
            .iter()
            .filter(|(_, a)| a.caps.dynamic)
            .map(|(id, _)| *id)
            .collect();
        wait_fences(&mut st, &dynamic, budget, wait)?;
        notify(&mut st, &dynamic, NoticeKind::Invalidate);
        Ok(dynamic.len())
    }

    /// Revocation (VFIO reset, device removal): from this call on the
    /// dispatcher refuses the buffer's peer ranges and maps fail with
    /// [`ShareError::Revoked`]; every importer is notified and must unmap
    /// and acknowledge. Completes when all have; after `budget` waits the
    /// importers that have not are reported
    /// ([`ShareError::RevokeUnacknowledged`]) and their mappings torn down
    /// by force (their devices' accesses then fault), so the buffer is
    /// revoked either way and nothing stays mapped.
    pub fn revoke(&self, budget: WaitBudget, wait: &dyn Wait) -> Result<(), ShareError> {
        {
            let mut st = self.0.resv.lock("revoke", None)?;
            if st.phase == Phase::Revoked {
                return Ok(());
            }
            st.phase = Phase::Revoking;
            let why = alloc::format!("{} revoked by {}", self.0.id, self.0.exporter_bdf);
            self.0.set_rules(&st, |_| Rule::Refuse(why.clone()));
            let ids: Vec<AttachId> = st.atts.keys().copied().collect();
            for a in st.atts.values_mut() {
                a.acked = false;
            }
            notify(&mut st, &ids, NoticeKind::Revoke);
        }
        let mut round = 0;
        loop {
            let mut st = self.0.resv.lock("revoke", None)?;
            let late: Vec<AttachId> = st
                .atts
                .iter()
                .filter(|(id, a)| !a.acked || st.maps.values().any(|m| m.att == **id))
                .map(|(id, _)| *id)
                .collect();
            if late.is_empty() {
                st.phase = Phase::Revoked;
                return Ok(());
            }
            if round >= budget.rounds {
                let mut importers = Vec::new();
                let mut first = None;
                for id in late {
                    if let Some(a) = st.atts.get(&id) {
                        importers.push(a.dev.bdf());
                    }
                    let maps: Vec<MapId> = st
                        .maps
                        .iter()
                        .filter(|(_, m)| m.att == id)
                        .map(|(k, _)| *k)
                        .collect();
                    for m in maps {
                        if let Err(e) = map::unmap_locked(&mut st, id, m) {
                            first.get_or_insert(e);
                        }
                    }
                }
                st.phase = Phase::Revoked;
                if let Some(ShareError::Dma(e)) = first {
                    self.0.ctx.report_drop_error(e);
                }
                return Err(ShareError::RevokeUnacknowledged { importers });
            }
            drop(st);
            round += 1;
            wait.pause(round);
        }
    }

    /// Ends a revocation: the buffer is usable again (attachments that
    /// survived it map again; new ones attach).
    pub fn restore(&self) -> Result<(), ShareError> {
        let mut st = self.0.resv.lock("restore", None)?;
        if st.phase != Phase::Revoked {
            return Err(ShareError::NotRevoked { buffer: self.0.id });
        }
        st.phase = Phase::Live;
        let migrated = st.migrated.clone();
        self.0.set_rules(&st, |i| match &migrated {
            Some(m) => Rule::Redirect(m[i].0),
            None => Rule::Home,
        });
        Ok(())
    }
}

impl Inner {
    /// Where the data lives now.
    pub(crate) fn current(&self, st: &State) -> Vec<(PhysAddr, u64)> {
        match &st.migrated {
            Some(m) => m.clone(),
            None => self.ranges.iter().map(|r| (r.phys, r.len)).collect(),
        }
    }

    /// Sets every range's rule from its index.
    fn set_rules(&self, _st: &State, rule: impl Fn(usize) -> Rule) {
        for (i, r) in self.ranges.iter().enumerate() {
            for p in &self.policies {
                p.set(r.phys, rule(i));
            }
        }
    }

    /// The dispatcher's verdict for `dev` on every range where the data
    /// lives now (or on `over`, a redirect).
    pub(crate) fn verdicts(
        &self,
        st: &State,
        dev: &DmaDevice,
        dir: crate::Direction,
    ) -> Vec<RangeVerdict> {
        let ranges = self.current(st);
        let kinds: Vec<Option<SegKind>> = {
            let memmap = self.ctx.memmap.read();
            ranges
                .iter()
                .map(|&(p, l)| memmap.kind_of_range(p, l).map(|(_, k)| k))
                .collect()
        };
        ranges
            .into_iter()
            .zip(kinds)
            .map(|((phys, len), kind)| {
                let placement = match kind {
                    // RAM needs no decision (the dispatcher's own fast path).
                    Some(SegKind::Ram) => Ok(Placement::SystemRam),
                    Some(k) => match dev.plan_segment(phys, len, k, dir) {
                        Ok(p) => Ok(match p.target {
                            SegTarget::Ram => Placement::SystemRam,
                            SegTarget::PeerHostBridge => Placement::PeerHostBridge,
                            SegTarget::PeerBus(_) => Placement::PeerBus,
                        }),
                        // The owner redirects to several RAM ranges: the
                        // map expands them (one segment or link each).
                        Err(crate::DmaError::RedirectScattered { .. }) => Ok(Placement::SystemRam),
                        Err(e) => Err(Reason::chain_of(&e)),
                    },
                    None => Err(Reason::chain_of(&crate::DmaError::UnknownMemory {
                        phys,
                        len,
                    })),
                };
                RangeVerdict {
                    phys,
                    len,
                    kind: kind.unwrap_or(SegKind::Ram),
                    placement,
                }
            })
            .collect()
    }

    pub(crate) fn migrate_locked(
        &self,
        st: &mut ResvGuard<'_, State>,
        budget: WaitBudget,
        wait: &dyn Wait,
    ) -> Result<(), ShareError> {
        if st.phase != Phase::Live {
            return Err(ShareError::Revoked { buffer: self.id });
        }
        if st.migrated.is_some() {
            return Ok(());
        }
        let exporter = self.exporter_bdf;
        if !self.exporter.caps().migrate {
            return Err(ShareError::MigrateUnsupported { exporter });
        }
        if let Some(a) = st.atts.values().find(|a| a.pinned) {
            return Err(ShareError::Pinned {
                importer: a.dev.bdf(),
            });
        }
        let dynamic: Vec<AttachId> = st
            .atts
            .iter()
            .filter(|(_, a)| a.caps.dynamic)
            .map(|(id, _)| *id)
            .collect();
        wait_fences(st, &dynamic, budget, wait)?;
        let to = self.exporter.migrate(&self.ranges)?;
        self.check_migration(&to)?;
        st.migrated = Some(to.clone());
        self.set_rules(st, |i| Rule::Redirect(to[i].0));
        notify(st, &dynamic, NoticeKind::Invalidate);
        Ok(())
    }

    /// One RAM range per exported range, same lengths.
    fn check_migration(&self, to: &[(PhysAddr, u64)]) -> Result<(), ShareError> {
        let exporter = self.exporter_bdf;
        let memmap = self.ctx.memmap.read();
        for (index, r) in self.ranges.iter().enumerate() {
            let ok = to.get(index).is_some_and(|&(p, l)| {
                l == r.len && matches!(memmap.kind_of_range(p, l), Some((_, SegKind::Ram)))
            });
            if !ok {
                return Err(ShareError::BadMigration { exporter, index });
            }
        }
        if to.len() != self.ranges.len() {
            return Err(ShareError::BadMigration {
                exporter,
                index: self.ranges.len(),
            });
        }
        Ok(())
    }

    /// A redirect must be system RAM (or the exporter's own carve-out) and
    /// cover the buffer exactly; several ranges must be page aligned.
    pub(crate) fn check_redirect(&self, to: &[(PhysAddr, u64)]) -> Result<(), ShareError> {
        let exporter = self.exporter_bdf;
        let me = self.ctx.provider_of(exporter)?;
        let memmap = self.ctx.memmap.read();
        let mut total = 0u64;
        for &(phys, len) in to {
            let bad = ShareError::BadRedirect {
                exporter,
                phys,
                len,
            };
            let ram = match memmap.kind_of_range(phys, len) {
                Some((_, SegKind::Ram)) => true,
                Some((_, SegKind::StolenRam(o))) => o == me,
                _ => false,
            };
            let aligned = to.len() == 1 || (phys.raw() | len) & (SHARE_PAGE - 1) == 0;
            if len == 0 || !ram || !aligned {
                return Err(bad);
            }
            total = total.saturating_add(len);
        }
        let want: u64 = self.ranges.iter().map(|r| r.len).sum();
        if total != want {
            let (phys, len) = to.first().copied().unwrap_or((PhysAddr::new(0), 0));
            return Err(ShareError::BadRedirect {
                exporter,
                phys,
                len,
            });
        }
        Ok(())
    }

    /// Puts an importer's redirect into the buffer's provider policy when
    /// every exported range has one (registered peer memory): the map then
    /// goes through the dispatcher like any other, which expands the RAM
    /// pieces. Returns false (nothing installed) otherwise.
    pub(crate) fn install_client_redirect(&self, client: Bdf, to: &[(PhysAddr, u64)]) -> bool {
        let covered = |r: &ExportRange| self.policies.iter().find(|p| p.covers(r.phys));
        if !self.ranges.iter().all(|r| covered(r).is_some()) {
            return false;
        }
        let mut at = 0u64;
        for r in &self.ranges {
            let pieces = super::policy::slice(to, at, r.len);
            if let Some(p) = covered(r) {
                p.set_client(client, r.phys, Some(pieces));
            }
            at += r.len;
        }
        true
    }

    /// Removes `client`'s redirect from the policies unless another of its
    /// attachments still uses it.
    pub(crate) fn clear_client_redirect(&self, st: &State, client: Bdf) {
        if st
            .atts
            .values()
            .any(|a| a.policy_redirect && a.dev.bdf() == client)
        {
            return;
        }
        for r in &self.ranges {
            for p in &self.policies {
                p.set_client(client, r.phys, None);
            }
        }
    }

    /// The action to record for a redirect or a migration.
    pub(crate) fn exporter_reason(&self, action: &Action) -> Reason {
        let text: String = match action {
            Action::Redirect(r) => alloc::format!(
                "{} redirects to {} system-RAM range(s)",
                self.exporter_bdf,
                r.len()
            ),
            Action::Migrate => {
                alloc::format!("{} migrated the buffer to system RAM", self.exporter_bdf)
            }
            Action::Refuse(why) => why.clone(),
            Action::None => alloc::format!("{} offers nothing else", self.exporter_bdf),
        };
        Reason::new(super::ReasonSource::Exporter, text)
    }
}

/// Waits (bounded) for the fences of `ids`; signalled ones are dropped.
pub(crate) fn wait_fences(
    st: &mut State,
    ids: &[AttachId],
    budget: WaitBudget,
    wait: &dyn Wait,
) -> Result<(), ShareError> {
    let mut round = 0;
    loop {
        let mut stuck = None;
        for id in ids {
            if let Some(a) = st.atts.get_mut(id) {
                a.fences.retain(|f| !f.is_signaled());
                if !a.fences.is_empty() {
                    stuck.get_or_insert(a.dev.bdf());
                }
            }
        }
        match stuck {
            None => return Ok(()),
            Some(importer) if round >= budget.rounds => {
                return Err(ShareError::FenceTimeout { importer })
            }
            Some(_) => {
                round += 1;
                wait.pause(round);
            }
        }
    }
}

/// Calls `kind` on every attachment of `ids` still attached, each marked as
/// being notified for the length of its call.
pub(crate) fn notify(st: &mut ResvGuard<'_, State>, ids: &[AttachId], kind: NoticeKind) {
    for &id in ids {
        let Some(ops) = st.atts.get(&id).map(|a| a.ops.clone()) else {
            continue;
        };
        st.notifying(id);
        {
            let mut n = Notice {
                st: &mut *st,
                att: id,
                kind,
            };
            match kind {
                NoticeKind::Invalidate => ops.invalidate(&mut n),
                NoticeKind::Revoke => ops.revoke(&mut n),
            }
        }
        st.notified();
    }
}

/// One [`SharePolicy`] per registered p2pmem range the export touches,
/// each deferring to the policy it replaces (or the owner's).
fn install_policies(
    ctx: &Arc<DmaContext>,
    bdf: Bdf,
    me: crate::types::ProviderId,
    ranges: &[ExportRange],
) -> Result<Vec<Arc<SharePolicy>>, ShareError> {
    let mut groups: BTreeMap<u64, Vec<(PhysAddr, u64)>> = BTreeMap::new();
    {
        let reg = ctx.p2pmem.read();
        for r in ranges {
            if let SegKind::PeerBar(_) = r.kind {
                if let Some(res) = reg.resource_for(DeviceId::from_provider(me), r.phys, r.len) {
                    groups
                        .entry(res.phys.raw())
                        .or_default()
                        .push((r.phys, r.len));
                }
            }
        }
    }
    let mut out: Vec<Arc<SharePolicy>> = Vec::with_capacity(groups.len());
    for (start, rs) in groups {
        let start = PhysAddr::new(start);
        let prev: Option<Arc<dyn ProviderPolicy>> = ctx
            .range_policies
            .read()
            .get(&(me, start.raw()))
            .cloned()
            .or_else(|| ctx.policy(me));
        let p = Arc::new(SharePolicy::new(&rs).with_prev(prev));
        if let Err(e) = ctx.set_range_policy(bdf, start, p.clone()) {
            // Nothing half-done: the policies already installed defer again.
            for q in &out {
                q.retire();
            }
            return Err(e.into());
        }
        out.push(p);
    }
    Ok(out)
}
