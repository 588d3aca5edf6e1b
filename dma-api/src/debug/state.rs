//! The bookkeeping behind [`super::DmaDebug`]: active entries by DMA address,
//! a bounded history of freed ones (to tell a double unmap from a wild one),
//! the cache-line intervals, and the report list.
//!
//! The checks follow kernel/dma/debug.c: `check_unmap` (exact address,
//! best fit among entries sharing it), `check_sync` (the mapping holding the
//! range), `debug_dma_mapping_error` (first unchecked exact match).

use super::cachelines::{LineKey, LineRec, LineTracker};
use super::report::{DebugReport, ErrCheck, MapKind, SyncCall};
use crate::attrs::DmaAttrs;
use crate::direction::Direction;
use crate::port::backend::{SegPlan, SegTarget};
use crate::types::{DmaAddr, PhysAddr};
use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use hashbrown::HashMap;
use scatterlist::SgTable;

/// Sg bookkeeping shared by every segment of one mapped table.
#[derive(Debug)]
pub(crate) struct SgInfo {
    /// CPU entries at map time (Linux `sg_call_ents`).
    pub orig_nents: usize,
    /// DMA segments the map produced (Linux `sg_mapped_ents`).
    pub mapped_nents: usize,
    /// The dispatcher's plan at map time.
    pub plan: Arc<[SegPlan]>,
    /// What tells this table apart from another live one that shares its
    /// first segment.
    pub shape: TableShape,
}

/// The lengths of a table's CPU entries and its DMA segments (address,
/// length), in order: with the plan, what an unmap_sg must give back.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct TableShape {
    /// Length of each CPU entry.
    pub cpu_lens: Vec<u32>,
    /// Address and length of each mapped DMA segment.
    pub segs: Vec<(DmaAddr, u32)>,
}

impl TableShape {
    /// The shape of `table` as mapped (recorded at map_sg).
    pub fn of(table: &SgTable) -> Self {
        Self {
            cpu_lens: table.iter().map(|e| e.len()).collect(),
            segs: Self::segs_of(table).collect(),
        }
    }

    /// Whether `table` has this shape, compared entry by entry without
    /// building its shape (checked at every unmap_sg).
    pub fn matches(&self, table: &SgTable) -> bool {
        self.cpu_lens
            .iter()
            .copied()
            .eq(table.iter().map(|e| e.len()))
            && self.segs.iter().copied().eq(Self::segs_of(table))
    }

    fn segs_of(table: &SgTable) -> impl Iterator<Item = (DmaAddr, u32)> + '_ {
        table.dma_iter().map(|s| (s.dma_address(), s.dma_len()))
    }
}

/// One active mapping (one DMA segment for a table).
#[derive(Debug)]
pub(crate) struct Entry {
    pub kind: MapKind,
    pub dma: DmaAddr,
    pub len: u64,
    pub dir: Direction,
    /// Single mappings only.
    pub target: Option<SegTarget>,
    /// Single mappings only.
    pub phys: Option<PhysAddr>,
    pub sg: Option<Arc<SgInfo>>,
    pub err: ErrCheck,
    /// Cache-line intervals this entry owns.
    pub lines: Vec<LineKey>,
}

/// What a reference (unmap) call says about the mapping it undoes.
pub(crate) struct UnmapRef {
    pub kind: MapKind,
    pub dma: DmaAddr,
    pub len: u64,
    pub dir: Direction,
    pub target: Option<SegTarget>,
    pub phys: Option<PhysAddr>,
    /// CPU entries of the table given to unmap_sg.
    pub nents: Option<usize>,
}

#[derive(Clone, Copy, Debug)]
struct Freed {
    kind: MapKind,
    len: u64,
    /// Which free this record is: the history's queue holds (address,
    /// seq) pairs, and only the pair whose seq matches owns the record (an
    /// address freed, reused and freed again has older pairs queued).
    seq: u64,
}

/// All state, behind one mutex in `DmaDebug`.
#[derive(Debug)]
pub(crate) struct State {
    active: BTreeMap<u64, Vec<Entry>>,
    count: usize,
    max_len: u64,
    freed: HashMap<u64, Freed>,
    freed_order: VecDeque<(u64, u64)>,
    freed_cap: usize,
    freed_seq: u64,
    pub lines: LineTracker,
    pub reports: Vec<DebugReport>,
    next_id: u64,
}

impl State {
    pub fn new(line_shift: u32, freed_cap: usize) -> Self {
        Self {
            active: BTreeMap::new(),
            count: 0,
            max_len: 0,
            freed: HashMap::new(),
            freed_order: VecDeque::new(),
            freed_cap,
            freed_seq: 0,
            lines: LineTracker::new(line_shift),
            reports: Vec::new(),
            next_id: 0,
        }
    }

    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn active_count(&self) -> usize {
        self.count
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.active.values().flatten()
    }

    /// Adds an entry (Linux `add_dma_entry`).
    pub fn add(&mut self, e: Entry) {
        self.freed.remove(&e.dma.raw());
        self.max_len = self.max_len.max(e.len);
        self.count += 1;
        self.active.entry(e.dma.raw()).or_default().push(e);
    }

    /// Registers cache lines of `[phys, phys + len)` for entry `owner`, and
    /// reports an overlap with another device-writable mapping unless excused
    /// (Linux: `SKIP_CPU_SYNC` on the new mapping, or both mappings carry
    /// `DEBUGGING_IGNORE_CACHELINES`/`REQUIRE_COHERENT`). `TO_DEVICE`
    /// mappings are not tracked: the device never writes them.
    pub fn add_lines(
        &mut self,
        (owner, idx): (u64, u32),
        phys: PhysAddr,
        len: u64,
        dma: DmaAddr,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Option<LineKey> {
        if dir == Direction::ToDevice {
            return None;
        }
        let (first, last) = self.lines.lines_of(phys, len)?;
        let clean =
            attrs.intersects(DmaAttrs::DEBUGGING_IGNORE_CACHELINES | DmaAttrs::REQUIRE_COHERENT);
        if !attrs.contains(DmaAttrs::SKIP_CPU_SYNC) {
            if let Some((line, other)) = self.lines.find_overlap(first, last, clean) {
                self.reports.push(DebugReport::CachelineOverlap {
                    line: self.lines.line_addr(line),
                    dma,
                    dir,
                    other: other.dma,
                    other_dir: other.dir,
                });
            }
        }
        let key = (first, owner, idx);
        self.lines.insert(
            key,
            LineRec {
                last,
                dma,
                dir,
                clean,
            },
        );
        Some(key)
    }

    fn score(e: &Entry, r: &UnmapRef) -> u32 {
        u32::from(e.len == r.len)
            + u32::from(e.kind == r.kind)
            + u32::from(e.dir == r.dir)
            + u32::from(r.nents.is_none() || e.sg.as_ref().map(|s| s.orig_nents) == r.nents)
    }

    /// Linux `bucket_find_exact`: among entries at exactly `r.dma`, the
    /// perfect fit, else the best fit if it is the only candidate. Among
    /// perfect fits Linux takes the first; they differ only in what Linux
    /// does not compare on unmap, so a segment of table `table` prefers an
    /// entry of that same table (see [`Self::sg_info`]).
    fn find_exact(&self, r: &UnmapRef, table: Option<&Arc<SgInfo>>) -> Option<usize> {
        let v = self.active.get(&r.dma.raw())?;
        let mut perfect = v.iter().enumerate().filter(|(_, e)| Self::score(e, r) == 4);
        if let Some((first, _)) = perfect.next() {
            let same_table = |e: &Entry| matches!((table, e.sg.as_ref()), (Some(t), Some(s)) if Arc::ptr_eq(t, s));
            if same_table(&v[first]) {
                return Some(first);
            }
            return Some(
                perfect
                    .find(|(_, e)| same_table(e))
                    .map_or(first, |(i, _)| i),
            );
        }
        if v.len() == 1 {
            Some(0)
        } else {
            None
        }
    }

    /// The table an unmap_sg whose first segment is `r` undoes. Linux
    /// (`get_nr_mapped_entries`) takes the first perfect fit at the first
    /// segment's address; two live tables can share that segment (the same
    /// page mapped twice without an IOMMU), so among the perfect fits the
    /// table with the same plan and shape wins (identical tables are
    /// interchangeable), else the first. Its `mapped_nents` bounds the
    /// segments checked, its plan is compared, and its entries are the ones
    /// removed, so a correct unmap never takes another table's entries.
    pub fn sg_info(&self, r: &UnmapRef, plan: &[SegPlan], table: &SgTable) -> Option<Arc<SgInfo>> {
        let v = self.active.get(&r.dma.raw())?;
        let same = v
            .iter()
            .filter(|e| Self::score(e, r) == 4)
            .filter_map(|e| e.sg.as_ref())
            .find(|s| s.plan[..] == plan[..] && s.shape.matches(table));
        if let Some(s) = same {
            return Some(Arc::clone(s));
        }
        let i = self.find_exact(r, None)?;
        v.get(i)?.sg.clone()
    }

    /// Linux `check_unmap`, plus the target/phys checks and the double-unmap
    /// history. Removes the entry when found, preferring an entry of `table`
    /// among equally fitting ones.
    pub fn check_unmap(&mut self, r: &UnmapRef, table: Option<&Arc<SgInfo>>, invalid: DmaAddr) {
        let Some(i) = self.find_exact(r, table) else {
            let rep = if r.dma == invalid {
                DebugReport::UnmapInvalidAddress { kind: r.kind }
            } else if let Some(f) = self.freed.get(&r.dma.raw()) {
                DebugReport::DoubleUnmap {
                    kind: r.kind,
                    dma: r.dma,
                    len: r.len,
                    mapped_kind: f.kind,
                    mapped_len: f.len,
                }
            } else {
                DebugReport::UnmapNotMapped {
                    kind: r.kind,
                    dma: r.dma,
                    len: r.len,
                }
            };
            self.reports.push(rep);
            return;
        };
        let Some(e) = self.take(r.dma, i) else { return };
        let dma = r.dma;
        if r.len != e.len {
            self.reports.push(DebugReport::UnmapSizeMismatch {
                dma,
                mapped_len: e.len,
                unmap_len: r.len,
            });
        }
        if r.kind != e.kind {
            self.reports.push(DebugReport::UnmapKindMismatch {
                dma,
                mapped: e.kind,
                unmapped: r.kind,
            });
        } else {
            if let (Some(m), Some(u)) = (e.target, r.target) {
                if m != u {
                    self.reports.push(DebugReport::UnmapTargetMismatch {
                        dma,
                        mapped: m,
                        unmapped: u,
                    });
                }
            }
            if let (Some(m), Some(u)) = (e.phys, r.phys) {
                if m != u {
                    self.reports.push(DebugReport::UnmapPhysMismatch {
                        dma,
                        mapped: m,
                        unmapped: u,
                    });
                }
            }
        }
        if let (Some(n), MapKind::Sg, Some(sg)) = (r.nents, r.kind, e.sg.as_ref()) {
            if n != 0 && n != sg.orig_nents {
                self.reports.push(DebugReport::UnmapNentsMismatch {
                    dma,
                    mapped_nents: sg.orig_nents,
                    unmap_nents: n,
                });
            }
        }
        if r.dir != e.dir {
            self.reports.push(DebugReport::UnmapDirectionMismatch {
                dma,
                mapped: e.dir,
                unmapped: r.dir,
            });
        }
        if e.err == ErrCheck::NotChecked {
            self.reports.push(DebugReport::MapErrorNotChecked {
                dma,
                len: r.len,
                kind: e.kind,
            });
        }
    }

    /// Records `dma` as freed, evicting the oldest *live* records beyond the
    /// capacity. Queue pairs whose record was superseded (the address was
    /// reused, or freed again) are skipped, never evict the newer record
    /// (issue 11, bug 12), and are compacted away when they pile up.
    fn remember_freed(&mut self, dma: DmaAddr, kind: MapKind, len: u64) {
        self.freed_seq += 1;
        let seq = self.freed_seq;
        self.freed.insert(dma.raw(), Freed { kind, len, seq });
        self.freed_order.push_back((dma.raw(), seq));
        while self.freed.len() > self.freed_cap {
            let Some((addr, s)) = self.freed_order.pop_front() else {
                break;
            };
            if self.freed.get(&addr).is_some_and(|f| f.seq == s) {
                self.freed.remove(&addr);
            }
        }
        if self.freed_order.len() > 2 * self.freed_cap.max(1) {
            let freed = &self.freed;
            self.freed_order
                .retain(|(a, s)| freed.get(a).is_some_and(|f| f.seq == *s));
        }
    }

    /// Removes entry `i` at `dma`, its cache lines, and remembers it as freed.
    fn take(&mut self, dma: DmaAddr, i: usize) -> Option<Entry> {
        let v = self.active.get_mut(&dma.raw())?;
        if i >= v.len() {
            return None;
        }
        let e = v.remove(i);
        if v.is_empty() {
            self.active.remove(&dma.raw());
        }
        self.count -= 1;
        if self.count == 0 {
            self.max_len = 0;
        }
        for k in &e.lines {
            self.lines.remove(k);
        }
        if self.freed_cap > 0 {
            self.remember_freed(dma, e.kind, e.len);
        }
        Some(e)
    }

    /// The mapping holding `[dma, dma + len)`, or failing that the one
    /// holding `dma` (returned with `false`). Several mappings may hold it
    /// (the same memory mapped twice without an IOMMU has one DMA address):
    /// like Linux `__hash_bucket_find` with `containing_match`, the best fit
    /// wins, scored by equal size and equal direction (a perfect fit at
    /// once, else the first of the best score).
    fn find_containing(&self, dma: DmaAddr, len: u64, dir: Direction) -> Option<(&Entry, bool)> {
        let start = dma.raw();
        let end = start.checked_add(len);
        let lo = start.saturating_sub(self.max_len);
        let mut partial = None;
        let mut best: Option<(&Entry, u8)> = None;
        for (_, v) in self.active.range(lo..=start).rev() {
            for e in v {
                let e_end = e.dma.raw().saturating_add(e.len);
                if start >= e_end {
                    continue;
                }
                if matches!(end, Some(x) if x <= e_end) {
                    let score = u8::from(e.len == len) + u8::from(e.dir == dir);
                    if score == 2 {
                        return Some((e, true));
                    }
                    if best.is_none_or(|(_, b)| score > b) {
                        best = Some((e, score));
                    }
                    continue;
                }
                if partial.is_none() {
                    partial = Some(e);
                }
            }
        }
        best.map(|(e, _)| (e, true)).or(partial.map(|e| (e, false)))
    }

    /// Linux `check_sync`.
    pub fn check_sync(&mut self, op: SyncCall, dma: DmaAddr, len: u64, dir: Direction) {
        let (mapping, mapped) = match self.find_containing(dma, len, dir) {
            None => {
                self.reports
                    .push(DebugReport::SyncNotMapped { op, dma, len });
                return;
            }
            Some((e, whole)) => {
                let found = (e.dma, e.dir);
                if !whole {
                    self.reports.push(DebugReport::SyncOutsideRange {
                        op,
                        mapping: e.dma,
                        mapped_len: e.len,
                        dma,
                        len,
                    });
                }
                found
            }
        };
        if mapped == Direction::Bidirectional {
            return;
        }
        if dir != mapped {
            self.reports.push(DebugReport::SyncDirectionMismatch {
                op,
                mapping,
                mapped,
                synced: dir,
            });
        }
        match op {
            SyncCall::ForCpu if mapped != Direction::FromDevice && dir != Direction::ToDevice => {
                self.reports.push(DebugReport::SyncReadOnlyForCpu {
                    mapping,
                    mapped,
                    synced: dir,
                });
            }
            SyncCall::ForDevice
                if mapped != Direction::ToDevice && dir != Direction::FromDevice =>
            {
                self.reports.push(DebugReport::SyncWriteOnlyForDevice {
                    mapping,
                    mapped,
                    synced: dir,
                });
            }
            _ => {}
        }
    }

    /// Linux `debug_dma_mapping_error`: marks the first unchecked mapping at
    /// exactly `dma` as checked.
    pub fn mark_checked(&mut self, dma: DmaAddr) {
        if let Some(v) = self.active.get_mut(&dma.raw()) {
            if let Some(e) = v.iter_mut().find(|e| e.err == ErrCheck::NotChecked) {
                e.err = ErrCheck::Checked;
            }
        }
    }
}
