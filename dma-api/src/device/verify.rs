//! The one pass over a table's CPU entries that every unclassified map
//! makes: each entry's kind checked against the memory map (kinds come from
//! the map, never from the caller), the entry screened against the device's
//! segment rules. Nothing is written: an all-RAM table needs no plan.
//!
//! Linux checks a page's pgmap once per sg entry: `dma_direct_map_sg`
//! (kernel/dma/direct.c) and `iommu_dma_map_sg` (drivers/iommu/dma-iommu.c),
//! reached from kernel/dma/mapping.c, call `pci_p2pdma_state`
//! (drivers/pci/p2pdma.c) for every entry, which recomputes the map type
//! only when the entry's provider differs from the last one's. The pgmap is
//! part of the page, so that check is a pointer load. Our kind is a claim
//! the caller wrote into the entry, so it is checked against the memory map
//! instead, and a search of the map per entry would cost more than the
//! mapping it guards. So the pass keeps, like Linux's per-loop state, what
//! the last entries hit: the range of the map the last RAM entry lay in
//! (and, apart, the last range of any other kind). An entry that claims RAM
//! and lies wholly inside the RAM hint costs three comparisons; anything
//! else is checked against the other hint, then costs one binary search,
//! which renews the hint of the kind it finds. A hint is never trusted
//! beyond its bounds (an entry inside a range of a sorted, disjoint map has
//! that range as its only candidate, which is what a fresh search finds)
//! and never outlives the pass: it is taken under the memory map's read
//! lock and dropped before the lock, so a range registered or removed
//! between two maps cannot be answered from a stale hint
//! (`verify_tests.rs` compares the pass with a fresh search per entry).
//!
//! The segment rules are screened without a branch per entry: the OR of
//! every entry's `start ^ last` against the complement of the boundary mask
//! is exactly "some entry crosses a boundary" (AND distributes over OR),
//! the longest entry against the max segment size, and the OR of every
//! inner edge against the virt boundary mask (when the device has one); the
//! entry-by-entry check that names the offender runs only when a screen
//! fires.

use crate::error::DmaError;
use crate::memmap::MemoryMap;
use scatterlist::{SegKind, SgEntry, SgTable};

/// The segment rules screened in the same pass as the kinds.
#[derive(Clone, Copy, Debug)]
pub(super) struct Screen {
    /// Max segment size.
    pub(super) max: u64,
    /// Complement of the segment boundary mask.
    pub(super) not_boundary: u64,
    /// Virt boundary mask (0: none, and the inner edges are not collected).
    pub(super) virt: u64,
}

impl Screen {
    /// Screens nothing (a query, not a map).
    pub(super) const NONE: Self = Self {
        max: u64::MAX,
        not_boundary: 0,
        virt: 0,
    };
}

/// What one pass over a table found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Pass {
    /// Every entry is system RAM.
    pub(super) all_ram: bool,
    /// Some entry may break a segment rule: check entry by entry.
    pub(super) suspect: bool,
}

/// A range of the memory map an entry of this pass hit, as raw inclusive
/// bounds, with its kind.
#[derive(Clone, Copy)]
struct Hint {
    start: u64,
    last: u64,
    kind: SegKind,
}

impl Hint {
    /// Covers nothing.
    const NONE: Self = Self {
        start: 1,
        last: 0,
        kind: SegKind::Ram,
    };

    /// The hint for map range `[start, last]`.
    fn new(start: u64, last: u64, kind: SegKind) -> Self {
        Self { start, last, kind }
    }

    /// True if `[start, last]` lies wholly inside the hint; false for an
    /// empty or wrapping entry (`last < start`) and for a chain link (start
    /// 0, length 0: `last` wraps to `u64::MAX`, and no range of the map
    /// holds both byte 0 and byte `u64::MAX`: that would be 2^64 bytes, one
    /// more than a range's `u64` size can say).
    #[inline(always)]
    fn covers(&self, start: u64, last: u64) -> bool {
        self.start <= start && last <= self.last && start <= last
    }
}

/// What the slow path found for a slot the RAM hint did not answer.
enum Slot {
    /// A chain link: no entry.
    Link,
    /// An entry whose kind the memory map confirms; `ram` is the RAM hint
    /// from now on.
    Entry { is_ram: bool, ram: Hint },
}

/// Checks every CPU entry of `table` against the memory map (a wrong kind
/// is [`DmaError::KindMismatch`] naming the first such entry) and screens
/// it against `sc`. Writes nothing: an all-RAM table needs no plan from a
/// backend that reads the entries itself
/// ([`DmaBackend::map_sg_ram`](crate::port::DmaBackend::map_sg_ram)).
pub(super) fn verify(memmap: &MemoryMap, table: &SgTable, sc: Screen) -> Result<Pass, DmaError> {
    // With no allocated entry spare, every slot but the chain links is a
    // CPU entry: walk the raw slots (a chain link fails the RAM hint and is
    // recognised on the slow path, so the fast path never tests for one).
    let plain = table.alloc_nents() == table.orig_nents();
    match (plain, sc.virt != 0) {
        (true, false) => pass::<false>(memmap, table, table.slots().iter(), sc),
        (true, true) => pass::<true>(memmap, table, table.slots().iter(), sc),
        (false, false) => pass::<false>(memmap, table, table.iter(), sc),
        (false, true) => pass::<true>(memmap, table, table.iter(), sc),
    }
}

/// The pass over `slots` (CPU entries and possibly chain links);
/// `GAPS` collects the inner edges for the virt boundary.
#[inline(always)]
fn pass<'t, const GAPS: bool>(
    memmap: &MemoryMap,
    table: &SgTable,
    slots: impl Iterator<Item = &'t SgEntry>,
    sc: Screen,
) -> Result<Pass, DmaError> {
    let (mut ram, mut other) = (Hint::NONE, Hint::NONE);
    let mut all_ram = true;
    let (mut cross, mut longest, mut gaps, mut prev_end, mut inner) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    for e in slots {
        let (start, len) = (e.phys().raw(), u64::from(e.len()));
        let last = start.wrapping_add(len).wrapping_sub(1);
        if !(e.is_ram() && ram.covers(start, last)) {
            match slow(memmap, table, e, ram, &mut other)? {
                Slot::Link => continue,
                Slot::Entry { is_ram, ram: r } => {
                    all_ram &= is_ram;
                    ram = r;
                }
            }
        }
        cross |= start ^ last;
        longest = longest.max(len);
        if GAPS {
            // `inner` is 0 for the first entry, all ones after it.
            gaps |= (prev_end | start) & inner;
            inner = u64::MAX;
            prev_end = last.wrapping_add(1);
        }
    }
    let suspect = longest > sc.max || cross & sc.not_boundary != 0 || gaps & sc.virt != 0;
    Ok(Pass { all_ram, suspect })
}

/// A slot the RAM hint did not answer: a chain link, or an entry checked
/// against the other hint, then the RAM hint (an entry claiming another
/// kind inside RAM), then one search of the map (which renews the hint of
/// the kind it finds).
#[cold]
#[inline(never)]
fn slow(
    memmap: &MemoryMap,
    table: &SgTable,
    e: &SgEntry,
    mut ram: Hint,
    other: &mut Hint,
) -> Result<Slot, DmaError> {
    if e.is_chain() {
        return Ok(Slot::Link);
    }
    let (phys, len, claimed) = (e.phys(), u64::from(e.len()), e.kind());
    let (start, last) = (phys.raw(), phys.raw().wrapping_add(len).wrapping_sub(1));
    let actual = if other.covers(start, last) {
        Some(other.kind)
    } else if ram.covers(start, last) {
        Some(SegKind::Ram)
    } else {
        memmap.kind_of_range(phys, len).map(|(r, kind)| {
            if let Some(l) = r.last() {
                let hint = Hint::new(r.start.raw(), l.raw(), kind);
                match kind {
                    SegKind::Ram => ram = hint,
                    _ => *other = hint,
                }
            }
            kind
        })
    };
    if actual != Some(claimed) {
        // The entry's index among the CPU entries, counted only here (`e`
        // is one of them: the fast path never counts).
        let index = table
            .iter()
            .position(|x| core::ptr::eq(x, e))
            .unwrap_or_default();
        return Err(DmaError::KindMismatch {
            index,
            phys,
            len,
            claimed,
            actual,
        });
    }
    Ok(Slot::Entry {
        is_ram: claimed == SegKind::Ram,
        ram,
    })
}
