//! A plain model of the kernel's IOVA allocation rules, the oracle the
//! allocator is tested and fuzzed against (`tests/iova_model.rs`, the
//! `iova_ops` fuzz target of `dma-sim`): one copy for both.
//!
//! It is drivers/iommu/iova.c said as simply as possible, in frame numbers:
//! `__alloc_and_insert_iova_range`'s top-down walk over every used range
//! from the anchor (size-aligned requests masked to their power-of-two
//! alignment), the `max32_alloc_size` failing-size memo in front of it (one
//! memo per alignment class here; see [`IovaModel::max32_unaligned`]), and
//! `__cached_rbnode_delete_update`'s reset of the memo when a range below
//! 4 GiB is freed. It walks a sorted copy of every range on each request:
//! slow, and obviously right, which is its job.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// The model's own consistency failure: its memo refused a request that
/// its walk would have placed (the memo must only ever refuse what cannot
/// fit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoRefusedAFit {
    /// Pages asked.
    pub size: u64,
    /// Size-aligned request.
    pub aligned: bool,
    /// The memo that refused it.
    pub memo: u64,
}

/// The allocations and reservations of one domain, in frames.
#[derive(Clone, Debug)]
pub struct IovaModel {
    start_pfn: u64,
    dma_32bit_pfn: u64,
    max32: u64,
    max32_unaligned: u64,
    allocated: BTreeMap<u64, u64>,
    reserved: Vec<(u64, u64)>,
}

impl IovaModel {
    /// An empty domain whose lowest usable frame is `start_pfn` (at least
    /// 1, as `init_iova_domain` requires), with granule `1 << shift`.
    pub fn new(start_pfn: u64, shift: u32) -> Self {
        let d32 = 1u64 << (32 - shift.min(32));
        Self {
            start_pfn: start_pfn.max(1),
            dma_32bit_pfn: d32,
            max32: d32,
            max32_unaligned: d32,
            allocated: BTreeMap::new(),
            reserved: Vec::new(),
        }
    }

    /// The failing-size memo of size-aligned requests (Linux's
    /// `max32_alloc_size`).
    pub fn max32(&self) -> u64 {
        self.max32
    }

    /// The memo of unaligned requests (Linux keeps one memo for both; an
    /// unaligned request can fit where an aligned one of the same size
    /// failed, RFC §5.6).
    pub fn max32_unaligned(&self) -> u64 {
        self.max32_unaligned
    }

    /// Live allocations as `(first, last)` frames, lowest first.
    pub fn allocated(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.allocated.iter().map(|(&lo, &hi)| (lo, hi))
    }

    /// Reservations as `(first, last)` frames, in the order made.
    pub fn reserved(&self) -> &[(u64, u64)] {
        &self.reserved
    }

    /// Whether a live allocation starts at frame `lo`.
    pub fn holds(&self, lo: u64) -> bool {
        self.allocated.contains_key(&lo)
    }

    /// Number of live allocations.
    pub fn live(&self) -> usize {
        self.allocated.len()
    }

    /// Reserves frames `lo..=hi` (`reserve_iova`): never allocated.
    pub fn reserve(&mut self, lo: u64, hi: u64) {
        self.reserved.push((lo, hi));
    }

    /// Used frames (allocated or reserved) as disjoint sorted ranges.
    pub fn used(&self) -> Vec<(u64, u64)> {
        let mut all: Vec<(u64, u64)> = self.allocated().collect();
        all.extend(self.reserved.iter().copied());
        all.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::new();
        for (l, h) in all {
            match out.last_mut() {
                Some(last) if l <= last.1.saturating_add(1) => last.1 = last.1.max(h),
                _ => out.push((l, h)),
            }
        }
        out
    }

    /// `alloc_iova` of `size` frames at or below `limit_pfn`: the first
    /// frame placed, `Ok(None)` when nothing fits, or the model's own
    /// inconsistency.
    pub fn alloc(
        &mut self,
        size: u64,
        limit_pfn: u64,
        aligned: bool,
    ) -> Result<Option<u64>, MemoRefusedAFit> {
        let limit_end = limit_pfn.saturating_add(1);
        let memo = if aligned {
            self.max32
        } else {
            self.max32_unaligned
        };
        if limit_end <= self.dma_32bit_pfn && size >= memo {
            return match self.walk(size, limit_end, aligned) {
                None => Ok(None),
                Some(_) => Err(MemoRefusedAFit {
                    size,
                    aligned,
                    memo,
                }),
            };
        }
        let found = self.walk(size, limit_end, aligned);
        match found {
            Some(new) => {
                self.allocated.insert(new, new + size - 1);
            }
            None if limit_end >= self.dma_32bit_pfn => {
                self.max32 = self.max32.min(size);
                if !aligned {
                    self.max32_unaligned = self.max32_unaligned.min(size);
                }
            }
            None => {}
        }
        Ok(found)
    }

    /// The walk alone (`__alloc_and_insert_iova_range` without the memo).
    pub fn walk(&self, size: u64, limit_end: u64, aligned: bool) -> Option<u64> {
        if size == 0 {
            return None;
        }
        let mask = if aligned {
            !0u64 << (64 - (size - 1).leading_zeros()).min(63)
        } else {
            !0u64
        };
        let used = self.used();
        let low = self.start_pfn;
        let mut high = limit_end;
        let mut curr_lo = u64::MAX; // the anchor
        let mut nodes = used.iter().rev();
        let mut new;
        loop {
            high = high.min(curr_lo);
            new = high.wrapping_sub(size) & mask;
            match nodes.next() {
                Some(&(lo, hi)) if new <= hi && new >= low => curr_lo = lo,
                _ => break,
            }
        }
        (high >= size && new >= low).then_some(new)
    }

    /// `free_iova` of the allocation holding frame `pfn`: its range, or
    /// `None` when no allocation holds it. Freeing below 4 GiB resets both
    /// memos.
    pub fn free(&mut self, pfn: u64) -> Option<(u64, u64)> {
        let (&lo, &hi) = self.allocated.range(..=pfn).next_back()?;
        if hi < pfn {
            return None;
        }
        self.allocated.remove(&lo);
        if lo < self.dma_32bit_pfn {
            self.max32 = self.dma_32bit_pfn;
            self.max32_unaligned = self.dma_32bit_pfn;
        }
        Some((lo, hi))
    }
}
