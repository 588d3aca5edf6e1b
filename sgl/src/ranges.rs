//! Building a table from physical byte ranges, of one kind or each with its
//! own.
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
        let mut runs: Vec<(u64, u64, SegKind)> = Vec::with_capacity(ranges.len());
        for &(start, len) in ranges {
            push_run(&mut runs, start, len, kind)?;
        }
        Self::from_runs(runs, max_segment)
    }

    /// A table covering `ranges`, each `(start, length, kind)`: touching
    /// ranges merge only when their kinds may share a segment
    /// ([`SegKind::can_merge_with`], Linux's pgmap rule), so one call builds
    /// a mixed table (RAM, peer BARs, stolen RAM). Same refusals and cuts as
    /// [`SgTable::from_ranges`].
    pub fn from_kinded_ranges(
        ranges: &[(PhysAddr, u64, SegKind)],
        max_segment: u64,
    ) -> Result<SgTable, SgError> {
        let mut runs: Vec<(u64, u64, SegKind)> = Vec::with_capacity(ranges.len());
        for &(start, len, kind) in ranges {
            push_run(&mut runs, start, len, kind)?;
        }
        Self::from_runs(runs, max_segment)
    }

    fn from_runs(runs: Vec<(u64, u64, SegKind)>, max_segment: u64) -> Result<SgTable, SgError> {
        let ms = effective_max_segment(max_segment)?;
        if runs.is_empty() {
            return Err(SgError::NoRanges);
        }
        let pieces = |s: u64, l: u64| (s % PAGE_SIZE + l).div_ceil(ms);
        let n: u64 = runs.iter().map(|&(s, l, _)| pieces(s, l)).sum();
        let n = usize::try_from(n).map_err(|_| SgError::LengthTooLarge { len: n })?;
        let mut t = SgTable::with_layout(n);
        let mut slots = t.slots.iter_mut().filter(|s| !s.is_chain());
        for (start, len, kind) in runs {
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

/// Appends `[start, start + len)` of `kind` to `runs`, merging it into the
/// last run when they touch and their kinds may share a segment.
fn push_run(
    runs: &mut Vec<(u64, u64, SegKind)>,
    start: PhysAddr,
    len: u64,
    kind: SegKind,
) -> Result<(), SgError> {
    if len == 0 {
        return Err(SgError::ZeroLength);
    }
    if start.last_of(len).is_none() {
        return Err(SgError::AddressOverflow { start, len });
    }
    match runs.last_mut() {
        Some((s, l, k)) if s.checked_add(*l) == Some(start.raw()) && k.can_merge_with(kind) => {
            *l += len
        }
        _ => runs.push((start.raw(), len, kind)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::ProviderId;
    use alloc::vec;

    #[test]
    fn touching_ranges_merge_only_within_a_kind() {
        let bar = SegKind::PeerBar(ProviderId::new(3));
        let t = SgTable::from_kinded_ranges(
            &[
                (PhysAddr::new(0x1000), 0x1000, SegKind::Ram),
                (PhysAddr::new(0x2000), 0x1000, SegKind::Ram),
                (PhysAddr::new(0x3000), 0x800, bar),
                (PhysAddr::new(0x3800), 0x800, bar),
                (PhysAddr::new(0x4000), 0x1000, SegKind::Ram),
            ],
            0x10_0000,
        )
        .unwrap();
        let got: Vec<_> = t
            .iter()
            .map(|e| (e.phys().raw(), e.len(), e.kind()))
            .collect();
        assert_eq!(
            got,
            vec![
                (0x1000, 0x2000, SegKind::Ram),
                (0x3000, 0x1000, bar),
                (0x4000, 0x1000, SegKind::Ram),
            ]
        );
        assert_eq!(
            SgTable::from_kinded_ranges(&[(PhysAddr::new(0), 0, SegKind::Ram)], 4096).unwrap_err(),
            SgError::ZeroLength
        );
    }
}
