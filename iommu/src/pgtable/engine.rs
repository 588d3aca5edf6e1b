//! The radix engine: map / unmap / iova_to_phys over any [`PtFormat`],
//! following generic_pt (drivers/iommu/generic_pt/iommu_pt.h) semantics.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use core::sync::atomic::{AtomicU64, Ordering};
use scatterlist::{Iova, PhysAddr};

#[cfg(feature = "std")]
use super::SharedTableMem;
use super::{best_pgsize, mask, shr, FrameStore, LeafBits, Prot, PtError, PtFormat, Pte, TableMem};
use crate::walker::HwRegs;

/// The IOTLB gather of an unmap (Linux `struct iommu_iotlb_gather`): the IOVA
/// range whose translations were removed and the table pages detached from
/// the tree. The pages stay allocated (a walker or walk cache may still read
/// them) until the gather is released *after* the invalidation covering it.
#[must_use = "table pages are only released after the IOTLB invalidation: pass the gather to a flush"]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Gather {
    /// Start of the invalidated range.
    pub iova: Iova,
    /// Length of the invalidated range (0 for a gather that only carries
    /// pages and needs a full flush).
    pub len: u64,
    pub(super) freed: Vec<PhysAddr>,
}

impl Gather {
    /// The gather of `len` bytes unmapped at `iova`, with no table detached.
    #[inline]
    pub(super) fn range(iova: Iova, len: u64) -> Self {
        Self {
            iova,
            len,
            freed: Vec::new(),
        }
    }

    /// Table frames waiting for the invalidation.
    pub fn freed_tables(&self) -> &[PhysAddr] {
        &self.freed
    }

    /// Whether this gather neither invalidates nor frees anything.
    pub fn is_empty(&self) -> bool {
        self.len == 0 && self.freed.is_empty()
    }

    /// Merges `other` into `self` (range grows to cover both).
    pub fn merge(&mut self, other: Gather) {
        if other.len != 0 {
            if self.len == 0 {
                self.iova = other.iova;
                self.len = other.len;
            } else {
                let s = self.iova.raw().min(other.iova.raw());
                let e = (self.iova.raw().saturating_add(self.len))
                    .max(other.iova.raw().saturating_add(other.len));
                self.iova = Iova::new(s);
                self.len = e - s;
            }
        }
        self.freed.extend(other.freed);
    }
}

/// Work counters of a [`PageTable`]'s range walks (cumulative), so that tests
/// can bound the cost of an operation by counting instead of timing it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PtStats {
    /// Unmap walks started (each [`PageTable::unmap`] and
    /// [`PageTable::unmap_sparse`] call that was not refused outright).
    pub unmap_calls: u64,
    /// Table entries read by range walks: unmaps and
    /// [`PageTable::for_each_leaf`]. Single-address lookups and maps are not
    /// counted here.
    pub entries_visited: u64,
    /// Single-address lookups ([`PageTable::iova_to_phys`]).
    pub lookups: u64,
}

/// The counters behind [`PtStats`]; atomic so that the `&self` walks count.
/// The `&mut self` operations (map, unmap) count without an atomic
/// read-modify-write ([`StatCells::bump`]).
#[derive(Debug, Default)]
pub(super) struct StatCells {
    unmap_calls: AtomicU64,
    entries_visited: AtomicU64,
    lookups: AtomicU64,
    /// One-page unmaps from the walk cache: each one call reading one entry
    /// (counted once here rather than in both counters above).
    pub(super) one_page_unmaps: u64,
}

impl StatCells {
    /// Counts from a `&self` walk (other walks may run at the same time).
    #[inline]
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts from a `&mut self` operation: the counter is exclusively ours.
    #[inline]
    pub(super) fn bump(c: &mut AtomicU64, n: u64) {
        *c.get_mut() += n;
    }

    /// One unmap walk that read `visited` entries.
    #[inline]
    pub(super) fn unmap_walk(&mut self, visited: u64) {
        Self::bump(&mut self.unmap_calls, 1);
        Self::bump(&mut self.entries_visited, visited);
    }
}

/// A radix IO page table of format `F`, living in the memory `M`.
///
/// With `std`, `M` defaults to the shared simulated RAM as a table writer
/// holds it ([`SharedTableMem`]), so `PageTable<F>` is the table the domains
/// and the DMA backend use. Any [`TableMem`] works: a [`SharedMem`](super::SharedMem) itself
/// (locked once per call), an owned [`BTreeMem`](super::BTreeMem) or a
/// kernel's own [`FrameStore`] in a `no_std` build.
#[cfg(feature = "std")]
#[derive(Debug)]
pub struct PageTable<F: PtFormat, M: TableMem = SharedTableMem> {
    pub(super) core: Core<F>,
    pub(super) mem: M,
    pub(super) deferred: Vec<PhysAddr>,
    pub(super) table_frames: usize,
    /// Tables linked into the tree below the root (an exact count: `Drop`
    /// stops reading entries once it has found them all, and reads none
    /// of a table that never had one).
    pub(super) linked_tables: usize,
    pub(super) stats: StatCells,
    pub(super) walk_cache: WalkCache,
}

/// A radix IO page table of format `F`, living in the memory `M` (any
/// [`TableMem`]: an owned [`BTreeMem`](super::BTreeMem) or a kernel's own
/// [`FrameStore`]).
#[cfg(not(feature = "std"))]
#[derive(Debug)]
pub struct PageTable<F: PtFormat, M: TableMem> {
    pub(super) core: Core<F>,
    pub(super) mem: M,
    pub(super) deferred: Vec<PhysAddr>,
    pub(super) table_frames: usize,
    /// Tables linked into the tree below the root (an exact count: `Drop`
    /// stops reading entries once it has found them all, and reads none
    /// of a table that never had one).
    pub(super) linked_tables: usize,
    pub(super) stats: StatCells,
    pub(super) walk_cache: WalkCache,
}

/// Everything of a table except its memory: the walks borrow it while the
/// memory is borrowed.
#[derive(Debug)]
pub(super) struct Core<F: PtFormat> {
    pub(super) fmt: F,
    pub(super) root: PhysAddr,
    pub(super) pgsize_bitmap: u64,
    geo: Geometry,
}

/// Most levels any format has (AMD v1 mode 6).
const MAX_LEVELS: usize = 8;

/// The format's geometry, read once at creation: the walks index these
/// arrays instead of asking the format (a `match` per call for
/// [`AnyFormat`](super::AnyFormat)).
#[derive(Debug, Clone, Copy)]
struct Geometry {
    top: u32,
    item: [u8; MAX_LEVELS],
    bits: [u8; MAX_LEVELS],
    /// For each page-size log2, the highest level a leaf of that size can
    /// sit at (0 if none).
    leaf_of: [u8; 64],
    ias: u32,
    oas: u32,
    ias_mask: u64,
    oas_mask: u64,
    /// For each level, how a leaf of one entry looks there.
    leaf: [LeafBits; MAX_LEVELS],
}

impl Geometry {
    fn of<F: PtFormat>(fmt: &F) -> Result<Self, PtError> {
        let top = fmt.top_level();
        if top as usize >= MAX_LEVELS {
            return Err(PtError::BadConfig {
                what: "table levels",
                value: u64::from(top) + 1,
            });
        }
        let mut g = Self {
            top,
            item: [0; MAX_LEVELS],
            bits: [0; MAX_LEVELS],
            leaf_of: [0; 64],
            ias: fmt.ias(),
            oas: fmt.oas(),
            ias_mask: mask(fmt.ias()),
            oas_mask: mask(fmt.oas()),
            leaf: [LeafBits::NEVER; MAX_LEVELS],
        };
        for l in 0..=top {
            g.leaf[l as usize] = fmt.one_entry_leaf(l);
            // Entry spans and index widths are below 64 for every format.
            g.item[l as usize] = fmt.item_lg2(l).min(63) as u8;
            g.bits[l as usize] = fmt.index_bits(l).min(63) as u8;
        }
        for (lg2, slot) in g.leaf_of.iter_mut().enumerate() {
            let mut l = top;
            while l > 0 && fmt.possible_sizes(l) & (1u64 << lg2) == 0 {
                l -= 1;
            }
            *slot = l as u8;
        }
        Ok(g)
    }
}

/// What a map did besides writing leaves: tables created, empty tables a
/// large leaf replaced (released after the next flush), and the walk cache
/// it used and updated.
pub(super) struct MapScratch {
    pub(super) new_tables: usize,
    pub(super) replaced: Vec<PhysAddr>,
    pub(super) wc: WalkCache,
}

impl MapScratch {
    pub(super) fn new(wc: WalkCache) -> Self {
        Self {
            new_tables: 0,
            replaced: Vec::new(),
            wc,
        }
    }
}

/// The software walk cache: the table the last map or unmap found its entry
/// in, and the VA span that table covers. The next call in the same span
/// starts there instead of at the root, skipping the reads of the levels
/// above (per-page calls at consecutive IOVAs, the common DMA pattern, hit
/// it 511 times in 512 with 4 KiB pages).
///
/// Sound because the engine alone changes the structure of its tables (as in
/// the kernel, where table memory belongs to the page-table code): every
/// operation that detaches or replaces a table clears the cache, and tables
/// are only added below existing ones otherwise. What the walker reads is
/// unchanged: the cache holds where to write, never what is written.
#[derive(Debug, Clone, Copy)]
pub(super) struct WalkCache {
    valid: bool,
    pub(super) level: u32,
    table: PhysAddr,
    /// First VA of the span the table covers.
    base: u64,
    /// `span - 1`: the VA bits that index inside the table's span.
    span_mask: u64,
    /// log2 of the bytes one entry of the table covers, less 3 (entries are
    /// 8 bytes): `va >> slot_shift` is `va`'s entry offset in bytes.
    slot_shift: u32,
    /// The one-entry page size of the table (`2^item`) if the table's page
    /// sizes include it, else 0: what the one-page fast path accepts.
    page: u64,
    /// `!span_mask | (page - 1)`: a VA the one-page path may use has these
    /// bits equal to `page_base`.
    page_mask: u64,
    /// `base`, or 1 (which no VA masked by `page_mask` equals) when `page`
    /// is 0 or the cache is empty.
    page_base: u64,
    /// `table - (base >> slot_shift)`: a page-aligned VA the table covers
    /// has its entry at `slot_bias + (va >> slot_shift)`.
    slot_bias: u64,
    /// How a leaf of one entry of the table looks
    /// ([`PtFormat::one_entry_leaf`]).
    pub(super) leaf: LeafBits,
}

impl Default for WalkCache {
    fn default() -> Self {
        Self {
            valid: false,
            level: 0,
            table: PhysAddr::new(0),
            base: 0,
            span_mask: 0,
            slot_shift: 0,
            page: 0,
            page_mask: 0,
            page_base: 1,
            slot_bias: 0,
            leaf: LeafBits::NEVER,
        }
    }
}

impl WalkCache {
    /// Whether the cached table covers `va`.
    #[inline]
    pub(super) fn covers(&self, va: u64) -> bool {
        self.valid && va & !self.span_mask == self.base
    }

    /// The entry slot for a one-page call of `size` bytes at `va`, if the
    /// cached table covers `va` and the page is exactly one entry of it
    /// (not a contiguous group) of a size the table uses, at a size-aligned
    /// IOVA.
    #[inline(always)]
    pub(super) fn page_slot(&self, va: u64, size: u64) -> Option<PhysAddr> {
        // `page_base` is 1 unless the cache holds a table whose one-entry
        // size `page` is in use, so no size matches an empty cache (0
        // included), and `va & page_mask` also checks `va`'s alignment.
        let ok = size == self.page && va & self.page_mask == self.page_base;
        // `va - base` is a multiple of the page `2^item` (`item >= 3`, see
        // `Core::remember`), so the slot `table + ((va - base) >> item) * 8`
        // is `slot_bias + (va >> slot_shift)`.
        ok.then(|| PhysAddr::new(self.slot_bias.wrapping_add(va >> (self.slot_shift & 63))))
    }
}

/// The fast paths an unmap may take: the walk from the cached table for a
/// range inside one leaf, and the leaf runs of `unmap_level` (clearing
/// one-entry leaves a table at a time). [`PageTable::unmap_full_walk`]
/// takes neither, for the tests comparing them with the general rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct UnmapPaths {
    pub(super) one_leaf: bool,
    pub(super) runs: bool,
}

impl UnmapPaths {
    /// Every fast path.
    pub(super) const ALL: Self = Self {
        one_leaf: true,
        runs: true,
    };
    /// The leaf runs only: for ranges of many pages.
    pub(super) const RUNS: Self = Self {
        one_leaf: false,
        runs: true,
    };
    /// None: the general rules alone.
    const NONE: Self = Self {
        one_leaf: false,
        runs: false,
    };
}

struct UnmapAcc {
    unmapped: u64,
    freed: Vec<PhysAddr>,
    visited: u64,
    runs: bool,
}

/// What an [`PageTable::unmap_sparse`] walk did: bytes unmapped, tables
/// detached, entries read, and the IOVA span `[lo, hi]` it changed.
struct SparseAcc {
    unmapped: u64,
    freed: Vec<PhysAddr>,
    visited: u64,
    lo: u64,
    hi: u64,
}

impl SparseAcc {
    fn touch(&mut self, lo: u64, hi: u64) {
        self.lo = self.lo.min(lo);
        self.hi = self.hi.max(hi);
    }
}

#[cfg(feature = "std")]
impl<F: PtFormat> PageTable<F> {
    /// An empty table in fresh simulated memory.
    pub fn new(fmt: F) -> Result<Self, PtError> {
        Self::with_mem(fmt, SharedTableMem::fresh())
    }
}

impl<F: PtFormat, M: TableMem> PageTable<F, M> {
    /// An empty table whose frames come from `mem`.
    pub fn with_mem(fmt: F, mut mem: M) -> Result<Self, PtError> {
        let geo = Geometry::of(&fmt)?;
        let bytes = fmt.table_bytes(geo.top).next_power_of_two();
        let root = mem.with_store_mut(|m| m.alloc_frames(bytes))?;
        let pgsize_bitmap = fmt.pgsize_bitmap();
        Ok(Self {
            core: Core {
                fmt,
                root,
                pgsize_bitmap,
                geo,
            },
            mem,
            deferred: Vec::new(),
            table_frames: 1,
            linked_tables: 0,
            stats: StatCells::default(),
            walk_cache: WalkCache::default(),
        })
    }

    /// Restricts the page sizes used to `bitmap & format sizes` (like
    /// `domain->pgsize_bitmap`). At least one size must remain.
    pub fn restrict_pgsizes(&mut self, bitmap: u64) -> Result<(), PtError> {
        let b = self.core.fmt.pgsize_bitmap() & bitmap;
        if b == 0 {
            return Err(PtError::BadConfig {
                what: "pgsize bitmap",
                value: bitmap,
            });
        }
        self.core.pgsize_bitmap = b;
        // The cache's one-page size follows the bitmap.
        self.walk_cache = WalkCache::default();
        Ok(())
    }

    /// The format.
    pub fn format(&self) -> &F {
        &self.core.fmt
    }

    /// The page sizes in use.
    pub fn pgsize_bitmap(&self) -> u64 {
        self.core.pgsize_bitmap
    }

    /// Physical address of the root table.
    pub fn root(&self) -> PhysAddr {
        self.core.root
    }

    /// The memory the table lives in.
    pub fn mem(&self) -> &M {
        &self.mem
    }

    /// Register values to program the hardware walker with.
    pub fn hw_regs(&self) -> HwRegs {
        self.core.fmt.hw_regs(self.core.root)
    }

    /// Work counters of the range walks so far.
    pub fn stats(&self) -> PtStats {
        let s = &self.stats;
        PtStats {
            unmap_calls: s.unmap_calls.load(Ordering::Relaxed) + s.one_page_unmaps,
            entries_visited: s.entries_visited.load(Ordering::Relaxed) + s.one_page_unmaps,
            lookups: s.lookups.load(Ordering::Relaxed),
        }
    }

    /// Table frames allocated by this table (including detached ones still
    /// waiting in a gather).
    pub fn table_frames(&self) -> usize {
        self.table_frames
    }

    /// Tables linked below the root now (not counting detached ones
    /// waiting in a gather or for [`take_deferred`](Self::take_deferred)).
    pub fn linked_tables(&self) -> usize {
        self.linked_tables
    }

    /// Maps `[iova, iova + size)` to `[paddr, paddr + size)`, choosing for
    /// each chunk the largest page size both addresses are aligned to and that
    /// fits the rest of the range (generic_pt `pt_compute_best_pgsize`, driven
    /// like `iommu_map`). Mapping over any existing translation fails with
    /// [`PtError::AddressInUse`]; a failed map leaves no part of the range
    /// mapped. Empty tables replaced by a large leaf are detached and wait for
    /// the next flush ([`take_deferred`](Self::take_deferred)).
    #[inline]
    pub fn map(
        &mut self,
        iova: Iova,
        paddr: PhysAddr,
        size: u64,
        prot: Prot,
    ) -> Result<(), PtError> {
        if self.map_cached(iova, paddr, size, prot) {
            return Ok(());
        }
        self.map_general(iova, paddr, size, prot)
    }

    /// [`map`](Self::map) past the one-page fast path.
    #[inline(never)]
    fn map_general(
        &mut self,
        iova: Iova,
        paddr: PhysAddr,
        size: u64,
        prot: Prot,
    ) -> Result<(), PtError> {
        self.core.check_map(iova, paddr, size, prot)?;
        let mut scratch = MapScratch::new(self.walk_cache);
        let core = &self.core;
        let res = self
            .mem
            .with_store_mut(|m| core.map_range(m, iova, paddr, size, prot, &mut scratch));
        self.absorb(scratch, res.is_ok());
        res
    }

    /// Books what a map did: tables created, empty tables replaced.
    #[inline]
    pub(super) fn absorb(&mut self, scratch: MapScratch, ok: bool) {
        self.table_frames += scratch.new_tables;
        // Every table a map creates is linked at once; `replaced` holds the
        // tables it detached (replaced by a large leaf, or rolled back).
        self.linked_tables = (self.linked_tables + scratch.new_tables) - scratch.replaced.len();
        // A failed map may have rolled back (detached) tables.
        self.walk_cache = if ok && scratch.replaced.is_empty() {
            scratch.wc
        } else {
            WalkCache::default()
        };
        if !scratch.replaced.is_empty() {
            self.deferred.extend(scratch.replaced);
        }
    }

    /// Unmaps `[iova, iova + size)` and returns the bytes unmapped with the
    /// gather that must be flushed. generic_pt semantics: a range that ends
    /// inside a large (or contiguous) entry removes the whole entry and the
    /// returned size includes all of it; unmapping stops at the first hole or
    /// at a start inside a large entry (the size so far is returned); a table
    /// entirely covered by the range is detached into the gather. Invalid or
    /// misaligned ranges unmap nothing (`iommu_unmap` returns 0).
    #[must_use = "the gather must be flushed before its table pages are released"]
    #[inline]
    pub fn unmap(&mut self, iova: Iova, size: u64) -> (u64, Gather) {
        match self.unmap_cached(iova, size) {
            Some(n) => (n, Gather::range(iova, n)),
            None => self.unmap_inner(iova, size, UnmapPaths::ALL),
        }
    }

    /// [`unmap`](Self::unmap) without its fast paths: the single-leaf walk
    /// from the cache and the leaf runs (for tests that check the fast
    /// paths against the full walk).
    #[doc(hidden)]
    pub fn unmap_full_walk(&mut self, iova: Iova, size: u64) -> (u64, Gather) {
        self.unmap_inner(iova, size, UnmapPaths::NONE)
    }

    /// Unmaps every leaf that starts inside `[iova, iova + size)`, stepping
    /// over holes: for an IOVA reservation whose linked parts are scattered
    /// (the two-step API's `unlink`/`destroy` of a range with holes), where
    /// [`unmap`](Self::unmap) would stop at the first hole.
    ///
    /// An empty entry at level L skips its whole `2^item_lg2(L)` span, so the
    /// work follows what is mapped (the tables holding leaves in the range),
    /// not the size of the range. Otherwise [`unmap`](Self::unmap)'s rules:
    /// a leaf that starts inside the range and ends past it is removed whole
    /// and counted whole (generic_pt, drivers/iommu/generic_pt/iommu_pt.h);
    /// a leaf that starts before the range is left alone; a table entirely
    /// covered by the range is detached into the gather. Returns the bytes
    /// unmapped and a gather covering everything changed. Invalid or
    /// misaligned ranges unmap nothing.
    #[must_use = "the gather must be flushed before its table pages are released"]
    pub fn unmap_sparse(&mut self, iova: Iova, size: u64) -> (u64, Gather) {
        let core = &self.core;
        let Some(last) = core.unmap_last(iova, size) else {
            return (
                0,
                Gather {
                    iova,
                    len: 0,
                    freed: Vec::new(),
                },
            );
        };
        let stats = &mut self.stats;
        let wc = &mut self.walk_cache;
        let linked = &mut self.linked_tables;
        self.mem.with_store_mut(|m| {
            let mut acc = SparseAcc {
                unmapped: 0,
                freed: Vec::new(),
                visited: 0,
                lo: u64::MAX,
                hi: 0,
            };
            let top = core.top();
            core.unmap_sparse_level(m, core.root, top, iova.raw(), last, &mut acc);
            stats.unmap_walk(acc.visited);
            if !acc.freed.is_empty() {
                *wc = WalkCache::default();
                *linked -= acc.freed.len();
            }
            let gather = if acc.lo > acc.hi {
                Gather {
                    iova,
                    len: 0,
                    freed: acc.freed,
                }
            } else {
                // `hi - lo + 1` overflows only for the whole 64-bit space.
                Gather {
                    iova: Iova::new(acc.lo),
                    len: (acc.hi - acc.lo).saturating_add(1),
                    freed: acc.freed,
                }
            };
            (acc.unmapped, gather)
        })
    }

    /// Calls `f(iova, paddr, size_lg2)` for every leaf overlapping
    /// `[iova, iova + size)` (a leaf that starts before the range included),
    /// once per leaf (a contiguous group counts once), in address order.
    /// Holes are skipped a whole entry span at a time at the level where they
    /// appear, so the work follows what is mapped.
    pub fn for_each_leaf(&self, iova: Iova, size: u64, mut f: impl FnMut(Iova, PhysAddr, u32)) {
        if size == 0 || iova.raw() > self.core.geo.ias_mask {
            return;
        }
        let last = iova
            .raw()
            .saturating_add(size - 1)
            .min(self.core.geo.ias_mask);
        let core = &self.core;
        let visited = self.mem.with_store(|m| {
            let mut visited = 0;
            core.leaves_level(
                m,
                core.root,
                core.top(),
                iova.raw(),
                last,
                &mut visited,
                &mut f,
            );
            visited
        });
        StatCells::add(&self.stats.entries_visited, visited);
    }

    #[inline(never)]
    pub(super) fn unmap_inner(
        &mut self,
        iova: Iova,
        size: u64,
        paths: UnmapPaths,
    ) -> (u64, Gather) {
        let core = &self.core;
        let Some(last) = core.unmap_last(iova, size) else {
            return (
                0,
                Gather {
                    iova,
                    len: 0,
                    freed: Vec::new(),
                },
            );
        };
        let stats = &mut self.stats;
        let wc = &mut self.walk_cache;
        let linked = &mut self.linked_tables;
        self.mem.with_store_mut(|m| {
            let mut visited = 0;
            if paths.one_leaf {
                if let Some(n) = core.unmap_one_leaf(m, iova.raw(), last, &mut visited, wc) {
                    stats.unmap_walk(visited);
                    return (
                        n,
                        Gather {
                            iova,
                            len: n,
                            freed: Vec::new(),
                        },
                    );
                }
            }
            let mut acc = UnmapAcc {
                unmapped: 0,
                freed: Vec::new(),
                visited,
                runs: paths.runs,
            };
            core.unmap_walk(m, iova.raw(), last, &mut acc);
            stats.unmap_walk(acc.visited);
            if !acc.freed.is_empty() {
                *wc = WalkCache::default();
                *linked -= acc.freed.len();
            }
            let len = acc
                .unmapped
                .max(if acc.freed.is_empty() { 0 } else { size });
            (
                acc.unmapped,
                Gather {
                    iova,
                    len,
                    freed: acc.freed,
                },
            )
        })
    }

    /// The physical address `iova` translates to, or `None` (Linux returns 0).
    pub fn iova_to_phys(&self, iova: Iova) -> Option<PhysAddr> {
        StatCells::add(&self.stats.lookups, 1);
        self.mem.with_store(|m| self.core.iova_to_phys(m, iova))
    }

    /// The decoded leaf covering `iova`: (level, raw entry, decoded entry).
    pub fn leaf_entry(&self, iova: Iova) -> Option<(u32, u64, Pte)> {
        self.mem.with_store(|m| self.core.leaf_entry(m, iova))
    }

    /// Number of valid leaves; a contiguous group counts once (generic_pt
    /// kunit `count_valids`).
    pub fn leaf_count(&self) -> usize {
        let core = &self.core;
        self.mem
            .with_store(|m| core.count_level(m, core.root, core.top()))
    }

    /// Leaves per page size (log2 -> count).
    pub fn leaf_sizes(&self) -> BTreeMap<u32, usize> {
        self.mem.with_store(|m| self.core.leaf_sizes(m))
    }

    /// Takes the tables detached by `map` (replaced by large leaves) as a
    /// gather needing a full flush before release.
    pub fn take_deferred(&mut self) -> Option<Gather> {
        if self.deferred.is_empty() {
            return None;
        }
        Some(Gather {
            iova: Iova::ZERO,
            len: 0,
            freed: core::mem::take(&mut self.deferred),
        })
    }

    /// Releases a gather's table pages. Call only after the IOTLB (and walk
    /// cache) invalidation covering the gather has completed.
    #[inline]
    pub fn release(&mut self, gather: Gather) {
        if gather.freed.is_empty() {
            return;
        }
        let released = self.mem.with_store_mut(|m| {
            gather
                .freed
                .into_iter()
                .filter(|&t| m.free_frames(t).is_ok())
                .count()
        });
        self.table_frames -= released;
    }
}

impl<F: PtFormat> Core<F> {
    /// The last IOVA of an unmap of `[iova, iova + size)`, or `None` for a
    /// range unmap refuses (empty, not granule aligned, past the input
    /// address size: `iommu_unmap` returns 0).
    pub(super) fn unmap_last(&self, iova: Iova, size: u64) -> Option<u64> {
        let g = self.granule();
        let last = iova.raw().checked_add(size.checked_sub(1)?)?;
        let ok = (iova.raw() | size) & (g - 1) == 0 && last <= self.geo.ias_mask;
        ok.then_some(last)
    }

    /// The chunk loop of [`PageTable::map`], rolled back on failure.
    #[inline]
    fn map_range<S: FrameStore + ?Sized>(
        &self,
        m: &mut S,
        iova: Iova,
        paddr: PhysAddr,
        size: u64,
        prot: Prot,
        scratch: &mut MapScratch,
    ) -> Result<(), PtError> {
        let last = iova.raw() + (size - 1);
        let mut va = iova.raw();
        let mut oa = paddr.raw();
        let res = loop {
            let Some(lg2) = best_pgsize(self.pgsize_bitmap, va, last, oa) else {
                break Err(PtError::NoPageSize {
                    iova: Iova::new(va),
                    paddr: PhysAddr::new(oa),
                });
            };
            if let Err(e) = self.map_one(m, va, oa, lg2, prot, scratch) {
                break Err(e);
            }
            let step = 1u64 << lg2;
            if last - va < step {
                break Ok(());
            }
            va += step;
            oa += step;
        };
        if res.is_err() && va > iova.raw() {
            // Roll back the chunks already mapped (iommu_map does the same).
            let mut acc = UnmapAcc {
                unmapped: 0,
                freed: Vec::new(),
                visited: 0,
                runs: true,
            };
            self.unmap_walk(m, iova.raw(), va - 1, &mut acc);
            scratch.replaced.extend(acc.freed);
        }
        res
    }

    pub(super) fn granule(&self) -> u64 {
        self.pgsize_bitmap & self.pgsize_bitmap.wrapping_neg()
    }

    #[inline]
    pub(super) fn slot(&self, table: PhysAddr, level: u32, iova: u64) -> PhysAddr {
        PhysAddr::new(table.raw() + self.index(level, iova) * 8)
    }

    #[inline]
    pub(super) fn leaf_level(&self, lg2: u32) -> u32 {
        u32::from(self.geo.leaf_of[(lg2 & 63) as usize])
    }

    /// Index of `va`'s entry in a table at `level` (spans and index widths
    /// are below 64 bits, see [`Geometry::of`]: no shift overflows).
    #[inline]
    pub(super) fn index(&self, level: u32, va: u64) -> u64 {
        (va >> self.item(level)) & ((1u64 << self.bits(level)) - 1)
    }

    /// The largest output address a leaf may hold.
    #[inline]
    pub(super) fn oas_mask(&self) -> u64 {
        self.geo.oas_mask
    }

    /// Level of the root table.
    #[inline]
    pub(super) fn top(&self) -> u32 {
        self.geo.top
    }

    /// log2 of the bytes one entry at `level` covers.
    #[inline]
    pub(super) fn item(&self, level: u32) -> u32 {
        u32::from(self.geo.item[(level as usize) & (MAX_LEVELS - 1)])
    }

    /// log2 of the entries of a table at `level`.
    #[inline]
    pub(super) fn bits(&self, level: u32) -> u32 {
        u32::from(self.geo.bits[(level as usize) & (MAX_LEVELS - 1)])
    }

    pub(super) fn check_map(
        &self,
        iova: Iova,
        paddr: PhysAddr,
        size: u64,
        prot: Prot,
    ) -> Result<(), PtError> {
        if size == 0 {
            return Err(PtError::ZeroSize { iova });
        }
        if !prot.intersects(Prot::READ | Prot::WRITE) {
            return Err(PtError::NoAccess { iova });
        }
        let g = self.granule();
        if (iova.raw() | paddr.raw() | size) & (g - 1) != 0 {
            return Err(PtError::Misaligned {
                iova,
                paddr,
                size,
                granule: g,
            });
        }
        let ias = self.geo.ias;
        if iova
            .raw()
            .checked_add(size - 1)
            .is_none_or(|l| l > self.geo.ias_mask)
        {
            return Err(PtError::IovaOutOfRange { iova, size, ias });
        }
        let oas = self.geo.oas;
        if paddr
            .raw()
            .checked_add(size - 1)
            .is_none_or(|l| l > self.geo.oas_mask)
        {
            return Err(PtError::PhysOutOfRange { paddr, size, oas });
        }
        Ok(())
    }

    fn alloc_table<S: FrameStore + ?Sized>(
        &self,
        m: &mut S,
        level: u32,
        s: &mut MapScratch,
    ) -> Result<PhysAddr, PtError> {
        let t = m.alloc_frames(self.fmt.table_bytes(level).next_power_of_two())?;
        s.new_tables += 1;
        Ok(t)
    }

    #[inline]
    fn map_one<S: FrameStore + ?Sized>(
        &self,
        m: &mut S,
        va: u64,
        oa: u64,
        lg2: u32,
        prot: Prot,
        s: &mut MapScratch,
    ) -> Result<(), PtError> {
        let level = self.leaf_level(lg2);
        let table = self.walk_alloc(m, va, level, s)?;
        self.set_leaf(m, table, level, va, oa, lg2, prot, s)
    }

    /// The table at `level` that holds `va`'s entry, creating the missing
    /// tables above it on the way; a leaf on the way is
    /// [`PtError::AddressInUse`].
    #[inline]
    pub(super) fn walk_alloc<S: FrameStore + ?Sized>(
        &self,
        m: &mut S,
        va: u64,
        level: u32,
        s: &mut MapScratch,
    ) -> Result<PhysAddr, PtError> {
        let (mut table, mut l) = self.cached_start(&s.wc, va);
        if l < level {
            (table, l) = (self.root, self.top());
        }
        while l > level {
            let slot = self.slot(table, l, va);
            table = match self.fmt.decode(l, m.read_u64(slot)) {
                Pte::Table(next) => next,
                Pte::Empty => {
                    let t = self.alloc_table(m, l - 1, s)?;
                    m.write_u64(slot, self.fmt.encode_table(l, t));
                    t
                }
                Pte::Leaf { .. } => {
                    return Err(PtError::AddressInUse {
                        iova: Iova::new(va),
                    })
                }
            };
            l -= 1;
        }
        self.remember(&mut s.wc, table, level, va);
        Ok(table)
    }

    /// Where a walk for `va` may start: the cached table if `va` lies in
    /// its span, else the root.
    #[inline]
    fn cached_start(&self, wc: &WalkCache, va: u64) -> (PhysAddr, u32) {
        if wc.covers(va) {
            (wc.table, wc.level)
        } else {
            (self.root, self.top())
        }
    }

    /// Caches `table` (at `level`, below the root) as the table for `va`,
    /// if its whole span lies inside the input address size (so that a VA
    /// the cache covers is a valid IOVA).
    #[inline]
    fn remember(&self, wc: &mut WalkCache, table: PhysAddr, level: u32, va: u64) {
        let item = self.item(level);
        let span_mask = mask(item + self.bits(level));
        let base = va & !span_mask;
        if level < self.top() && base | span_mask <= self.geo.ias_mask {
            let one = 1u64 << item;
            // Every format's entries span at least 8 bytes (`slot_bias`).
            let page = if one & self.pgsize_bitmap != 0 && item >= 3 {
                one
            } else {
                0
            };
            *wc = WalkCache {
                valid: true,
                level,
                table,
                base,
                span_mask,
                slot_shift: item.wrapping_sub(3),
                page,
                page_mask: !span_mask | one.wrapping_sub(1),
                page_base: if page != 0 { base } else { 1 },
                slot_bias: table
                    .raw()
                    .wrapping_sub(base >> (item.wrapping_sub(3) & 63)),
                leaf: self.geo.leaf[(level as usize) & (MAX_LEVELS - 1)],
            };
        }
    }

    /// Writes the leaf (or contiguous group) of `2^lg2` bytes for `va` into
    /// `table` at `level`, after checking every entry it covers: empty
    /// tables are replaced (generic_pt `clear_contig`), leaves and non-empty
    /// tables are [`PtError::AddressInUse`] and nothing is written.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(super) fn set_leaf<S: FrameStore + ?Sized>(
        &self,
        m: &mut S,
        table: PhysAddr,
        level: u32,
        va: u64,
        oa: u64,
        lg2: u32,
        prot: Prot,
        s: &mut MapScratch,
    ) -> Result<(), PtError> {
        let item = self.item(level);
        let n = 1u64 << (lg2 - item);
        let first = self.slot(table, level, va);
        let mark = s.replaced.len();
        for i in 0..n {
            match self
                .fmt
                .decode(level, m.read_u64(PhysAddr::new(first.raw() + i * 8)))
            {
                Pte::Empty => {}
                Pte::Leaf { .. } => {
                    s.replaced.truncate(mark);
                    return Err(PtError::AddressInUse {
                        iova: Iova::new(va),
                    });
                }
                Pte::Table(t) => {
                    if level == 0 || !self.collect_empty(m, t, level - 1, &mut s.replaced) {
                        s.replaced.truncate(mark);
                        return Err(PtError::AddressInUse {
                            iova: Iova::new(va),
                        });
                    }
                    s.replaced.push(t);
                    s.wc = WalkCache::default();
                }
            }
        }
        let pte = self.fmt.encode_leaf(level, PhysAddr::new(oa), lg2, prot);
        for i in 0..n {
            m.write_u64(PhysAddr::new(first.raw() + i * 8), pte);
        }
        Ok(())
    }

    /// Whether the subtree at `table` holds no leaf; collects its sub-tables.
    fn collect_empty<S: FrameStore + ?Sized>(
        &self,
        m: &S,
        table: PhysAddr,
        level: u32,
        out: &mut Vec<PhysAddr>,
    ) -> bool {
        for i in 0..(1u64 << self.bits(level)) {
            match self
                .fmt
                .decode(level, m.read_u64(PhysAddr::new(table.raw() + i * 8)))
            {
                Pte::Empty => {}
                Pte::Leaf { .. } => return false,
                Pte::Table(t) => {
                    if level == 0 || !self.collect_empty(m, t, level - 1, out) {
                        return false;
                    }
                    out.push(t);
                }
            }
        }
        true
    }

    /// Fast path: the range starts at a leaf and ends inside it (the common
    /// "unmap exactly what was mapped" case). Same result as the full walk:
    /// no table can be fully covered by a range inside one leaf.
    #[inline]
    fn unmap_one_leaf<S: FrameStore + ?Sized>(
        &self,
        m: &mut S,
        va: u64,
        last: u64,
        visited: &mut u64,
        wc: &mut WalkCache,
    ) -> Option<u64> {
        let (mut table, mut level) = self.cached_start(wc, va);
        loop {
            let slot = self.slot(table, level, va);
            *visited += 1;
            match self.fmt.decode(level, m.read_u64(slot)) {
                Pte::Table(next) if level > 0 => {
                    table = next;
                    level -= 1;
                }
                Pte::Leaf { size_lg2, .. } => {
                    if va & mask(size_lg2) != 0 || last - va > mask(size_lg2) {
                        return None;
                    }
                    let item = self.item(level);
                    let n = 1u64 << (size_lg2.max(item) - item);
                    let idx = self.index(level, va);
                    let g = idx & !(n - 1);
                    for j in 0..n {
                        m.write_u64(PhysAddr::new(table.raw() + (g + j) * 8), 0);
                    }
                    self.remember(wc, table, level, va);
                    return Some(1u64 << size_lg2);
                }
                _ => return None,
            }
        }
    }

    fn unmap_walk<S: FrameStore + ?Sized>(
        &self,
        m: &mut S,
        va: u64,
        last: u64,
        acc: &mut UnmapAcc,
    ) {
        let top = self.top();
        let _ = self.unmap_level(m, self.root, top, va, last, acc);
    }

    fn unmap_level<S: FrameStore + ?Sized>(
        &self,
        m: &mut S,
        table: PhysAddr,
        level: u32,
        va: u64,
        last: u64,
        acc: &mut UnmapAcc,
    ) -> bool {
        let item = self.item(level);
        let bits = self.bits(level);
        let span = item + bits;
        let base = va & !mask(span);
        let mut idx = shr(va, item) & mask(bits);
        let end = if shr(last, span) != shr(va, span) {
            1u64 << bits
        } else {
            (shr(last, item) & mask(bits)) + 1
        };
        let mut first = true;
        while idx < end {
            let slot = PhysAddr::new(table.raw() + idx * 8);
            let entry_va = base + (idx << item);
            acc.visited += 1;
            let raw = m.read_u64(slot);
            let leaf = self.geo.leaf[(level as usize) & (MAX_LEVELS - 1)];
            if acc.runs && leaf.matches(raw) && (!first || va & mask(item) == 0) {
                // A run of one-entry leaves (what `unmap_pages` of the
                // level's own page size meets): each is the `Leaf` arm below
                // with a group of one, cleared in one pass over the table.
                // The entry that ends the run is read again by the loop.
                let k = m.clear_run(slot, end - idx, |e| leaf.matches(e));
                acc.unmapped += k << item;
                acc.visited += k - 1;
                idx += k;
                first = false;
                continue;
            }
            match self.fmt.decode(level, raw) {
                Pte::Empty => return false,
                Pte::Table(_) if level == 0 => return false,
                Pte::Table(next) => {
                    let entry_last = entry_va + mask(item);
                    let fully = va <= entry_va && last >= entry_last;
                    if !self.unmap_level(
                        m,
                        next,
                        level - 1,
                        va.max(entry_va),
                        last.min(entry_last),
                        acc,
                    ) {
                        return false;
                    }
                    if fully {
                        acc.freed.push(next);
                        m.write_u64(slot, 0);
                    }
                    idx += 1;
                }
                Pte::Leaf { size_lg2, .. } => {
                    if first && va & mask(size_lg2) != 0 {
                        return false;
                    }
                    let n = 1u64 << (size_lg2.max(item) - item);
                    let g = idx & !(n - 1);
                    for j in 0..n {
                        m.write_u64(PhysAddr::new(table.raw() + (g + j) * 8), 0);
                    }
                    acc.unmapped += 1u64 << size_lg2;
                    idx = g + n;
                }
            }
            first = false;
        }
        true
    }

    /// The entries of `table` (at `level`) that `[va, last]` spans:
    /// (first index, end index, VA of index 0).
    #[inline]
    fn span_of(&self, level: u32, va: u64, last: u64) -> (u64, u64, u64) {
        let item = self.item(level);
        let bits = self.bits(level);
        let span = item + bits;
        let base = va & !mask(span);
        let idx = shr(va, item) & mask(bits);
        let end = if shr(last, span) != shr(va, span) {
            1u64 << bits
        } else {
            (shr(last, item) & mask(bits)) + 1
        };
        (idx, end, base)
    }

    /// [`PageTable::unmap_sparse`] below `table`: like `unmap_level`, but an
    /// empty entry skips its span instead of ending the walk, and a leaf that
    /// starts before `va` is stepped over.
    fn unmap_sparse_level<S: FrameStore + ?Sized>(
        &self,
        m: &mut S,
        table: PhysAddr,
        level: u32,
        va: u64,
        last: u64,
        acc: &mut SparseAcc,
    ) {
        let item = self.item(level);
        let (mut idx, end, base) = self.span_of(level, va, last);
        while idx < end {
            let slot = PhysAddr::new(table.raw() + idx * 8);
            let entry_va = base + (idx << item);
            acc.visited += 1;
            match self.fmt.decode(level, m.read_u64(slot)) {
                Pte::Empty => idx += 1,
                // Malformed (a table below level 0): nothing to unmap.
                Pte::Table(_) if level == 0 => idx += 1,
                Pte::Table(next) => {
                    let entry_last = entry_va + mask(item);
                    let lo = va.max(entry_va);
                    let hi = last.min(entry_last);
                    self.unmap_sparse_level(m, next, level - 1, lo, hi, acc);
                    if va <= entry_va && last >= entry_last {
                        // Entirely covered: nothing in it can have started
                        // before `va`, so it is empty now.
                        acc.freed.push(next);
                        m.write_u64(slot, 0);
                        acc.touch(entry_va, entry_last);
                    }
                    idx += 1;
                }
                Pte::Leaf { size_lg2, .. } => {
                    let n = 1u64 << (size_lg2.max(item) - item);
                    let g = idx & !(n - 1);
                    let leaf_va = base + (g << item);
                    if leaf_va >= va {
                        for j in 0..n {
                            m.write_u64(PhysAddr::new(table.raw() + (g + j) * 8), 0);
                        }
                        acc.unmapped += 1u64 << size_lg2;
                        acc.touch(leaf_va, leaf_va + mask(size_lg2));
                    }
                    idx = g + n;
                }
            }
        }
    }

    /// [`PageTable::for_each_leaf`] below `table`.
    #[allow(clippy::too_many_arguments)]
    fn leaves_level<S: FrameStore + ?Sized>(
        &self,
        m: &S,
        table: PhysAddr,
        level: u32,
        va: u64,
        last: u64,
        visited: &mut u64,
        f: &mut impl FnMut(Iova, PhysAddr, u32),
    ) {
        let item = self.item(level);
        let (mut idx, end, base) = self.span_of(level, va, last);
        while idx < end {
            let entry_va = base + (idx << item);
            *visited += 1;
            match self
                .fmt
                .decode(level, m.read_u64(PhysAddr::new(table.raw() + idx * 8)))
            {
                Pte::Empty => idx += 1,
                Pte::Table(_) if level == 0 => idx += 1,
                Pte::Table(next) => {
                    let lo = va.max(entry_va);
                    let hi = last.min(entry_va + mask(item));
                    self.leaves_level(m, next, level - 1, lo, hi, visited, f);
                    idx += 1;
                }
                Pte::Leaf { oa, size_lg2, .. } => {
                    let n = 1u64 << (size_lg2.max(item) - item);
                    let g = idx & !(n - 1);
                    f(Iova::new(base + (g << item)), oa, size_lg2);
                    idx = g + n;
                }
            }
        }
    }

    fn count_level<S: FrameStore + ?Sized>(&self, m: &S, table: PhysAddr, level: u32) -> usize {
        let mut out = BTreeMap::new();
        self.sizes_level(m, table, level, &mut out);
        out.values().sum()
    }

    fn sizes_level<S: FrameStore + ?Sized>(
        &self,
        m: &S,
        table: PhysAddr,
        level: u32,
        out: &mut BTreeMap<u32, usize>,
    ) {
        let item = self.item(level);
        let n = 1u64 << self.bits(level);
        let mut i = 0;
        while i < n {
            match self
                .fmt
                .decode(level, m.read_u64(PhysAddr::new(table.raw() + i * 8)))
            {
                Pte::Empty => i += 1,
                Pte::Table(t) => {
                    if level > 0 {
                        self.sizes_level(m, t, level - 1, out);
                    }
                    i += 1;
                }
                Pte::Leaf { size_lg2, .. } => {
                    *out.entry(size_lg2).or_insert(0) += 1;
                    i = (i & !((1u64 << (size_lg2.max(item) - item)) - 1))
                        + (1u64 << (size_lg2.max(item) - item));
                }
            }
        }
    }

    fn iova_to_phys<S: FrameStore + ?Sized>(&self, m: &S, iova: Iova) -> Option<PhysAddr> {
        if iova.raw() > self.geo.ias_mask {
            return None;
        }
        let mut table = self.root;
        let mut level = self.top();
        loop {
            match self
                .fmt
                .decode(level, m.read_u64(self.slot(table, level, iova.raw())))
            {
                Pte::Empty => return None,
                Pte::Leaf { oa, size_lg2, .. } => {
                    return Some(PhysAddr::new(oa.raw() | (iova.raw() & mask(size_lg2))))
                }
                Pte::Table(next) => {
                    if level == 0 {
                        return None;
                    }
                    table = next;
                    level -= 1;
                }
            }
        }
    }

    fn leaf_entry<S: FrameStore + ?Sized>(&self, m: &S, iova: Iova) -> Option<(u32, u64, Pte)> {
        let mut table = self.root;
        let mut level = self.top();
        loop {
            let raw = m.read_u64(self.slot(table, level, iova.raw()));
            match self.fmt.decode(level, raw) {
                Pte::Empty => return None,
                p @ Pte::Leaf { .. } => return Some((level, raw, p)),
                Pte::Table(next) if level > 0 => {
                    table = next;
                    level -= 1;
                }
                Pte::Table(_) => return None,
            }
        }
    }

    fn leaf_sizes<S: FrameStore + ?Sized>(&self, m: &S) -> BTreeMap<u32, usize> {
        let mut out = BTreeMap::new();
        self.sizes_level(m, self.root, self.top(), &mut out);
        out
    }
}

impl<F: PtFormat, M: TableMem> Drop for PageTable<F, M> {
    fn drop(&mut self) {
        // Free every frame still reachable, plus the deferred ones (the owner
        // of the table guarantees the hardware no longer uses it). The scan
        // for linked tables stops once it has found all `linked_tables` of
        // them, so a table that never linked one (a domain that mapped
        // nothing, or only leaves in its root) reads no entry.
        let deferred = core::mem::take(&mut self.deferred);
        let linked = self.linked_tables;
        let c = &self.core;
        self.mem.with_store_mut(|m| {
            let found = if linked == 0 {
                Vec::new()
            } else {
                c.linked_below_root(m, linked)
            };
            for t in [c.root].into_iter().chain(deferred).chain(found) {
                let _ = m.free_frames(t);
            }
        });
    }
}

impl<F: PtFormat> Core<F> {
    /// The tables linked below the root, found depth first (a table's
    /// subtree before its next entry); stops reading as soon as `linked`
    /// were found (none is left to find below the rest).
    fn linked_below_root<S: FrameStore + ?Sized>(&self, m: &S, linked: usize) -> Vec<PhysAddr> {
        let mut found = Vec::with_capacity(linked);
        // (table, level, next index to read)
        let mut stack = vec![(self.root, self.top(), 0u64)];
        while let Some((t, level, next)) = stack.last_mut() {
            if *level == 0 || *next >> self.bits(*level) != 0 {
                stack.pop();
                continue;
            }
            let (t, level, i) = (*t, *level, *next);
            *next += 1;
            if let Pte::Table(n) = self
                .fmt
                .decode(level, m.read_u64(PhysAddr::new(t.raw() + i * 8)))
            {
                found.push(n);
                if found.len() == linked {
                    break;
                }
                stack.push((n, level - 1, 0));
            }
        }
        found
    }
}
