//! Building a table from physical byte ranges of one kind.
//!
//! The page builder only knows whole pages; drivers that hold physical ranges
//! (a BAR window, a carve-out, `dma_buf_phys_vec`) build here. Adjacent ranges
//! that touch are merged, and each merged run is cut where the page builder
//! would cut it: at the run's first page plus multiples of `max_segment`. So
//! `from_ranges(&[(pfn * PAGE_SIZE + offset, size)], ..)` equals
//! `from_pages(&[pfn, pfn + 1, ..], offset, size, ..)`.

use crate::addr::{PhysAddr, PAGE_SIZE};
use crate::append::effective_max_segment;
use crate::error::SgError;
use crate::kind::SegKind;
use crate::table::SgTable;
use alloc::vec::Vec;

impl SgTable {
    /// A table covering `ranges` (physical start, length in bytes), all of
    /// `kind`, no entry longer than `max_segment` rounded down to a page.
    /// Refuses an empty list, zero-length ranges, ranges wrapping the address
    /// space and `max_segment` below a page.
    pub fn from_ranges(
        ranges: &[(PhysAddr, u64)],
        kind: SegKind,
        max_segment: u64,
    ) -> Result<SgTable, SgError> {
        let ms = effective_max_segment(max_segment)?;
        if ranges.is_empty() {
            return Err(SgError::NoRanges);
        }
        // Merge touching ranges into runs (start, len).
        let mut runs: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for &(start, len) in ranges {
            if len == 0 {
                return Err(SgError::ZeroLength);
            }
            if start.last_of(len).is_none() {
                return Err(SgError::AddressOverflow { start, len });
            }
            match runs.last_mut() {
                Some((s, l)) if s.checked_add(*l) == Some(start.raw()) => *l += len,
                _ => runs.push((start.raw(), len)),
            }
        }
        let pieces = |s: u64, l: u64| (s % PAGE_SIZE + l).div_ceil(ms);
        let n: u64 = runs.iter().map(|&(s, l)| pieces(s, l)).sum();
        let n = usize::try_from(n).map_err(|_| SgError::LengthTooLarge { len: n })?;
        let mut t = SgTable::with_layout(n);
        let mut slots = t.slots.iter_mut().filter(|s| !s.is_chain());
        for (start, len) in runs {
            let mut pos = start;
            let mut left = len;
            let mut room = ms - start % PAGE_SIZE;
            while left > 0 {
                let take = left.min(room);
                if let Some(s) = slots.next() {
                    // take <= ms <= MAX_SEGMENT_LIMIT fits in u32.
                    s.set_cpu(pos, take as u32, kind);
                }
                // Wraps only after the last byte of the address space.
                pos = pos.wrapping_add(take);
                left -= take;
                room = ms;
            }
        }
        Ok(t)
    }
}
