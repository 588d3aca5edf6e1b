//! Linux's batched page-table ops: `map_pages` and `unmap_pages`.
//!
//! `struct io_pgtable_ops` (include/linux/io-pgtable.h; the ARM format's
//! `arm_lpae_map_pages` / `arm_lpae_unmap_pages` in
//! drivers/iommu/io-pgtable-arm.c) and generic_pt's domain ops
//! (drivers/iommu/generic_pt/iommu_pt.h) take one page size and a count rather
//! than a byte range: the caller (`iommu_map`, drivers/iommu/iommu.c) has
//! already chosen the page size, so the table walks down once and fills a run
//! of entries per leaf table instead of walking from the root for every page.
//!
//! Semantics are generic_pt's: one call covers all `pgcount` pages, across
//! leaf-table boundaries (io-pgtable-arm stops at the end of a leaf table and
//! relies on `iommu_map` calling again; the `mapped` count makes the two
//! equivalent for that loop). Like both, a failing `map_pages` leaves the
//! pages it already mapped in place and reports them through `mapped`, for
//! the caller to unmap; [`PageTable::map`] is the all-or-nothing entry point.

use alloc::vec::Vec;

use scatterlist::{Iova, PhysAddr};

use super::engine::{Core, MapScratch, UnmapPaths};
use super::{mask, shr, FrameStore, Gather, PageTable, Prot, PtError, PtFormat, TableMem};

impl<F: PtFormat, M: TableMem> PageTable<F, M> {
    /// Maps `pgcount` pages of `pgsize` bytes from `iova` to `paddr`
    /// (io-pgtable `map_pages`), adding the bytes mapped to `*mapped` (Linux's
    /// `mapped` out-parameter), also when it fails.
    ///
    /// Refused before anything is mapped (`*mapped` unchanged): a `pgsize`
    /// that is not one of the table's page sizes ([`PtError::BadPageSize`]),
    /// `pgcount == 0` ([`PtError::ZeroSize`]), `iova` or `paddr` not aligned
    /// to `pgsize` ([`PtError::Misaligned`], with `granule = pgsize`), a range
    /// past the input or output address size, no read or write permission.
    /// A page whose entries are in use is [`PtError::AddressInUse`] naming
    /// that page; the pages before it stay mapped and are counted in
    /// `*mapped`. Empty tables a large page replaces wait for the next flush
    /// ([`take_deferred`](Self::take_deferred)), as with [`map`](Self::map).
    pub fn map_pages(
        &mut self,
        iova: Iova,
        paddr: PhysAddr,
        pgsize: u64,
        pgcount: u64,
        prot: Prot,
        mapped: &mut u64,
    ) -> Result<(), PtError> {
        let core = &self.core;
        core.check_pages(iova, paddr, pgsize, pgcount, prot)?;
        let mut scratch = MapScratch::new(self.walk_cache);
        let res = self.mem.with_store_mut(|m| {
            core.map_run(
                m,
                iova.raw(),
                paddr.raw(),
                pgsize,
                pgcount,
                prot,
                mapped,
                &mut scratch,
            )
        });
        self.absorb(scratch, res.is_ok());
        res
    }

    /// Unmaps `pgcount` pages of `pgsize` bytes from `iova` (io-pgtable
    /// `unmap_pages`) and returns the bytes unmapped with the gather to
    /// flush. The rules of [`unmap`](Self::unmap) over
    /// `[iova, iova + pgsize * pgcount)`: it stops at the first hole, a large
    /// entry the range ends inside is removed whole, tables the range covers
    /// are detached into the gather. A `pgsize` that is not one of the
    /// table's sizes, `pgcount == 0`, or an `iova` not aligned to `pgsize`
    /// unmaps nothing (Linux returns 0).
    #[must_use = "the gather must be flushed before its table pages are released"]
    pub fn unmap_pages(&mut self, iova: Iova, pgsize: u64, pgcount: u64) -> (u64, Gather) {
        let ok = pgsize.is_power_of_two()
            && pgsize & self.core.pgsize_bitmap != 0
            && pgcount != 0
            && iova.raw() & (pgsize - 1) == 0;
        match pgsize.checked_mul(pgcount) {
            Some(size) if ok && pgcount == 1 => match self.unmap_cached(iova, size) {
                Some(n) => (n, Gather::range(iova, n)),
                None => self.unmap_inner(iova, size, UnmapPaths::ALL),
            },
            Some(size) if ok => self.unmap_inner(iova, size, UnmapPaths::RUNS),
            _ => (
                0,
                Gather {
                    iova,
                    len: 0,
                    freed: Vec::new(),
                },
            ),
        }
    }
}

impl<F: PtFormat> Core<F> {
    /// The checks of [`PageTable::map_pages`] before anything is written.
    fn check_pages(
        &self,
        iova: Iova,
        paddr: PhysAddr,
        pgsize: u64,
        pgcount: u64,
        prot: Prot,
    ) -> Result<(), PtError> {
        if !pgsize.is_power_of_two() || pgsize & self.pgsize_bitmap == 0 {
            return Err(PtError::BadPageSize {
                iova,
                pgsize,
                bitmap: self.pgsize_bitmap,
            });
        }
        if pgcount == 0 {
            return Err(PtError::ZeroSize { iova });
        }
        let Some(size) = pgsize.checked_mul(pgcount) else {
            return Err(PtError::IovaOutOfRange {
                iova,
                size: u64::MAX,
                ias: self.fmt.ias(),
            });
        };
        self.check_map(iova, paddr, size, prot)?;
        if (iova.raw() | paddr.raw()) & (pgsize - 1) != 0 {
            return Err(PtError::Misaligned {
                iova,
                paddr,
                size,
                granule: pgsize,
            });
        }
        Ok(())
    }

    /// Maps the checked run: one walk from the root per leaf table, then
    /// every page of the run that falls in that table.
    #[allow(clippy::too_many_arguments)]
    fn map_run<S: FrameStore + ?Sized>(
        &self,
        m: &mut S,
        mut va: u64,
        mut oa: u64,
        pgsize: u64,
        pgcount: u64,
        prot: Prot,
        mapped: &mut u64,
        s: &mut MapScratch,
    ) -> Result<(), PtError> {
        let lg2 = pgsize.trailing_zeros();
        let level = self.leaf_level(lg2);
        let item = self.item(level);
        let bits = self.bits(level);
        // Entries one page takes (a contiguous group for sizes above the
        // level's own); `va` is page aligned, so a table holds whole pages.
        let per_page = 1u64 << (lg2 - item);
        let mut left = pgcount;
        while left > 0 {
            let table = self.walk_alloc(m, va, level, s)?;
            let idx = shr(va, item) & mask(bits);
            let run = (((1u64 << bits) - idx) / per_page).clamp(1, left);
            for _ in 0..run {
                self.set_leaf(m, table, level, va, oa, lg2, prot, s)?;
                *mapped += pgsize;
                va = va.wrapping_add(pgsize);
                oa = oa.wrapping_add(pgsize);
            }
            left -= run;
        }
        Ok(())
    }
}
