//! The IOVA range cache (rcache): per-CPU magazines in front of the tree.
//!
//! Semantics of drivers/iommu/iova.c `alloc_iova_fast` / `free_iova_fast`:
//! six size classes (1, 2, 4, 8, 16, 32 granules), each with a `loaded` and a
//! `prev` magazine of [`IOVA_MAG_SIZE`] frames per CPU and a shared depot of
//! full magazines. Cached ranges stay allocated in the tree; the cache only
//! remembers them so that the next allocation of that class skips the tree
//! lock. A failed allocation may flush every cache back to the tree and retry
//! once.
//!
//! Here a "CPU" is a slot: with `std`, each thread picks a fixed slot from a
//! counter the first time it uses any cache ([`CachedIovaDomain::alloc_fast`]);
//! without it, the caller passes its CPU index (`*_on` methods). Each slot has
//! its own lock, so threads on different slots never contend.
//!
//! Depot trimming: the depot of each class holds at most `max_depot` full
//! magazines (default [`DEFAULT_MAX_DEPOT`], Linux's former `MAX_GLOBAL_MAGS`);
//! a magazine pushed beyond that goes straight back to the tree. Current Linux
//! instead trims one magazine every `IOVA_DEPOT_DELAY` (100 ms) while the
//! depot holds more magazines than there are CPUs; [`CachedIovaDomain::trim_depots`]
//! is that step, for the owner's timer to call.
//!
//! Reservations after the cache is in use: Linux reserves (`reserve_iova`,
//! from `iova_reserve_iommu_regions`) before the first allocation, so its
//! caches never hold a reserved IOVA. Here a reservation may come later, made
//! through [`CachedIovaDomain::with_domain`], which holds every CPU's cache
//! and the depots while it runs: cached ranges the reservation covers are
//! taken out of the magazines and freed (only their unreserved part goes back
//! to the free space), and ranges still held by their users at that moment
//! are checked against the reservations when they are freed, so they are
//! never cached either.

use super::alloc::boxed::Box;
use super::alloc::vec::Vec;
use super::domain::IovaDomain;
use super::lock::{Guard, Lock};
use super::magazine::{Magazine, IOVA_MAG_SIZE};
use super::range::{limit_pfn, order_base_2, IovaRange};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use dma_api::{DmaError, Iova};

/// Number of cached size classes (`IOVA_RANGE_CACHE_MAX_SIZE`): sizes
/// `2^0 ..= 2^5` granules.
pub const IOVA_RANGE_CACHE_MAX_SIZE: usize = 6;

/// Default bound on full magazines per class in the depot.
pub const DEFAULT_MAX_DEPOT: usize = 32;

/// A class's depot: full magazines. Boxed on purpose: a magazine (1 KiB)
/// moves between a CPU's `loaded` slot and the depot by pointer, never by copy.
#[allow(clippy::vec_box)]
type Depot = Vec<Box<Magazine>>;

/// Sizes below this are rounded up to a power of two by the fast path.
const ROUND_BELOW: u64 = 1 << (IOVA_RANGE_CACHE_MAX_SIZE - 1);

#[derive(Debug)]
struct ClassCache {
    loaded: Box<Magazine>,
    prev: Box<Magazine>,
}

#[derive(Debug)]
struct CpuCache {
    classes: [ClassCache; IOVA_RANGE_CACHE_MAX_SIZE],
    hits: u64,
    misses: u64,
}

/// One CPU's caches on their own cache lines.
#[derive(Debug)]
#[repr(align(128))]
struct Slot(Lock<CpuCache>);

/// Counters of a [`CachedIovaDomain`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct RcacheStats {
    /// Fast allocations served from a magazine.
    pub hits: u64,
    /// Fast allocations that went to the tree.
    pub misses: u64,
    /// IOVAs currently cached (magazines and depots).
    pub cached: u64,
    /// Cached IOVAs the tree refused when flushed back (caller passed a range
    /// to `free_fast` that was not allocated); should stay 0.
    pub flush_errors: u64,
}

/// An [`IovaDomain`] behind a lock, with the per-CPU magazine cache in front
/// (the kernel's `struct iova_domain` with its `rcaches`). `Send + Sync`.
#[derive(Debug)]
pub struct CachedIovaDomain {
    domain: Lock<IovaDomain>,
    shift: u32,
    slots: Box<[Slot]>,
    depots: [Lock<Depot>; IOVA_RANGE_CACHE_MAX_SIZE],
    max_depot: usize,
    flush_errors: AtomicU64,
    /// Set (under every slot lock) when a reservation covers part of a range
    /// that is allocated but not cached: `free_fast` must then check ranges
    /// against the reservations before caching them. Read under a slot lock.
    check_reserved: AtomicBool,
}

impl CachedIovaDomain {
    /// Wraps `domain` with caches for `cpus` CPUs (at least 1) and the default
    /// depot bound.
    pub fn new(domain: IovaDomain, cpus: usize) -> Self {
        Self::with_depot_limit(domain, cpus, DEFAULT_MAX_DEPOT)
    }

    /// Like [`new`](Self::new) with an explicit bound on full magazines per
    /// class in the depot.
    pub fn with_depot_limit(domain: IovaDomain, cpus: usize, max_depot: usize) -> Self {
        let slots = (0..cpus.max(1))
            .map(|_| {
                Slot(Lock::new(CpuCache {
                    classes: core::array::from_fn(|_| ClassCache {
                        loaded: Box::new(Magazine::new()),
                        prev: Box::new(Magazine::new()),
                    }),
                    hits: 0,
                    misses: 0,
                }))
            })
            .collect();
        Self {
            shift: domain.granule_shift(),
            domain: Lock::new(domain),
            slots,
            depots: core::array::from_fn(|_| Lock::new(Vec::new())),
            max_depot,
            flush_errors: AtomicU64::new(0),
            check_reserved: AtomicBool::new(false),
        }
    }

    /// Caches for as many CPUs as `std::thread::available_parallelism` reports.
    #[cfg(feature = "std")]
    pub fn for_this_machine(domain: IovaDomain) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(domain, cpus)
    }

    /// Number of CPU slots.
    pub fn cpus(&self) -> usize {
        self.slots.len()
    }

    /// Runs `f` on the underlying domain under its lock (reservations,
    /// inspection). Cached IOVAs appear allocated there.
    ///
    /// Every CPU's cache and the depots are held while `f` runs (the fast
    /// paths of other threads wait). If `f` reserves anything, the cached
    /// ranges it covers leave the cache before the call returns (their
    /// unreserved part goes back to the free space), and ranges allocated at
    /// that moment that it covers are never cached when freed: no later
    /// allocation returns a reserved IOVA.
    pub fn with_domain<R>(&self, f: impl FnOnce(&mut IovaDomain) -> R) -> R {
        // Lock order everywhere: slot, then depot, then the domain.
        let mut slots: Vec<Guard<'_, CpuCache>> = self.slots.iter().map(|s| s.0.lock()).collect();
        let mut depots: Vec<Guard<'_, Depot>> = self.depots.iter().map(|d| d.lock()).collect();
        let mut domain = self.domain.lock();
        let gen = domain.reservation_generation();
        let r = f(&mut domain);
        if domain.reservation_generation() != gen {
            self.drop_reserved(&mut domain, &mut slots, &mut depots);
        }
        r
    }

    /// Takes the cached ranges that overlap a reservation out of every
    /// magazine and frees them in `domain`; notes whether allocated ranges
    /// outside the cache overlap one. Called with every lock held.
    fn drop_reserved(
        &self,
        domain: &mut IovaDomain,
        slots: &mut [Guard<'_, CpuCache>],
        depots: &mut [Guard<'_, Depot>],
    ) {
        let mut out = Vec::new();
        for cpu in slots.iter_mut() {
            for (class, cc) in cpu.classes.iter_mut().enumerate() {
                let last = (1u64 << class) - 1;
                let keep = |pfn: u64| !domain.overlaps_reserved(pfn, pfn + last);
                cc.loaded.retain(keep, &mut out);
                cc.prev.retain(keep, &mut out);
            }
        }
        for (class, depot) in depots.iter_mut().enumerate() {
            let last = (1u64 << class) - 1;
            let before = out.len();
            for mag in depot.iter_mut() {
                mag.retain(|pfn| !domain.overlaps_reserved(pfn, pfn + last), &mut out);
            }
            if out.len() != before {
                // The depot holds full magazines only: repack the survivors,
                // the remainder goes back to the tree.
                let mut kept = Vec::new();
                for mut mag in core::mem::take(&mut **depot) {
                    kept.extend(mag.drain());
                }
                let mut chunks = kept.chunks_exact(IOVA_MAG_SIZE);
                for chunk in chunks.by_ref() {
                    let mut mag = Box::new(Magazine::new());
                    for &pfn in chunk {
                        mag.push(pfn);
                    }
                    depot.push(mag);
                }
                out.extend_from_slice(chunks.remainder());
            }
        }
        for pfn in out {
            if domain.free_pfn(pfn).is_err() {
                self.flush_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.check_reserved
            .store(domain.reservations_overlap_allocations(), Ordering::Relaxed);
    }

    fn slot(&self, cpu: usize) -> &Lock<CpuCache> {
        &self.slots[cpu % self.slots.len()].0
    }

    /// `alloc_iova_fast` on CPU `cpu`: sizes below 32 granules are rounded up
    /// to a power of two; a cached range of that class ending at or below
    /// `limit` is returned if there is one (the most recently cached first),
    /// else a size-aligned range from the tree. If the tree is exhausted and
    /// `flush_rcache` is set, every CPU's cache and the depots are returned to
    /// the tree and the tree is tried once more.
    pub fn alloc_fast_on(
        &self,
        cpu: usize,
        pages: u64,
        limit: Iova,
        flush_rcache: bool,
    ) -> Result<IovaRange, DmaError> {
        if pages == 0 {
            return Err(DmaError::IovaBadSize {
                pages,
                max_pages: u64::MAX >> self.shift,
            });
        }
        let pages = if pages < ROUND_BELOW {
            pages.next_power_of_two()
        } else {
            pages
        };
        if let Some(pfn) = limit_pfn(limit, self.shift).and_then(|l| self.rcache_get(cpu, pages, l))
        {
            return Ok(IovaRange::from_pfn(pfn, pages, self.shift));
        }
        let mut flush = flush_rcache;
        loop {
            let res = self.domain.lock().alloc(pages, limit, true);
            match res {
                Err(DmaError::IovaExhausted { .. }) if flush => {
                    flush = false;
                    self.flush_all();
                }
                other => return other,
            }
        }
    }

    /// `free_iova_fast` on CPU `cpu`: caches `range` in its class, or frees
    /// it in the tree if it is too large for the cache.
    ///
    /// Like Linux, the cache trusts that `range` is allocated and not yet
    /// freed (a double free is caught only when the cache is flushed, and
    /// counted in [`RcacheStats::flush_errors`]). Unlike Linux, a range that
    /// is not a naturally aligned power of two (one from
    /// [`IovaDomain::alloc`] without `size_aligned`) is never cached, so the
    /// cache cannot hand out a range that is too small or misaligned.
    pub fn free_fast_on(&self, cpu: usize, range: IovaRange) -> Result<(), DmaError> {
        if self.rcache_insert(cpu, range.pfn_lo(), range.pages()) {
            return Ok(());
        }
        self.domain.lock().free(range.start()).map(|_| ())
    }

    /// [`alloc_fast_on`](Self::alloc_fast_on) on the calling thread's slot.
    #[cfg(feature = "std")]
    pub fn alloc_fast(
        &self,
        pages: u64,
        limit: Iova,
        flush_rcache: bool,
    ) -> Result<IovaRange, DmaError> {
        self.alloc_fast_on(thread_slot(), pages, limit, flush_rcache)
    }

    /// [`free_fast_on`](Self::free_fast_on) on the calling thread's slot.
    #[cfg(feature = "std")]
    pub fn free_fast(&self, range: IovaRange) -> Result<(), DmaError> {
        self.free_fast_on(thread_slot(), range)
    }

    fn rcache_get(&self, cpu: usize, pages: u64, limit_pfn: u64) -> Option<u64> {
        let class = order_base_2(pages) as usize;
        if class >= IOVA_RANGE_CACHE_MAX_SIZE {
            return None;
        }
        // Highest first frame whose range still ends at or below the limit.
        let max_pfn = (limit_pfn + 1).checked_sub(pages)?;
        let mut cpu_cache = self.slot(cpu).lock();
        let cpu_cache = &mut *cpu_cache;
        let cc = &mut cpu_cache.classes[class];
        if cc.loaded.is_empty() {
            if !cc.prev.is_empty() {
                core::mem::swap(&mut cc.loaded, &mut cc.prev);
            } else {
                match self.depots[class].lock().pop() {
                    Some(full) => cc.loaded = full,
                    None => {
                        cpu_cache.misses += 1;
                        return None;
                    }
                }
            }
        }
        let got = cc.loaded.pop(max_pfn);
        if got.is_some() {
            cpu_cache.hits += 1;
        } else {
            cpu_cache.misses += 1;
        }
        got
    }

    fn rcache_insert(&self, cpu: usize, pfn: u64, pages: u64) -> bool {
        let class = order_base_2(pages) as usize;
        if class >= IOVA_RANGE_CACHE_MAX_SIZE || !pages.is_power_of_two() || pfn & (pages - 1) != 0
        {
            return false;
        }
        let mut overflow = None;
        {
            let mut cpu_cache = self.slot(cpu).lock();
            // A range a reservation covered after it was allocated is never
            // cached (the flag is written under every slot lock).
            if self.check_reserved.load(Ordering::Relaxed)
                && self.domain.lock().overlaps_reserved(pfn, pfn + (pages - 1))
            {
                return false;
            }
            let cc = &mut cpu_cache.classes[class];
            if cc.loaded.is_full() {
                if !cc.prev.is_full() {
                    core::mem::swap(&mut cc.loaded, &mut cc.prev);
                } else {
                    let full = core::mem::replace(&mut cc.loaded, Box::new(Magazine::new()));
                    let mut depot = self.depots[class].lock();
                    if depot.len() < self.max_depot {
                        depot.push(full);
                    } else {
                        overflow = Some(full);
                    }
                }
            }
            // `loaded` has room now.
            cc.loaded.push(pfn);
        }
        if let Some(mut mag) = overflow {
            self.free_to_tree(mag.drain());
        }
        true
    }

    fn free_to_tree(&self, pfns: impl Iterator<Item = u64>) {
        let mut domain = self.domain.lock();
        for pfn in pfns {
            if domain.free_pfn(pfn).is_err() {
                self.flush_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// `free_cpu_cached_iovas`: returns CPU `cpu`'s cached IOVAs to the tree
    /// (what Linux does when a CPU goes offline).
    pub fn flush_cpu(&self, cpu: usize) {
        let mut pfns = Vec::new();
        {
            let mut cpu_cache = self.slot(cpu).lock();
            for cc in cpu_cache.classes.iter_mut() {
                pfns.extend(cc.loaded.drain());
                pfns.extend(cc.prev.drain());
            }
        }
        self.free_to_tree(pfns.into_iter());
    }

    /// Returns every cached IOVA (all CPUs and the depots) to the tree.
    pub fn flush_all(&self) {
        for cpu in 0..self.slots.len() {
            self.flush_cpu(cpu);
        }
        let mut pfns = Vec::new();
        for depot in &self.depots {
            let mags = core::mem::take(&mut *depot.lock());
            for mut m in mags {
                pfns.extend(m.drain());
            }
        }
        self.free_to_tree(pfns.into_iter());
    }

    /// One run of Linux's depot-trimming work: for each class whose depot
    /// holds more full magazines than there are CPUs, returns one magazine to
    /// the tree. Returns how many magazines were released; call it
    /// periodically (Linux: every 100 ms while anything is left to trim).
    pub fn trim_depots(&self) -> usize {
        let mut released = 0;
        for depot in &self.depots {
            let mag = {
                let mut d = depot.lock();
                if d.len() > self.slots.len() {
                    d.pop()
                } else {
                    None
                }
            };
            if let Some(mut m) = mag {
                self.free_to_tree(m.drain());
                released += 1;
            }
        }
        released
    }

    /// Full magazines in the depot of each class.
    pub fn depot_sizes(&self) -> [usize; IOVA_RANGE_CACHE_MAX_SIZE] {
        core::array::from_fn(|c| self.depots[c].lock().len())
    }

    /// Current counters.
    pub fn stats(&self) -> RcacheStats {
        let mut s = RcacheStats {
            flush_errors: self.flush_errors.load(Ordering::Relaxed),
            ..RcacheStats::default()
        };
        for slot in self.slots.iter() {
            let c = slot.0.lock();
            s.hits += c.hits;
            s.misses += c.misses;
            for cc in &c.classes {
                s.cached += (cc.loaded.len() + cc.prev.len()) as u64;
            }
        }
        for depot in &self.depots {
            s.cached += (depot.lock().len() * IOVA_MAG_SIZE) as u64;
        }
        s
    }
}

/// The calling thread's slot number: assigned once per thread from a global
/// counter, so the first N threads get distinct slots.
#[cfg(feature = "std")]
pub(crate) fn thread_slot() -> usize {
    use core::sync::atomic::AtomicUsize;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    std::thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    SLOT.with(|s| *s)
}
