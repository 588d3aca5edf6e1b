//! One IOVA space: top-down allocation, reservation, free and find.
//!
//! Semantics of drivers/iommu/iova.c (`init_iova_domain`, `alloc_iova`,
//! `reserve_iova`, `find_iova`, `free_iova`): granule frames, a first usable
//! frame `start_pfn >= 1` so IOVA 0 is never handed out, allocation of the
//! *highest* free range at or below an inclusive limit, optionally aligned to
//! `roundup_pow_of_two(size)`, and the `max32_alloc_size` memo that makes
//! repeated failing requests below 4 GiB fail fast until something below 4 GiB
//! is freed. The search structure differs (see [`super::tree`]), and the memo
//! is kept per alignment class so that it never refuses a request the search
//! would satisfy (see [`IovaDomain::alloc`]).

use super::alloc;
use super::range::{limit_pfn, order_base_2, IovaRange};
use super::tree::FreeTree;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use dma_api::{DmaError, Iova};

/// Free IOVA space below a limit, in granules ([`IovaDomain::free_space`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FreeSpace {
    /// Free granules.
    pub total: u64,
    /// Granules in the largest free extent (the largest allocation that
    /// could succeed, before alignment).
    pub largest: u64,
    /// Number of free extents.
    pub extents: usize,
}

impl FreeSpace {
    /// `largest / total` in per mille (1000 = one free extent; lower means
    /// more fragmented), 1000 when nothing is free.
    pub fn largest_permille(&self) -> u64 {
        if self.total == 0 {
            1000
        } else {
            // `largest <= total`, so this neither overflows for sane spaces
            // nor exceeds 1000.
            u64::try_from(u128::from(self.largest) * 1000 / u128::from(self.total)).unwrap_or(1000)
        }
    }
}

/// The smallest granule accepted (4 KiB).
pub const MIN_GRANULE: u64 = 4096;

/// An IOVA space (the kernel's `struct iova_domain` without the rcache; see
/// [`super::CachedIovaDomain`] for that).
#[derive(Clone, Debug)]
pub struct IovaDomain {
    shift: u32,
    start_pfn: u64,
    max_pfn: u64,
    dma_32bit_pfn: u64,
    /// Memo for size-aligned requests (Linux's `max32_alloc_size`).
    max32_alloc_size: u64,
    /// Memo for unaligned requests: only unaligned failures prove anything
    /// about them.
    max32_unaligned_alloc_size: u64,
    free: FreeTree,
    allocated: BTreeMap<u64, u64>,
    reserved: BTreeMap<u64, u64>,
    /// Bumped by every reservation, so that the magazine cache in front can
    /// tell that its cached ranges must be checked again.
    reserve_gen: u64,
}

impl IovaDomain {
    /// A new space with granule `granule` (a power of two of at least 4 KiB)
    /// whose lowest usable IOVA is `base` rounded down to the granule, but
    /// never frame 0 (dma-iommu's `start_pfn = max(1, aperture_start >> order)`).
    ///
    /// Unlike Linux (`BUG_ON(granule > PAGE_SIZE)`), granules above 4 KiB are
    /// accepted, for IOMMUs whose smallest page is 16 or 64 KiB.
    pub fn new(granule: u64, base: Iova) -> Result<Self, DmaError> {
        if granule < MIN_GRANULE || !granule.is_power_of_two() {
            return Err(DmaError::InvalidIovaGranule { granule });
        }
        let shift = granule.trailing_zeros();
        let start_pfn = (base.raw() >> shift).max(1);
        let max_pfn = u64::MAX >> shift;
        let dma_32bit_pfn = 1u64 << (32u32.saturating_sub(shift));
        Ok(Self {
            shift,
            start_pfn,
            max_pfn,
            dma_32bit_pfn,
            max32_alloc_size: dma_32bit_pfn,
            max32_unaligned_alloc_size: dma_32bit_pfn,
            free: FreeTree::new(start_pfn, max_pfn),
            allocated: BTreeMap::new(),
            reserved: BTreeMap::new(),
            reserve_gen: 0,
        })
    }

    /// The granule in bytes.
    pub const fn granule(&self) -> u64 {
        1 << self.shift
    }

    /// log2 of the granule.
    pub const fn granule_shift(&self) -> u32 {
        self.shift
    }

    /// The lowest IOVA the allocator may return.
    pub const fn start(&self) -> Iova {
        Iova::new(self.start_pfn << self.shift)
    }

    /// Granules needed to cover `len` bytes starting `offset` bytes into a
    /// granule (dma-iommu's `iova_align(size + iova_offset(phys))`), or `None`
    /// if that overflows.
    pub fn pages_for(&self, offset: u64, len: u64) -> Option<u64> {
        let mask = self.granule() - 1;
        let total = (offset & mask).checked_add(len)?;
        Some((total >> self.shift) + u64::from(total & mask != 0))
    }

    /// The failing-size memo for size-aligned requests (`max32_alloc_size`),
    /// in granules: size-aligned requests with a limit at or below 4 GiB of at
    /// least this many granules fail at once.
    pub const fn max32_alloc_size(&self) -> u64 {
        self.max32_alloc_size
    }

    /// The failing-size memo for unaligned requests, in granules: unaligned
    /// requests with a limit at or below 4 GiB of at least this many granules
    /// fail at once. Only unaligned failures lower it.
    pub const fn max32_unaligned_alloc_size(&self) -> u64 {
        self.max32_unaligned_alloc_size
    }

    /// Number of allocated ranges (reserved ranges excluded).
    pub fn allocated_count(&self) -> usize {
        self.allocated.len()
    }

    /// Allocates `pages` granules ending at or below `limit` (an inclusive
    /// last address, like a DMA mask), at the highest address that fits; with
    /// `size_aligned`, the start is aligned to `roundup_pow_of_two(pages)`
    /// granules (drivers/iommu/iova.c `alloc_iova`).
    ///
    /// Failure is [`DmaError::IovaExhausted`]. A failure whose search covered
    /// everything below 4 GiB (a limit at or above 4 GiB) records `pages` in
    /// the memo of its alignment class; later requests of that class with a
    /// limit at or below 4 GiB and at least that many pages then fail without
    /// searching until a range below 4 GiB is freed.
    ///
    /// drivers/iommu/iova.c `__alloc_and_insert_iova_range` keeps one memo
    /// (`max32_alloc_size = size` on every failure, reset by
    /// `__cached_rbnode_delete_update` when a range starting below 4 GiB is
    /// freed) and consults it for aligned and unaligned requests alike. That
    /// is sound only for size-aligned requests, which is all dma-iommu makes
    /// (`alloc_iova_fast` always aligns): a failed aligned search says nothing
    /// about an unaligned one of the same size. Here the size-aligned memo is
    /// lowered by any failure (an unaligned failure implies the aligned one),
    /// the unaligned memo only by unaligned failures, so the memo never
    /// refuses a request that the full search would satisfy: within a class a
    /// larger request needs everything a smaller one does, and the space
    /// below a 32-bit limit is part of the space a failed search covered.
    pub fn alloc(
        &mut self,
        pages: u64,
        limit: Iova,
        size_aligned: bool,
    ) -> Result<IovaRange, DmaError> {
        if pages == 0 || pages > self.max_pfn {
            return Err(DmaError::IovaBadSize {
                pages,
                max_pages: self.max_pfn,
            });
        }
        let Some(limit_pfn) = limit_pfn(limit, self.shift) else {
            return Err(DmaError::IovaExhausted { pages, limit });
        };
        // Exclusive end of the search, as the kernel's `limit_pfn + 1`.
        let limit_end = limit_pfn + 1;
        let memo = if size_aligned {
            self.max32_alloc_size
        } else {
            self.max32_unaligned_alloc_size
        };
        if limit_end <= self.dma_32bit_pfn && pages >= memo {
            return Err(DmaError::IovaExhausted { pages, limit });
        }
        let order = if size_aligned { order_base_2(pages) } else { 0 };
        match self.free.alloc(pages, order, limit_pfn) {
            Some(pfn) => {
                self.allocated.insert(pfn, pfn + pages - 1);
                Ok(IovaRange::from_pfn(pfn, pages, self.shift))
            }
            None => {
                if limit_end >= self.dma_32bit_pfn {
                    self.max32_alloc_size = self.max32_alloc_size.min(pages);
                    if !size_aligned {
                        self.max32_unaligned_alloc_size =
                            self.max32_unaligned_alloc_size.min(pages);
                    }
                }
                Err(DmaError::IovaExhausted { pages, limit })
            }
        }
    }

    /// The allocated range containing `iova` (`find_iova`), if any.
    pub fn find(&self, iova: Iova) -> Option<IovaRange> {
        let pfn = iova.raw() >> self.shift;
        let (&lo, &hi) = self.allocated.range(..=pfn).next_back()?;
        (hi >= pfn).then(|| IovaRange::from_pfn(lo, hi - lo + 1, self.shift))
    }

    /// True if `iova` lies in a reserved range.
    pub fn is_reserved(&self, iova: Iova) -> bool {
        let pfn = iova.raw() >> self.shift;
        self.reserved
            .range(..=pfn)
            .next_back()
            .is_some_and(|(_, &hi)| hi >= pfn)
    }

    /// True if any frame of `[lo, hi]` is reserved.
    pub(crate) fn overlaps_reserved(&self, lo: u64, hi: u64) -> bool {
        self.reserved
            .range(..=hi)
            .next_back()
            .is_some_and(|(_, &h)| h >= lo)
    }

    /// True if some allocated range overlaps a reservation (one made after
    /// the allocation).
    pub(crate) fn reservations_overlap_allocations(&self) -> bool {
        self.reserved.iter().any(|(&lo, &hi)| {
            self.allocated
                .range(..=hi)
                .next_back()
                .is_some_and(|(_, &h)| h >= lo)
        })
    }

    /// Changes whenever a reservation is made.
    pub(crate) const fn reservation_generation(&self) -> u64 {
        self.reserve_gen
    }

    /// True if the granule containing `iova` is free (neither allocated nor
    /// reserved, and not below the start).
    pub fn is_free(&self, iova: Iova) -> bool {
        self.free.is_free(iova.raw() >> self.shift)
    }

    /// Frees the allocated range containing `iova` (`free_iova`: any address
    /// inside the range identifies it) and returns it. Reserved ranges cannot
    /// be freed.
    pub fn free(&mut self, iova: Iova) -> Result<IovaRange, DmaError> {
        let pfn = iova.raw() >> self.shift;
        // Common case first: `iova` is the range's start (one tree walk).
        let range = match self.allocated.remove(&pfn) {
            Some(hi) => IovaRange::from_pfn(pfn, hi - pfn + 1, self.shift),
            None => {
                let r = self.find(iova).ok_or(DmaError::IovaNotAllocated { iova })?;
                self.allocated.remove(&r.pfn_lo());
                r
            }
        };
        self.release_unreserved(range.pfn_lo(), range.pfn_hi());
        // `__cached_rbnode_delete_update`: space below 4 GiB came back.
        if range.pfn_lo() < self.dma_32bit_pfn {
            self.max32_alloc_size = self.dma_32bit_pfn;
            self.max32_unaligned_alloc_size = self.dma_32bit_pfn;
        }
        Ok(range)
    }

    /// Returns `[lo, hi]` to the free space except the parts a later
    /// reservation covered.
    fn release_unreserved(&mut self, lo: u64, hi: u64) {
        let mut cursor = lo;
        // Reservations overlapping [lo, hi], in address order.
        let first = self
            .reserved
            .range(..=lo)
            .next_back()
            .map_or(lo, |(&l, _)| l);
        let overlapping: Vec<(u64, u64)> = self
            .reserved
            .range(first..=hi)
            .map(|(&l, &h)| (l, h))
            .filter(|&(_, h)| h >= lo)
            .collect();
        for (l, h) in overlapping {
            if l > cursor {
                self.free.release(cursor, l - 1);
            }
            cursor = match h.checked_add(1) {
                Some(c) => c,
                None => return,
            };
        }
        if cursor <= hi {
            self.free.release(cursor, hi);
        }
    }

    /// Frees by first frame number; used by the magazine cache.
    pub(crate) fn free_pfn(&mut self, pfn: u64) -> Result<IovaRange, DmaError> {
        self.free(Iova::new(pfn << self.shift))
    }

    /// Reserves `[first, last]`, widened to whole granules (`reserve_iova`
    /// with `iova_pfn` of both ends), so no allocation ever returns it.
    ///
    /// Overlapping reservations merge. Unlike Linux, a reservation over an
    /// allocated range does not absorb that range: it stays allocated and
    /// freeable, and only the free space around it becomes reserved. Behind
    /// a [`super::CachedIovaDomain`], reserve through its `with_domain`, which
    /// also takes the covered ranges out of the magazine cache.
    pub fn reserve(&mut self, first: Iova, last: Iova) -> Result<(), DmaError> {
        if first > last {
            return Err(DmaError::IovaBadRange { first, last });
        }
        let (mut lo, mut hi) = (first.raw() >> self.shift, last.raw() >> self.shift);
        self.free.remove_range(lo, hi);
        self.reserve_gen = self.reserve_gen.wrapping_add(1);
        // Merge with overlapping or adjacent reservations.
        loop {
            let hit = self
                .reserved
                .range(..=hi.saturating_add(1))
                .next_back()
                .map(|(&l, &h)| (l, h))
                .filter(|&(_, h)| h.saturating_add(1) >= lo);
            match hit {
                Some((l, h)) => {
                    self.reserved.remove(&l);
                    lo = lo.min(l);
                    hi = hi.max(h);
                }
                None => break,
            }
        }
        self.reserved.insert(lo, hi);
        Ok(())
    }

    /// The reserved ranges, merged, in address order (inclusive IOVAs).
    pub fn reserved_ranges(&self) -> Vec<(Iova, Iova)> {
        let s = self.shift;
        self.reserved
            .iter()
            .map(|(&lo, &hi)| {
                (
                    Iova::new(lo << s),
                    Iova::new(((hi + 1) << s).wrapping_sub(1)),
                )
            })
            .collect()
    }

    /// The allocated ranges in address order.
    pub fn allocated_ranges(&self) -> Vec<IovaRange> {
        self.allocated
            .iter()
            .map(|(&lo, &hi)| IovaRange::from_pfn(lo, hi - lo + 1, self.shift))
            .collect()
    }

    /// Number of free extents (a fragmentation measure).
    pub fn free_extent_count(&self) -> usize {
        self.free.len()
    }

    /// The free space at or below `limit` (an inclusive last address, like
    /// a DMA mask): how much there is and how much of it one allocation could
    /// get. Ranges cached by a [`super::CachedIovaDomain`] count as
    /// allocated. O(free extents): a report, not a fast path.
    pub fn free_space(&self, limit: Iova) -> FreeSpace {
        let mut out = FreeSpace::default();
        let Some(limit_pfn) = limit_pfn(limit, self.shift) else {
            return out;
        };
        for (lo, hi) in self.free.extents() {
            if lo > limit_pfn {
                break;
            }
            let n = hi.min(limit_pfn) - lo + 1;
            out.total += n;
            out.largest = out.largest.max(n);
            out.extents += 1;
        }
        out
    }

    /// Checks the internal invariants: the free index is well formed, and
    /// free, allocated and reserved frames are disjoint. For tests.
    pub fn check_invariants(&self) -> Result<(), String> {
        use alloc::format;
        self.free.check()?;
        let mut used: Vec<(u64, u64, &str)> = self
            .allocated
            .iter()
            .map(|(&l, &h)| (l, h, "allocated"))
            .collect();
        used.extend(self.free.extents().into_iter().map(|(l, h)| (l, h, "free")));
        used.sort_unstable();
        for w in used.windows(2) {
            if w[0].1 >= w[1].0 {
                return Err(format!("{:x?} overlaps {:x?}", w[0], w[1]));
            }
        }
        for (&l, &h) in &self.reserved {
            if let Some(&(fl, fh, _)) = used
                .iter()
                .find(|&&(a, b, kind)| kind == "free" && a <= h && l <= b)
            {
                return Err(format!(
                    "reserved {l:#x}..={h:#x} overlaps free {fl:#x}..={fh:#x}"
                ));
            }
        }
        if self
            .free
            .extents()
            .first()
            .is_some_and(|&(l, _)| l < self.start_pfn)
        {
            return Err("free space below start_pfn".into());
        }
        Ok(())
    }
}
