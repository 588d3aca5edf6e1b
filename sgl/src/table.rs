//! The table: entries laid out in chained chunks exactly like Linux.
//!
//! Linux allocates a scatterlist in chunks of at most `SG_MAX_SINGLE_ALLOC`
//! (128) entries; when more entries follow, the last slot of a full chunk is a
//! chain link, leaving 127 data entries (`lib/scatterlist.c`,
//! `__sg_alloc_table` and `get_next_sg`). We keep every slot, links included,
//! in one flat vector: a chain link "points" at the slot after it, so the walk
//! is a linear scan and the counts (`nents`, `orig_nents`, allocated entries)
//! are the kernel's.

use crate::addr::DmaAddr;
use crate::entry::{DmaFlags, SgEntry};
use crate::error::SgError;
use crate::iter::{CpuIter, CpuIterMut, DmaIter, DmaIterMut};
use alloc::vec::Vec;

/// Entries per chunk (Linux `SG_MAX_SINGLE_ALLOC` = `PAGE_SIZE / 32`).
pub const SG_MAX_SINGLE_ALLOC: usize = 128;

/// A scatter-gather table (Linux `struct sg_table`).
///
/// `orig_nents` counts CPU entries (what the builder produced); `nents` counts
/// DMA entries (what a mapping produced, `<= orig_nents` because mapping may
/// merge). Before mapping both are equal. A DMA-only table (dma-buf style) has
/// `orig_nents == 0`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SgTable {
    /// Every slot, chain links and reserved-but-unused slots included.
    pub(crate) slots: Vec<SgEntry>,
    /// Index of the first slot of the last chunk.
    pub(crate) last_chunk_start: usize,
    pub(crate) nents: usize,
    pub(crate) orig_nents: usize,
    /// Allocated entries without chain links (Linux `sg_append_table.total_nents`).
    pub(crate) alloc_nents: usize,
    pub(crate) dma_mapped: bool,
}

impl SgTable {
    /// An empty table (no entries, nothing allocated).
    pub const fn new() -> Self {
        Self {
            slots: Vec::new(),
            last_chunk_start: 0,
            nents: 0,
            orig_nents: 0,
            alloc_nents: 0,
            dma_mapped: false,
        }
    }

    /// Number of DMA entries (Linux `sgt->nents`).
    #[inline]
    pub fn nents(&self) -> usize {
        self.nents
    }

    /// Number of CPU entries (Linux `sgt->orig_nents`).
    #[inline]
    pub fn orig_nents(&self) -> usize {
        self.orig_nents
    }

    /// Allocated entries, chain links excluded (Linux `sg_append_table.total_nents`;
    /// equals `orig_nents` for a table built in one go).
    #[inline]
    pub fn alloc_nents(&self) -> usize {
        self.alloc_nents
    }

    /// Every allocated slot, chain links included (memory footprint in entries).
    #[inline]
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Number of chunks (separate allocations in Linux).
    pub fn chunk_count(&self) -> usize {
        if self.slots.is_empty() {
            0
        } else {
            1 + self.slots.iter().filter(|s| s.is_chain()).count()
        }
    }

    /// The raw slots in memory order, chain links included.
    #[inline]
    pub fn slots(&self) -> &[SgEntry] {
        &self.slots
    }

    /// True once a mapper called [`set_nents`](Self::set_nents) (or for a
    /// DMA-only table): the DMA fields of the first `nents` entries are valid.
    #[inline]
    pub fn is_dma_mapped(&self) -> bool {
        self.dma_mapped
    }

    /// Records the number of DMA segments a mapping produced (what
    /// `dma_map_sgtable` stores in `sgt->nents`) and marks the table mapped.
    /// Refuses a count above `orig_nents` (above the current `nents` for a
    /// DMA-only table).
    pub fn set_nents(&mut self, nents: usize) -> Result<(), SgError> {
        let max = if self.orig_nents == 0 {
            self.nents
        } else {
            self.orig_nents
        };
        if nents > max {
            return Err(SgError::NentsOutOfRange { nents, max });
        }
        self.nents = nents;
        self.dma_mapped = true;
        Ok(())
    }

    /// Forgets a mapping: clears every entry's DMA side and resets
    /// `nents = orig_nents` (the state after unmap). A DMA-only table keeps
    /// its segments, since they are all it has.
    pub fn clear_dma(&mut self) {
        if self.orig_nents == 0 {
            return;
        }
        for s in self.slots.iter_mut().filter(|s| !s.is_chain()) {
            s.clear_dma();
        }
        self.nents = self.orig_nents;
        self.dma_mapped = false;
    }

    /// CPU view: the `orig_nents` entries (Linux `for_each_sgtable_sg`).
    #[inline]
    pub fn iter(&self) -> CpuIter<'_> {
        CpuIter::new(&self.slots, self.orig_nents)
    }

    /// CPU view, mutable (mappers write the DMA side while reading the CPU side).
    #[inline]
    pub fn iter_mut(&mut self) -> CpuIterMut<'_> {
        CpuIterMut::new(&mut self.slots, self.orig_nents)
    }

    /// DMA view: the `nents` entries (Linux `for_each_sgtable_dma_sg`).
    #[inline]
    pub fn dma_iter(&self) -> DmaIter<'_> {
        DmaIter::new(&self.slots, self.nents)
    }

    /// DMA view, mutable.
    #[inline]
    pub fn dma_iter_mut(&mut self) -> DmaIterMut<'_> {
        DmaIterMut::new(&mut self.slots, self.nents)
    }

    /// Sum of the CPU lengths of the `orig_nents` entries.
    pub fn total_len(&self) -> u64 {
        self.iter().map(|e| u64::from(e.len())).sum()
    }

    /// Sum of the DMA lengths of the `nents` entries.
    pub fn total_dma_len(&self) -> u64 {
        self.dma_iter().map(|e| u64::from(e.dma_len())).sum()
    }

    /// Linux `sg_nents`: entries counted from the first one, following chain
    /// links, up to and including the one marked END (reserved slots of an
    /// unfinished append table count, as in Linux).
    pub fn sg_nents(&self) -> usize {
        let mut n = 0;
        for s in self.slots.iter().filter(|s| !s.is_chain()) {
            n += 1;
            if s.is_end() {
                break;
            }
        }
        n
    }

    /// Linux `sg_nents_for_len`: how many CPU entries cover `len` bytes; 0 for
    /// `len == 0`; [`SgError::TooShort`] when the table holds fewer bytes.
    pub fn sg_nents_for_len(&self, len: u64) -> Result<usize, SgError> {
        if len == 0 {
            return Ok(0);
        }
        let mut total = 0u64;
        for (i, e) in self.iter().enumerate() {
            total += u64::from(e.len());
            if total >= len {
                return Ok(i + 1);
            }
        }
        Err(SgError::TooShort {
            wanted: len,
            available: total,
        })
    }

    /// Linux `sg_last`: the last CPU entry.
    pub fn last(&self) -> Option<&SgEntry> {
        self.iter().last()
    }

    /// A DMA-only table (dma-buf style, `drivers/dma-buf/dma-buf-mapping.c`):
    /// `orig_nents == 0`, no CPU side, one entry per `(address, length)`
    /// segment in the chunked layout of `sg_alloc_table`. Every entry gets
    /// `flags`. Refuses an empty list, zero or > `u32::MAX` lengths, and
    /// wrapping ranges.
    pub fn dma_only(segments: &[(DmaAddr, u64)], flags: DmaFlags) -> Result<Self, SgError> {
        if segments.is_empty() {
            return Err(SgError::NoRanges);
        }
        let mut t = Self::with_layout(segments.len());
        let mut it = t.slots.iter_mut().filter(|s| !s.is_chain());
        for &(addr, len) in segments {
            if len == 0 {
                return Err(SgError::ZeroLength);
            }
            match it.next() {
                Some(s) => s.set_dma(addr, len, flags)?,
                None => return Err(SgError::NoRanges),
            }
        }
        t.orig_nents = 0;
        t.nents = segments.len();
        t.dma_mapped = true;
        Ok(t)
    }

    /// A table of `n` empty entries in the layout of `__sg_alloc_table`
    /// (`n > 0`), END marked on the last entry, `nents = orig_nents = n`.
    pub(crate) fn with_layout(n: usize) -> Self {
        let mut t = Self::new();
        t.slots.reserve(n + n / (SG_MAX_SINGLE_ALLOC - 1) + 1);
        let mut cur = None;
        for i in 0..n {
            cur = Some(t.next_slot(cur, n - i));
        }
        if let Some(s) = cur.and_then(|c| t.slots.get_mut(c)) {
            s.mark_end();
        }
        t.nents = n;
        t.orig_nents = n;
        t
    }

    /// Linux `get_next_sg`: the slot after `cur` when it is not the chunk's
    /// reserved last slot (or when exactly one entry is still needed);
    /// otherwise a new chunk of `min(needed, 128)` slots, chained from that
    /// last slot. `needed >= 1`.
    pub(crate) fn next_slot(&mut self, cur: Option<usize>, needed: usize) -> usize {
        let last = self.slots.len().wrapping_sub(1);
        if let Some(c) = cur {
            let next = c + 1;
            if next < last || (next == last && needed == 1) {
                return next;
            }
        }
        let alloc = needed.clamp(1, SG_MAX_SINGLE_ALLOC);
        let start = self.slots.len();
        if cur.is_some() {
            if let Some(link) = self.slots.get_mut(last) {
                *link = SgEntry::CHAIN;
            }
            self.alloc_nents += alloc - 1;
        } else {
            self.alloc_nents = alloc;
        }
        self.slots.resize(start + alloc, SgEntry::EMPTY);
        if let Some(s) = self.slots.last_mut() {
            s.mark_end();
        }
        self.last_chunk_start = start;
        start
    }

    /// Index of the slot holding the last CPU entry.
    pub(crate) fn last_data_slot(&self) -> Option<usize> {
        let n = self.orig_nents.max(self.nents);
        if n == 0 {
            return None;
        }
        let mut seen = 0;
        for (i, s) in self.slots.iter().enumerate() {
            if !s.is_chain() {
                seen += 1;
                if seen == n {
                    return Some(i);
                }
            }
        }
        None
    }

    /// Chains `next` after `self` (Linux `sg_chain`): the result walks
    /// `self`'s entries then `next`'s. Slots reserved but unused after `self`'s
    /// last entry are dropped and one slot becomes the chain link; when `self`'s
    /// last chunk is a full 128-slot chunk with no spare slot, its last entry
    /// moves to a two-slot chunk (entry + link) so no chunk exceeds 128 slots.
    /// Chaining is a CPU-side operation: a DMA-mapped table is refused.
    pub fn chain(mut self, next: SgTable) -> Result<SgTable, SgError> {
        for t in [&self, &next] {
            if t.dma_mapped {
                return Err(SgError::ChainMapped {
                    nents: t.nents,
                    orig_nents: t.orig_nents,
                });
            }
        }
        let Some(last) = self.last_data_slot() else {
            return Ok(next);
        };
        if next.orig_nents == 0 {
            return Ok(self);
        }
        self.slots.truncate(last + 1);
        let chunk_len = self.slots.len() - self.last_chunk_start;
        self.alloc_nents = self.orig_nents;
        if let Some(e) = self.slots.get_mut(last) {
            e.unmark_end();
        }
        if chunk_len >= SG_MAX_SINGLE_ALLOC {
            let moved = self.slots.get(last).copied().unwrap_or_default();
            if let Some(e) = self.slots.get_mut(last) {
                *e = SgEntry::CHAIN;
            }
            self.slots.push(moved);
        }
        self.slots.push(SgEntry::CHAIN);
        let base = self.slots.len();
        self.slots.extend_from_slice(&next.slots);
        self.last_chunk_start = base + next.last_chunk_start;
        self.orig_nents += next.orig_nents;
        self.nents = self.orig_nents;
        self.alloc_nents += next.alloc_nents;
        Ok(self)
    }
}
