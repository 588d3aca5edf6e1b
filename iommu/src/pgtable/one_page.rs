//! The one-page fast path of `map` and `unmap`: a call for exactly one page
//! whose leaf table the walk cache already holds.
//!
//! `dma_map_page`-style callers map and unmap one page per call at
//! consecutive IOVAs, so almost every call lands in the leaf table the
//! previous one used. Such a call needs one entry read and one entry write in
//! that table; the general paths (the chunk loop of `map` with its rollback
//! bookkeeping, the range walk of `unmap` with its gather of detached tables)
//! only add work around them. Linux's per-page cost is the same shape:
//! `iommu_map` → `map_pages` for one page, `__iommu_unmap` → `unmap_pages`.
//!
//! The fast path only answers when the outcome is the plain one (an empty
//! slot filled, a single-entry leaf of exactly the asked size removed); any
//! other case (a hole, a contiguous group, a large leaf the range ends
//! inside, an empty table to replace, a refusal) returns `None` before
//! anything is written, and the general path decides with its full rules. The
//! cache is validated by the VA span of the table it holds (see
//! [`WalkCache`](super::engine::WalkCache)), so it can only say where to
//! write, never what; the entry is read and written through the table memory
//! port like every other. An unmap recognises its leaf by the format's
//! one-entry bit test ([`PtFormat::one_entry_leaf`], copied into the cache
//! for the cached table's level) rather than a full decode: the test only
//! matches what `decode` calls a leaf of that size, and whatever it refuses
//! goes to the general path.

use scatterlist::{Iova, PhysAddr};

use super::engine::Core;
use super::{PageTable, Prot, PtFormat, Pte, TableMem};

impl<F: PtFormat, M: TableMem> PageTable<F, M> {
    /// Maps one page from the walk cache; false (nothing written) when the
    /// call is not a plain one-page map into the cached leaf table.
    #[inline(always)]
    pub(super) fn map_cached(
        &mut self,
        iova: Iova,
        paddr: PhysAddr,
        size: u64,
        prot: Prot,
    ) -> bool {
        let Some(slot) = self.walk_cache.page_slot(iova.raw(), size) else {
            return false;
        };
        let level = self.walk_cache.level;
        let core = &self.core;
        if !core.may_map_page(paddr, size, prot) {
            return false;
        }
        let mut done = false;
        self.mem.update_u64(slot, |raw| {
            done = core.fmt.decode(level, raw) == Pte::Empty;
            done.then(|| {
                core.fmt
                    .encode_leaf(level, paddr, size.trailing_zeros(), prot)
            })
        });
        done
    }

    /// Unmaps one page from the walk cache and returns its size; `None`
    /// (nothing written) when the call is not a plain one-page unmap of a
    /// leaf in the cached table.
    #[inline(always)]
    pub(super) fn unmap_cached(&mut self, iova: Iova, size: u64) -> Option<u64> {
        let slot = self.walk_cache.page_slot(iova.raw(), size)?;
        // `size` is the table's one-entry page size (`page_slot`), and an
        // entry the format's one-entry test matches decodes as a leaf of
        // exactly that size.
        let leaf = self.walk_cache.leaf;
        let mut hit = false;
        self.mem.update_u64(slot, |raw| {
            hit = leaf.matches(raw);
            hit.then_some(0)
        });
        if hit {
            self.stats.one_page_unmaps += 1;
            Some(size)
        } else {
            None
        }
    }
}

impl<F: PtFormat> Core<F> {
    /// The checks of [`PageTable::map`] on `paddr` and `prot` for a page of
    /// `size` bytes (the IOVA side was checked against the walk cache).
    #[inline(always)]
    fn may_map_page(&self, paddr: PhysAddr, size: u64, prot: Prot) -> bool {
        paddr.raw() & (size - 1) == 0
            && paddr.raw() | (size - 1) <= self.oas_mask()
            && prot.intersects(Prot::READ | Prot::WRITE)
    }
}
