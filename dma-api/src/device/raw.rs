//! The raw (C-style) layer: what drivers ported from Linux call and what
//! dma-debug watches. Semantics of kernel/dma/mapping.c (`dma_map_phys`,
//! `dma_unmap_phys`, `dma_map_sgtable`, `dma_unmap_sgtable`,
//! `dma_sync_single_for_*`, `dma_sync_sgtable_for_*`, `dma_alloc_coherent`,
//! `dma_need_sync`, `dma_max_mapping_size`, `dma_opt_mapping_size`,
//! `dma_get_merge_boundary`), plus the P2P classification Linux leaves to
//! every caller (`pci_p2pdma_state`), done here per segment.
//!
//! The plan of each live mapping (effective address after redirect, target)
//! is *kept*, not recomputed at unmap: a policy or the topology may change
//! between map and unmap, and unmap must undo exactly what was done.
//! Single mappings are keyed by DMA address; tables by (first DMA address,
//! first CPU address, `orig_nents`), with a stack per key for the rare case
//! of one buffer mapped twice through identical tables.

use super::constraints::DmaConstraints;
use super::context::DmaContext;
use super::decision::Decision;
use super::dispatch::{plan_segment, Env};
use super::verify::{verify, Screen};
use crate::attrs::DmaAttrs;
use crate::bdf::Bdf;
use crate::direction::Direction;
use crate::error::DmaError;
use crate::port::{
    CoherentRequest, DmaBackend, IovaOps, IovaState, MapRequest, SegPlan, SegTarget,
};
use crate::sync::Mutex;
use crate::topology::DeviceId;
use crate::types::{DmaAddr, PhysAddr, PAGE_SIZE};
use alloc::collections::BTreeMap;
use alloc::string::ToString;
use alloc::sync::Arc;
use alloc::vec::Vec;
use hashbrown::HashMap;
use scatterlist::{DmaFlags, SgTable};

#[derive(Clone, Copy, Debug)]
struct Single {
    req: MapRequest,
}

/// Which table a plan belongs to: the address of the table's entry storage,
/// which no two live tables share. (Keying by the table's contents let two
/// live tables with the same first entry take each other's plans; issue 11,
/// bug 1.)
type TableKey = usize;

/// What a mapped table looked like, to refuse an unmap of a table that is
/// not the one mapped (reused storage, entries replaced since).
type Fingerprint = (u64, u64, usize);

/// The plan of one live table.
struct PlanRecord {
    fingerprint: Fingerprint,
    /// Empty for a table mapped without a plan
    /// ([`DmaBackend::map_sg_ram`]: `ram` set).
    plan: Vec<SegPlan>,
    /// Mapped with [`DmaBackend::map_sg_ram`]: unmap with `unmap_sg_ram`.
    ram: bool,
    /// The caller's table as it was before a multi-range redirect expanded
    /// it (one entry per RAM range): put back on unmap.
    original: Option<SgTable>,
}

/// Plans of live tables, one per table.
#[derive(Default)]
struct TablePlans {
    live: FastMap<TableKey, PlanRecord>,
}

impl TablePlans {
    /// Records `plan` for the table at `key`. A record already there belongs
    /// to a table dropped while mapped (its storage was reused): that
    /// mapping leaked in the backend, and its plan is returned so the caller
    /// can report the leak.
    fn insert(&mut self, key: TableKey, record: PlanRecord) -> Option<PlanRecord> {
        self.live.insert(key, record)
    }

    /// Takes the record of the table at `key` if it is the table that was
    /// mapped there.
    fn remove(&mut self, key: TableKey, fingerprint: Fingerprint) -> Option<PlanRecord> {
        match self.live.get(&key) {
            Some(r) if r.fingerprint == fingerprint => self.live.remove(&key),
            _ => None,
        }
    }
}

#[cfg(feature = "std")]
std::thread_local! {
    /// Plan vectors of unmapped tables, reused by the next map on this
    /// thread (saves an allocation per table map).
    static SPARE_PLANS: core::cell::RefCell<Vec<Vec<SegPlan>>> =
        const { core::cell::RefCell::new(Vec::new()) };
}

/// A plan vector with room for `cap` entries: a spare one of this thread
/// with `std`, a fresh one without (no thread-locals in `no_std`).
fn take_spare(cap: usize) -> Vec<SegPlan> {
    #[cfg(feature = "std")]
    let mut v = SPARE_PLANS
        .with(|s| s.borrow_mut().pop())
        .unwrap_or_default();
    #[cfg(not(feature = "std"))]
    let mut v = Vec::new();
    v.clear();
    v.reserve(cap);
    v
}

fn give_spare(v: Vec<SegPlan>) {
    #[cfg(feature = "std")]
    SPARE_PLANS.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < 4 {
            s.push(v);
        }
    });
    #[cfg(not(feature = "std"))]
    drop(v);
}
type FastMap<K, V> = HashMap<K, V>;

/// Appends a RAM plan for every CPU entry of `table`: slice by slice
/// between chain links when no allocated entry is spare.
fn ram_plan(table: &SgTable, plan: &mut Vec<SegPlan>) {
    let ram = |e: &scatterlist::SgEntry| SegPlan {
        phys: e.phys(),
        target: SegTarget::Ram,
    };
    if table.alloc_nents() == table.orig_nents() {
        plan.reserve(table.orig_nents());
        for data in table.slots().split(|e| e.is_chain()) {
            plan.extend(data.iter().map(ram));
        }
    } else {
        plan.extend(table.iter().map(ram));
    }
}

/// How [`DmaDevice::plan_into`] treats a table.
enum PlanMode<'a> {
    /// Kinds checked against the memory map; constraints not (a query).
    Unchecked,
    /// Kinds and constraints checked (a map).
    Checked,
    /// A classified table: nothing checked while the stamp holds, else
    /// checked as `Checked` and the stamp renewed.
    Stamped(&'a mut Stamp),
}

/// What [`DmaDevice::plan_into`] left in the plan.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Planned {
    /// Every entry is system RAM and the plan was not written: the backend
    /// maps the table without one ([`DmaBackend::map_sg_ram`]), or the
    /// caller writes the RAM plan.
    AllRam,
    /// The plan of every entry.
    Written,
}

/// What a classified table was checked against: the memory map's
/// generation, the device and its constraints at the time. Equal stamps
/// mean the check would find the same.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Stamp {
    generation: u64,
    device: DeviceId,
    constraints: DmaConstraints,
    /// Every entry is system RAM.
    pub(super) all_ram: bool,
}

impl Stamp {
    fn now(dev: &DmaDevice, generation: u64, all_ram: bool) -> Self {
        Self {
            generation,
            device: dev.id,
            constraints: dev.constraints(),
            all_ram,
        }
    }
}

/// What [`DmaDevice::iova_link`] did with a range.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IovaLink {
    /// Linked into the reservation at the offset asked for.
    Linked,
    /// Peer memory reachable by bus address: nothing was linked; program
    /// the device with this address for the range.
    Bus(DmaAddr),
}

/// One device's DMA mapping interface (Linux: the `struct device *` every
/// `dma_*` call takes), over a shared [`DmaContext`] and the device's backend.
///
/// `Send + Sync`: every mutable piece is behind a lock.
pub struct DmaDevice {
    ctx: Arc<DmaContext>,
    id: DeviceId,
    bdf: Bdf,
    backend: Arc<dyn DmaBackend>,
    singles: Mutex<BTreeMap<u64, Vec<Single>>>,
    tables: Mutex<TablePlans>,
    coherent: Mutex<FastMap<u64, (PhysAddr, u64)>>,
    /// Masks and segment limits (`dma_set.rs`).
    pub(super) constraints: Mutex<super::DmaConstraints>,
}

impl core::fmt::Debug for DmaDevice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DmaDevice")
            .field("bdf", &self.bdf)
            .field("backend", &self.backend.name())
            .finish()
    }
}

const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<DmaDevice>();
};

impl DmaDevice {
    /// The device at `bdf` of `ctx`, mapping through `backend`.
    pub fn new(
        ctx: Arc<DmaContext>,
        bdf: Bdf,
        backend: Arc<dyn DmaBackend>,
    ) -> Result<Self, DmaError> {
        let id = ctx
            .topology
            .read()
            .lookup(bdf)
            .ok_or(DmaError::UnknownDevice { bdf })?;
        let constraints = super::dma_set::initial_constraints(&ctx, id, backend.as_ref());
        Ok(Self {
            constraints: Mutex::new(constraints),
            ctx,
            id,
            bdf,
            backend,
            singles: Mutex::new(BTreeMap::new()),
            tables: Mutex::new(TablePlans::default()),
            coherent: Mutex::new(FastMap::default()),
        })
    }

    /// The device's address.
    pub fn bdf(&self) -> Bdf {
        self.bdf
    }

    /// The shared context.
    pub fn context(&self) -> &Arc<DmaContext> {
        &self.ctx
    }

    /// The backend below the dispatcher. Mapping through it skips every
    /// check the device makes (kinds from the memory map, p2pmem
    /// registration, provider policies, the oracle, the arch veto): it is
    /// for tests that must force a mapping the dispatcher would refuse, and
    /// for tools that report the backend's name — never for drivers.
    pub fn raw_backend(&self) -> &Arc<dyn DmaBackend> {
        &self.backend
    }

    /// Live single mappings (`map_phys` without `unmap_phys`).
    pub fn live_singles(&self) -> usize {
        self.singles.lock().values().map(Vec::len).sum()
    }

    /// Live table mappings.
    pub fn live_tables(&self) -> usize {
        self.tables.lock().live.len()
    }

    fn kind_of(&self, phys: PhysAddr, len: u64) -> Result<scatterlist::SegKind, DmaError> {
        self.ctx
            .memmap
            .read()
            .kind_of_range(phys, len)
            .map(|(_, k)| k)
            .ok_or(DmaError::UnknownMemory { phys, len })
    }

    /// The plan for one range of known kind (the dispatcher's decision,
    /// exposed for benches and tools).
    pub fn plan_segment(
        &self,
        phys: PhysAddr,
        len: u64,
        kind: scatterlist::SegKind,
        dir: Direction,
    ) -> Result<SegPlan, DmaError> {
        let mut env = Env::new(&self.ctx);
        plan_segment(&mut env, self.id, self.bdf, phys, len, kind, dir, None)
    }

    fn request(plan: SegPlan, len: u64, dir: Direction, attrs: DmaAttrs) -> MapRequest {
        // Peer memory through the host bridge is MMIO: say so to the backend
        // like Linux callers pass DMA_ATTR_MMIO for THRU_HOST_BRIDGE.
        let attrs = if plan.target == SegTarget::PeerHostBridge {
            attrs | DmaAttrs::MMIO
        } else {
            attrs
        };
        MapRequest {
            phys: plan.phys,
            len,
            dir,
            attrs,
            target: plan.target,
        }
    }

    /// `dma_map_phys` with the P2P classification built in: the memory map
    /// says what `[phys, phys + len)` is, the dispatcher decides, the backend
    /// maps.
    pub fn map_phys(
        &self,
        phys: PhysAddr,
        len: u64,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<DmaAddr, DmaError> {
        self.map_phys_at(phys, len, dir, attrs).map(|(dma, _)| dma)
    }

    /// [`DmaDevice::map_phys`], also returning where the device's accesses
    /// land in CPU physical memory (the owner's redirect target, when there
    /// is one): what a CPU view of the mapping must read.
    pub(crate) fn map_phys_at(
        &self,
        phys: PhysAddr,
        len: u64,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(DmaAddr, PhysAddr), DmaError> {
        if len == 0 {
            return Err(DmaError::ZeroLength { phys });
        }
        let kind = self.kind_of(phys, len)?;
        let plan = self.plan_segment(phys, len, kind, dir)?;
        let req = Self::request(plan, len, dir, attrs);
        let dma = self.backend.map(&req)?;
        self.singles
            .lock()
            .entry(dma.raw())
            .or_default()
            .push(Single { req });
        Ok((dma, plan.phys))
    }

    /// `dma_unmap_phys`: `dma` and `len` must be those of a live
    /// [`DmaDevice::map_phys`] ([`DmaError::NotMapped`] otherwise). The
    /// caller's `dir` and `attrs` are passed on (dma-debug compares them).
    pub fn unmap_phys(
        &self,
        dma: DmaAddr,
        len: u64,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        let single = {
            let mut s = self.singles.lock();
            let v = s
                .get_mut(&dma.raw())
                .ok_or(DmaError::NotMapped { dma, len })?;
            let i = v
                .iter()
                .rposition(|m| m.req.len == len)
                .ok_or(DmaError::NotMapped { dma, len })?;
            let m = v.remove(i);
            if v.is_empty() {
                s.remove(&dma.raw());
            }
            m
        };
        let req = MapRequest {
            dir,
            attrs: attrs | (single.req.attrs & DmaAttrs::MMIO),
            ..single.req
        };
        self.backend.unmap(dma, &req)
    }

    /// The single mapping holding `[dma, dma + len)`, if any.
    fn single_at(&self, dma: DmaAddr, len: u64) -> Option<MapRequest> {
        let s = self.singles.lock();
        let (start, v) = s.range(..=dma.raw()).next_back()?;
        let off = dma.raw() - start;
        v.iter()
            .find(|m| off < m.req.len && len <= m.req.len - off)
            .map(|m| m.req)
    }

    /// `dma_sync_single_for_cpu`; sub-ranges allowed. Peer mappings never get
    /// CPU cache maintenance (nothing happens).
    pub fn sync_single_for_cpu(
        &self,
        dma: DmaAddr,
        len: u64,
        dir: Direction,
    ) -> Result<(), DmaError> {
        match self.single_at(dma, len) {
            Some(r) if r.target.is_mmio() => Ok(()),
            _ => self.backend.sync_for_cpu(dma, len, dir),
        }
    }

    /// `dma_sync_single_for_device`; sub-ranges allowed.
    pub fn sync_single_for_device(
        &self,
        dma: DmaAddr,
        len: u64,
        dir: Direction,
    ) -> Result<(), DmaError> {
        match self.single_at(dma, len) {
            Some(r) if r.target.is_mmio() => Ok(()),
            _ => self.backend.sync_for_device(dma, len, dir),
        }
    }

    fn table_key(table: &SgTable) -> TableKey {
        table.slots().as_ptr() as usize
    }

    /// Undoes the backend's map of `table`: with `unmap_sg_ram` if it was
    /// mapped without a plan (`ram`), else with `unmap_sg` and `plan`.
    fn backend_unmap(
        &self,
        table: &mut SgTable,
        plan: &[SegPlan],
        ram: bool,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        if !ram {
            return self.backend.unmap_sg(table, plan, dir, attrs);
        }
        if let Some(done) = self.backend.unmap_sg_ram(table, dir, attrs) {
            return done;
        }
        // A backend with `map_sg_ram` but without its unmap: the RAM plan
        // says the same.
        let mut plan = Vec::new();
        ram_plan(table, &mut plan);
        self.backend.unmap_sg(table, &plan, dir, attrs)
    }

    fn fingerprint(table: &SgTable) -> Fingerprint {
        let first = table.iter().next();
        (
            first.map_or(0, |e| e.dma_address().raw()),
            first.map_or(0, |e| e.phys().raw()),
            table.orig_nents(),
        )
    }

    /// `dma_map_sgtable`: one decision per CPU entry from the kind it
    /// carries, then the backend. Returns the number of DMA segments (also
    /// stored as the table's `nents`). A table that breaks the device's
    /// [`constraints`](DmaDevice::constraints) is refused with
    /// [`DmaError::ConstraintViolated`] naming the entry: CPU entries before
    /// mapping, the backend's DMA segments after (then unmapped). Every
    /// entry's kind is checked against the memory map first, in one pass
    /// that searches the map only when an entry leaves the range the last
    /// one hit (`verify.rs`; Linux reads each page's pgmap instead); an
    /// all-RAM table then goes to the backend without a plan
    /// ([`DmaBackend::map_sg_ram`]) where the backend has that path.
    pub fn map_sgtable(
        &self,
        table: &mut SgTable,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<usize, DmaError> {
        self.map_with(table, dir, attrs, None)
    }

    /// [`DmaDevice::map_sgtable`], with the stamp of a
    /// [`ClassifiedTable`](super::ClassifiedTable): while the stamp holds
    /// (same memory-map generation, device and constraints), the entries
    /// are not checked again; otherwise they are, and the stamp renewed.
    pub(super) fn map_with(
        &self,
        table: &mut SgTable,
        dir: Direction,
        attrs: DmaAttrs,
        stamp: Option<&mut Stamp>,
    ) -> Result<usize, DmaError> {
        if table.is_dma_mapped() {
            return Err(DmaError::AlreadyMapped {
                orig_nents: table.orig_nents(),
            });
        }
        let mut plan = take_spare(table.orig_nents());
        let (original, planned) = match self.plan_expanding(table, dir, &mut plan, stamp) {
            Ok(o) => o,
            Err(e) => {
                give_spare(plan);
                return Err(e);
            }
        };
        // A failure from here on puts the caller's table back as it was.
        let restore = |table: &mut SgTable, original: Option<SgTable>| {
            if let Some(o) = original {
                *table = o;
            }
        };
        // An all-RAM table goes to a backend that maps it without a plan;
        // otherwise (or if the backend wants one) the RAM plan is written.
        let ram_only = planned == Planned::AllRam;
        let mapped = match ram_only {
            true => self.backend.map_sg_ram(table, dir, attrs),
            false => None,
        };
        let ram = mapped.is_some();
        let mapped = mapped.unwrap_or_else(|| {
            if ram_only {
                ram_plan(table, &mut plan);
            }
            self.backend.map_sg(table, &plan, dir, attrs)
        });
        let n = match mapped {
            Ok(n) => n,
            Err(e) => {
                give_spare(plan);
                restore(table, original);
                return Err(e);
            }
        };
        // Backends that screen their own segments while mapping (the direct
        // backend) already refused a breaking one; the others get a pass.
        let checked = if self.backend.checks_mapped_segments() {
            Ok(())
        } else {
            self.check_mapped_constraints(table)
        };
        if let Err(e) = checked {
            let undo = self.backend_unmap(table, &plan, ram, dir, attrs | DmaAttrs::SKIP_CPU_SYNC);
            give_spare(plan);
            if undo.is_ok() {
                restore(table, original);
            }
            return Err(e.with_cleanup(undo.err()));
        }
        let record = PlanRecord {
            fingerprint: Self::fingerprint(table),
            plan,
            ram,
            original,
        };
        let stale = self.tables.lock().insert(Self::table_key(table), record);
        if let Some(old) = stale {
            self.ctx.report_drop_error(DmaError::NotMapped {
                dma: DmaAddr::new(old.fingerprint.0),
                len: 0,
            });
        }
        Ok(n)
    }

    /// Plans `table` for a map; an entry whose provider redirects it to
    /// several RAM ranges ([`PolicyDecision::RedirectRanges`]) is replaced,
    /// in the caller's table, by one entry per range (classified by the
    /// memory map, cut to the device's segment rules), and the table planned
    /// again. Returns the caller's table as it was if it was expanded (the
    /// unmap puts it back), and whether the plan was written (an all-RAM
    /// table's is not); on error the table is as it was.
    ///
    /// [`PolicyDecision::RedirectRanges`]: crate::port::PolicyDecision::RedirectRanges
    fn plan_expanding(
        &self,
        table: &mut SgTable,
        dir: Direction,
        plan: &mut Vec<SegPlan>,
        mut stamp: Option<&mut Stamp>,
    ) -> Result<(Option<SgTable>, Planned), DmaError> {
        let mut original: Option<SgTable> = None;
        // Each round replaces one redirected entry by RAM; a policy that
        // keeps redirecting the RAM it redirected to is cut off.
        let mut rounds = table.orig_nents().saturating_mul(2).saturating_add(1);
        loop {
            plan.clear();
            let mode = match stamp.as_deref_mut() {
                Some(st) => PlanMode::Stamped(st),
                None => PlanMode::Checked,
            };
            let err = match self.plan_into(table, dir, plan, mode, false) {
                Ok(planned) => return Ok((original, planned)),
                Err(e) => e,
            };
            let expanded = match (&err, rounds) {
                (DmaError::TableEntry { index, cause, .. }, 1..) => match &**cause {
                    DmaError::RedirectScattered { pieces, .. } => {
                        self.expand_entry(table, *index, pieces)
                    }
                    _ => Err(err),
                },
                _ => Err(err),
            };
            match expanded {
                Ok(t) => {
                    let before = core::mem::replace(table, t);
                    original.get_or_insert(before);
                    rounds -= 1;
                    // The stamp describes the caller's table, never an
                    // expansion of it (which may be all RAM where the
                    // caller's is not).
                    stamp = None;
                }
                Err(e) => {
                    if let Some(o) = original {
                        *table = o;
                    }
                    return Err(e);
                }
            }
        }
    }

    /// `table` with entry `index` replaced by `pieces`, each classified by
    /// the memory map; entries cut to the device's segment rules.
    fn expand_entry(
        &self,
        table: &SgTable,
        index: usize,
        pieces: &[(PhysAddr, u64)],
    ) -> Result<SgTable, DmaError> {
        let memmap = self.ctx.memmap.read();
        let mut ranges = Vec::with_capacity(table.orig_nents() + pieces.len());
        for (i, e) in table.iter().enumerate() {
            if i != index {
                ranges.push((e.phys(), u64::from(e.len()), e.kind()));
                continue;
            }
            for &(p, l) in pieces {
                memmap
                    .classify(p, l, |a, n, k| ranges.push((a, n, k)))
                    .map_err(|at| DmaError::UnknownMemory {
                        phys: at,
                        len: l - at.raw().saturating_sub(p.raw()),
                    })?;
            }
        }
        let c = self.constraints();
        Ok(SgTable::from_kinded_ranges_bounded(
            &ranges,
            u64::from(c.max_seg_size),
            c.seg_boundary_mask,
        )?)
    }

    /// The plan for every CPU entry of `table`.
    pub fn plan_table(&self, table: &SgTable, dir: Direction) -> Result<Vec<SegPlan>, DmaError> {
        let mut plan = Vec::with_capacity(table.orig_nents());
        self.plan_into(table, dir, &mut plan, PlanMode::Unchecked, true)?;
        Ok(plan)
    }

    /// The plan of every CPU entry. [`PlanMode::Checked`] also holds the
    /// table to the device's constraints (screened in the same pass; the
    /// exact offender named only when the screen finds one);
    /// [`PlanMode::Stamped`] skips both checks while its stamp holds. An
    /// all-RAM table's plan is written only when `write_ram` asks for it
    /// (else [`Planned::AllRam`] and `plan` untouched).
    fn plan_into(
        &self,
        table: &SgTable,
        dir: Direction,
        plan: &mut Vec<SegPlan>,
        mode: PlanMode<'_>,
        write_ram: bool,
    ) -> Result<Planned, DmaError> {
        let ram = |plan: &mut Vec<SegPlan>| {
            if write_ram {
                ram_plan(table, plan);
                Planned::Written
            } else {
                Planned::AllRam
            }
        };
        // An all-RAM table under a holding stamp needs only the memory
        // map's generation: no topology lock, no entry looked at.
        if let PlanMode::Stamped(st) = &mode {
            if st.all_ram {
                let generation = self.ctx.memmap.read().generation();
                if **st == Stamp::now(self, generation, true) {
                    return Ok(ram(plan));
                }
            }
        }
        let mut env = Env::new(&self.ctx);
        // The context's lock order: topology before the memory map.
        env.ensure_topo();
        let checked = !matches!(mode, PlanMode::Unchecked);
        let all_ram = match mode {
            PlanMode::Stamped(st) => {
                let now = Stamp::now(self, env.memmap().generation(), st.all_ram);
                if *st == now {
                    st.all_ram
                } else {
                    let all_ram = self.verify_table(&mut env, table, checked)?;
                    *st = Stamp { all_ram, ..now };
                    all_ram
                }
            }
            _ => self.verify_table(&mut env, table, checked)?,
        };
        if all_ram {
            return Ok(ram(plan));
        }
        // Every kind is the memory map's (checked above, or under a holding
        // stamp): RAM is planned as RAM, the rest decided one by one.
        plan.reserve(table.orig_nents());
        for (i, e) in table.iter().enumerate() {
            let (phys, kind) = (e.phys(), e.kind());
            let p = if kind == scatterlist::SegKind::Ram {
                SegPlan {
                    phys,
                    target: SegTarget::Ram,
                }
            } else {
                let len = u64::from(e.len());
                plan_segment(&mut env, self.id, self.bdf, phys, len, kind, dir, None)
                    .map_err(|cause| DmaError::at_entry(i, phys, len, kind, cause))?
            };
            plan.push(p);
        }
        Ok(Planned::Written)
    }

    /// Checks every entry's kind against the memory map (and, `checked`,
    /// the device's constraints); true if every entry is RAM.
    fn verify_table(
        &self,
        env: &mut Env<'_>,
        table: &SgTable,
        checked: bool,
    ) -> Result<bool, DmaError> {
        // Kinds come from the memory map, never from the caller: one pass
        // checks every entry against it (`verify.rs`: the map range the last
        // entry hit answers while the entry lies inside it, a search
        // otherwise); segments of other kinds are then decided one by one.
        let sc = if checked {
            let c = self.constraints();
            Screen {
                max: u64::from(c.max_seg_size),
                not_boundary: !c.seg_boundary_mask,
                virt: c.virt_boundary_mask,
            }
        } else {
            Screen::NONE
        };
        let pass = verify(env.memmap(), table, sc)?;
        if pass.suspect {
            self.check_table_constraints(table)?;
        }
        Ok(pass.all_ram)
    }

    /// A stamp for `table` after checking it as [`DmaDevice::map_sgtable`]
    /// does (kinds against the memory map, CPU entries against the
    /// constraints), without mapping.
    pub(super) fn stamp_table(&self, table: &SgTable) -> Result<Stamp, DmaError> {
        let mut env = Env::new(&self.ctx);
        env.ensure_topo();
        let generation = env.memmap().generation();
        let all_ram = self.verify_table(&mut env, table, true)?;
        Ok(Stamp::now(self, generation, all_ram))
    }

    /// A table over `ranges` whose kinds come from the memory map (never
    /// from the caller): each range is split where the map's ranges end and
    /// classified once per piece, so one call builds a mixed table (RAM, peer
    /// BARs, stolen RAM). No entry is longer than `max_segment` or the
    /// device's max segment size (the smaller, rounded down to a page), and
    /// none crosses its segment boundary: the cuts the block layer makes
    /// (block/blk-merge.c `get_max_segment_size`). A range the map does not cover is
    /// [`DmaError::UnknownMemory`] naming its first uncovered byte.
    pub fn table_from_ranges(
        &self,
        ranges: &[(PhysAddr, u64)],
        max_segment: u64,
    ) -> Result<SgTable, DmaError> {
        let memmap = self.ctx.memmap.read();
        let mut pieces = Vec::with_capacity(ranges.len());
        for &(phys, len) in ranges {
            if len == 0 {
                return Err(DmaError::ZeroLength { phys });
            }
            memmap
                .classify(phys, len, |p, n, k| pieces.push((p, n, k)))
                .map_err(|at| DmaError::UnknownMemory {
                    phys: at,
                    len: len - at.raw().saturating_sub(phys.raw()),
                })?;
        }
        let c = self.constraints();
        let max = max_segment.min(u64::from(c.max_seg_size));
        Ok(SgTable::from_kinded_ranges_bounded(
            &pieces,
            max,
            c.seg_boundary_mask,
        )?)
    }

    /// The decision for every CPU entry of `table`, each on its own: the
    /// dispatcher's plan and the backend's feasibility check
    /// ([`DmaBackend::check`]), or the entry's error
    /// ([`DmaError::TableEntry`] / [`DmaError::KindMismatch`]). Nothing is
    /// mapped. A driver bounces exactly the entries whose error is of kind
    /// [`ErrorKind::Fallback`](crate::error::ErrorKind::Fallback).
    pub fn plan_entries(
        &self,
        table: &SgTable,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Vec<Result<SegPlan, DmaError>> {
        let mut env = Env::new(&self.ctx);
        if table.iter().any(|e| e.kind() != scatterlist::SegKind::Ram) {
            env.ensure_topo();
        }
        let mut out = Vec::with_capacity(table.orig_nents());
        for (i, e) in table.iter().enumerate() {
            let (phys, len, kind) = (e.phys(), u64::from(e.len()), e.kind());
            let actual = env.memmap().kind_of_range(phys, len).map(|(_, k)| k);
            if actual != Some(kind) {
                out.push(Err(DmaError::KindMismatch {
                    index: i,
                    phys,
                    len,
                    claimed: kind,
                    actual,
                }));
                continue;
            }
            let r = plan_segment(&mut env, self.id, self.bdf, phys, len, kind, dir, None)
                .and_then(|plan| {
                    self.backend
                        .check(&Self::request(plan, len, dir, attrs))
                        .map(|()| plan)
                })
                .map_err(|cause| DmaError::at_entry(i, phys, len, kind, cause));
            out.push(r);
        }
        out
    }

    /// `dma_unmap_sgtable` of a table [`DmaDevice::map_sgtable`] mapped.
    pub fn unmap_sgtable(
        &self,
        table: &mut SgTable,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        let (key, fp) = (Self::table_key(table), Self::fingerprint(table));
        let record = {
            let p = self.tables.lock().remove(key, fp);
            p.ok_or_else(|| DmaError::NotMapped {
                dma: DmaAddr::new(fp.0),
                len: table.total_dma_len(),
            })?
        };
        match self.backend_unmap(table, &record.plan, record.ram, dir, attrs) {
            Ok(()) => {
                give_spare(record.plan);
                if let Some(o) = record.original {
                    *table = o;
                }
                Ok(())
            }
            Err(e) => {
                // Not half-forgotten: the table stays mapped as far as the
                // device knows, so a retry finds its plan again.
                if table.is_dma_mapped() {
                    self.tables.lock().insert(key, record);
                } else {
                    give_spare(record.plan);
                    if let Some(o) = record.original {
                        *table = o;
                    }
                }
                Err(e)
            }
        }
    }

    /// `dma_sync_sgtable_for_cpu`: every DMA segment that is not peer memory.
    pub fn sync_sgtable_for_cpu(&self, table: &SgTable, dir: Direction) -> Result<(), DmaError> {
        for e in table.dma_iter() {
            if e.dma_flags().contains(DmaFlags::BUS_ADDRESS)
                || e.dma_flags().contains(DmaFlags::MMIO)
            {
                continue;
            }
            self.backend
                .sync_for_cpu(e.dma_address(), u64::from(e.dma_len()), dir)?;
        }
        Ok(())
    }

    /// `dma_sync_sgtable_for_device`.
    pub fn sync_sgtable_for_device(&self, table: &SgTable, dir: Direction) -> Result<(), DmaError> {
        for e in table.dma_iter() {
            if e.dma_flags().contains(DmaFlags::BUS_ADDRESS)
                || e.dma_flags().contains(DmaFlags::MMIO)
            {
                continue;
            }
            self.backend
                .sync_for_device(e.dma_address(), u64::from(e.dma_len()), dir)?;
        }
        Ok(())
    }

    /// `dma_alloc_coherent` (Linux `dma_alloc_attrs`, kernel/dma/mapping.c):
    /// zeroed RAM (page-rounded) from the context's pool, mapped with the
    /// backend's [`DmaBackend::map_coherent`], so CPU and device share the
    /// bytes with no sync in every mode — never a swiotlb bounce slot, under
    /// forced bouncing included (`dma_direct_alloc`, `iommu_dma_alloc`).
    /// Returns the CPU and DMA addresses; free with
    /// [`DmaDevice::free_coherent`]. A pool the device cannot address is
    /// [`DmaError::CoherentUnreachable`]. The owning form is
    /// [`DmaDevice::alloc_coherent_buf`].
    pub fn alloc_coherent(&self, size: u64) -> Result<(PhysAddr, DmaAddr), DmaError> {
        let size = size
            .checked_add(PAGE_SIZE - 1)
            .map(|s| s & !(PAGE_SIZE - 1))
            .ok_or(DmaError::OutOfMemory { bytes: size })?;
        let phys = self.ctx.alloc_ram(size)?;
        let req = self.coherent_request(phys, size);
        match self.backend.map_coherent(&req) {
            Ok(dma) => {
                self.coherent.lock().insert(dma.raw(), (phys, size));
                Ok((phys, dma))
            }
            Err(e) => {
                // The range came from `alloc_ram` just before: nothing else
                // holds it.
                let _ = self.ctx.free_ram(phys);
                Err(e)
            }
        }
    }

    fn coherent_request(&self, phys: PhysAddr, len: u64) -> CoherentRequest {
        CoherentRequest {
            device: self.bdf,
            phys,
            len,
            attrs: DmaAttrs::empty(),
        }
    }

    /// `dma_free_coherent` of a [`DmaDevice::alloc_coherent`] allocation:
    /// `phys` and `dma` must be the pair it returned
    /// ([`DmaError::NotMapped`] otherwise, nothing freed). The backend
    /// unmaps, then the RAM goes back to the pool; if the unmap fails the
    /// RAM is not reused (the device may still reach it) and the error is
    /// returned.
    pub fn free_coherent(&self, phys: PhysAddr, dma: DmaAddr) -> Result<(), DmaError> {
        let size = {
            let mut live = self.coherent.lock();
            match live.get(&dma.raw()) {
                Some(&(p, size)) if p == phys => {
                    live.remove(&dma.raw());
                    size
                }
                _ => return Err(DmaError::NotMapped { dma, len: 0 }),
            }
        };
        let req = self.coherent_request(phys, size);
        self.backend.unmap_coherent(dma, &req)?;
        self.ctx.free_ram(phys)
    }

    /// Live coherent allocations ([`DmaDevice::alloc_coherent`] without
    /// [`DmaDevice::free_coherent`]).
    pub fn live_coherent(&self) -> usize {
        self.coherent.lock().len()
    }

    /// `dma_need_sync`: false for peer mappings, else the backend's answer.
    pub fn need_sync(&self, dma: DmaAddr) -> bool {
        match self.single_at(dma, 1) {
            Some(r) if r.target.is_mmio() => false,
            _ => self.backend.need_sync(dma),
        }
    }

    /// `dma_max_mapping_size`.
    pub fn max_mapping_size(&self) -> u64 {
        self.backend.max_mapping_size()
    }

    /// `dma_opt_mapping_size`.
    pub fn opt_mapping_size(&self) -> u64 {
        self.backend.opt_mapping_size()
    }

    /// `dma_get_merge_boundary`.
    pub fn merge_boundary(&self) -> u64 {
        self.backend.merge_boundary()
    }

    /// True if the backend has the two-step IOVA API (an IOMMU); Linux's
    /// `dma_iova_try_alloc` returning false is [`DmaDevice::iova_try_alloc`]
    /// returning `Ok(None)`.
    pub fn has_iova_api(&self) -> bool {
        self.backend.iova_ops().is_some()
    }

    /// `dma_iova_try_alloc`: reserves IOVA space for `size` bytes starting
    /// at `phys`'s in-granule offset; `Ok(None)` without an IOMMU (use the
    /// single and table calls instead).
    pub fn iova_try_alloc(&self, phys: PhysAddr, size: u64) -> Result<Option<IovaState>, DmaError> {
        match self.backend.iova_ops() {
            Some(ops) => ops.try_alloc(phys, size).map(Some),
            None => Ok(None),
        }
    }

    /// `dma_iova_link` through the same door as every other mapping: the
    /// memory map classifies `[phys, phys + size)`, then the provider's
    /// registration and policy, the oracle and the arch decide, exactly as
    /// for [`DmaDevice::map_phys`]. RAM (or a redirect to RAM) is linked at
    /// `offset` (a redirect to several RAM ranges links each at its running
    /// offset); peer memory through the host bridge is linked as MMIO; a
    /// peer reachable by bus address is *not* linked and comes back as
    /// [`IovaLink::Bus`] (Linux: `pci_p2pdma_state` says
    /// `PCI_P2PDMA_MAP_BUS_ADDR`, and the caller uses the bus address).
    #[allow(clippy::too_many_arguments)]
    pub fn iova_link(
        &self,
        state: &IovaState,
        phys: PhysAddr,
        offset: u64,
        size: u64,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<IovaLink, DmaError> {
        let ops = self
            .backend
            .iova_ops()
            .ok_or(DmaError::IovaNotAllocated { iova: state.base })?;
        if size == 0 {
            return Err(DmaError::ZeroLength { phys });
        }
        let kind = self.kind_of(phys, size)?;
        let plan = match self.plan_segment(phys, size, kind, dir) {
            Err(DmaError::RedirectScattered { pieces, .. }) => {
                // Redirected to several RAM ranges: each is linked at its
                // own running offset, so the IOVA range reads as the one
                // range asked for (Linux links every range of a multi-range
                // dma-buf export at offset 0: issue 15's aliasing bug).
                let mut done = 0u64;
                for &(p, l) in &pieces {
                    if let Err(e) = ops.link(state, p, offset.saturating_add(done), l, dir, attrs) {
                        let undo = match done {
                            0 => Ok(()),
                            _ => ops.unlink(
                                state,
                                offset,
                                done,
                                dir,
                                attrs | DmaAttrs::SKIP_CPU_SYNC,
                            ),
                        };
                        return Err(e.with_cleanup(undo.err()));
                    }
                    done += l;
                }
                return Ok(IovaLink::Linked);
            }
            other => other?,
        };
        match plan.target {
            SegTarget::PeerBus(bus) => Ok(IovaLink::Bus(DmaAddr::from_bus(bus))),
            SegTarget::PeerHostBridge => {
                ops.link(state, plan.phys, offset, size, dir, attrs | DmaAttrs::MMIO)?;
                Ok(IovaLink::Linked)
            }
            SegTarget::Ram => {
                ops.link(state, plan.phys, offset, size, dir, attrs)?;
                Ok(IovaLink::Linked)
            }
        }
    }

    /// `dma_iova_sync`: makes the links in `[offset, offset + size)` visible
    /// to the device.
    pub fn iova_sync(&self, state: &IovaState, offset: u64, size: u64) -> Result<(), DmaError> {
        self.iova(state)?.sync(state, offset, size)
    }

    /// `dma_iova_unlink`.
    pub fn iova_unlink(
        &self,
        state: &IovaState,
        offset: u64,
        size: u64,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        self.iova(state)?.unlink(state, offset, size, dir, attrs)
    }

    /// `dma_iova_destroy`: unlinks the first `mapped_len` bytes and frees the
    /// reservation.
    pub fn iova_destroy(
        &self,
        state: IovaState,
        mapped_len: u64,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        self.iova(&state)?.destroy(state, mapped_len, dir, attrs)
    }

    fn iova(&self, state: &IovaState) -> Result<&dyn IovaOps, DmaError> {
        self.backend
            .iova_ops()
            .ok_or(DmaError::IovaNotAllocated { iova: state.base })
    }

    /// Explains what [`DmaDevice::map_phys`] would do for this range: every
    /// dispatcher step, then the backend's DMA address — the range is really
    /// mapped and immediately unmapped with `SKIP_CPU_SYNC` (no copies back,
    /// no state left behind). Never fails: errors land in
    /// [`Decision::error`].
    pub fn explain_map(&self, phys: PhysAddr, len: u64, dir: Direction) -> Decision {
        let kind = match self.kind_of(phys, len) {
            Ok(k) => k,
            Err(e) => {
                let mut d = Decision::new(self.bdf, phys, len, dir, scatterlist::SegKind::Ram);
                d.error = Some(e);
                return d;
            }
        };
        let mut d = Decision::new(self.bdf, phys, len, dir, kind);
        let plan = {
            let mut env = Env::new(&self.ctx);
            plan_segment(
                &mut env,
                self.id,
                self.bdf,
                phys,
                len,
                kind,
                dir,
                Some(&mut d),
            )
        };
        let plan = match plan {
            Ok(p) => p,
            Err(e) => {
                d.error = Some(e);
                return d;
            }
        };
        d.target = Some((plan.phys, plan.target));
        d.backend = self.backend.name().to_string();
        let req = Self::request(plan, len, dir, DmaAttrs::SKIP_CPU_SYNC);
        match self.backend.map(&req) {
            Ok(dma) => {
                d.dma = Some(dma);
                d.bounce = self.backend.bounce_of(dma);
                if let Err(e) = self.backend.unmap(dma, &req) {
                    d.error = Some(e);
                }
            }
            Err(e) => d.error = Some(e),
        }
        d
    }
}
