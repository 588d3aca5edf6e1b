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

    /// [`SgTable::from_kinded_ranges`] that also never lets an entry cross a
    /// multiple of `seg_boundary_mask + 1`: each merged run is cut where the
    /// page builder would cut it *and* at every segment boundary, the way
    /// the block layer sizes segments (block/blk-merge.c
    /// `get_max_segment_size`: `min(len, boundary - (boundary & paddr) + 1,
    /// max_segment_size)`). `u64::MAX` means no boundary. Same refusals as
    /// [`SgTable::from_ranges`].
    pub fn from_kinded_ranges_bounded(
        ranges: &[(PhysAddr, u64, SegKind)],
        max_segment: u64,
        seg_boundary_mask: u64,
    ) -> Result<SgTable, SgError> {
        let mut runs: Vec<(u64, u64, SegKind)> = Vec::with_capacity(ranges.len());
        for &(start, len, kind) in ranges {
            push_run(&mut runs, start, len, kind)?;
        }
        Self::from_runs_bounded(runs, max_segment, seg_boundary_mask)
    }

    fn from_runs(runs: Vec<(u64, u64, SegKind)>, max_segment: u64) -> Result<SgTable, SgError> {
        Self::from_runs_bounded(runs, max_segment, u64::MAX)
    }

    fn from_runs_bounded(
        runs: Vec<(u64, u64, SegKind)>,
        max_segment: u64,
        boundary: u64,
    ) -> Result<SgTable, SgError> {
        let ms = effective_max_segment(max_segment)?;
        if runs.is_empty() {
            return Err(SgError::NoRanges);
        }
        let mut n = 0u64;
        for &(s, l, _) in &runs {
            cut_run(s, l, ms, boundary, |_, _| n += 1);
        }
        let n = usize::try_from(n).map_err(|_| SgError::LengthTooLarge { len: n })?;
        let mut t = SgTable::with_layout(n);
        let mut slots = t.slots.iter_mut().filter(|s| !s.is_chain());
        for (start, len, kind) in runs {
            cut_run(start, len, ms, boundary, |pos, take| {
                if let Some(s) = slots.next() {
                    // take <= ms <= MAX_SEGMENT_LIMIT fits in u32.
                    s.set_cpu(pos, take as u32, kind);
                }
            });
        }
        Ok(t)
    }
}

/// Calls `f(start, len)` for each piece of the run `[start, start + len)`:
/// each piece ends `ms` bytes after the start of the page it starts in (so
/// only the first piece of a run may start inside a page, as the page
/// builder cuts), at a multiple of `boundary + 1`, or at the run's end,
/// whichever comes first.
fn cut_run(start: u64, len: u64, ms: u64, boundary: u64, mut f: impl FnMut(u64, u64)) {
    let mut pos = start;
    let mut left = len;
    while left > 0 {
        let room = ms - pos % PAGE_SIZE;
        let to_boundary = (boundary - (boundary & pos)).saturating_add(1);
        let take = left.min(room).min(to_boundary);
        f(pos, take);
        // Wraps only after the last byte of the address space.
        pos = pos.wrapping_add(take);
        left -= take;
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

    fn pieces(t: &SgTable) -> Vec<(u64, u32)> {
        t.iter().map(|e| (e.phys().raw(), e.len())).collect()
    }

    #[test]
    fn bounded_cuts_at_the_segment_boundary_and_the_max_segment() {
        // 0xe800 + 0x6000 crosses the 64 KiB boundary at 0x1_0000; max
        // segment 8 KiB cuts the rest.
        let t = SgTable::from_kinded_ranges_bounded(
            &[(PhysAddr::new(0xe800), 0x6000, SegKind::Ram)],
            0x2000,
            0xffff,
        )
        .unwrap();
        assert_eq!(
            pieces(&t),
            vec![
                (0xe800, 0x1800),
                (0x1_0000, 0x2000),
                (0x1_2000, 0x2000),
                (0x1_4000, 0x800)
            ]
        );
        for (p, l) in pieces(&t) {
            assert_eq!(
                p >> 16,
                (p + u64::from(l) - 1) >> 16,
                "{p:#x}+{l:#x} crosses"
            );
        }
        // No boundary: exactly `from_kinded_ranges`.
        let r = [(PhysAddr::new(0x1100), 0x2_3000, SegKind::Ram)];
        assert_eq!(
            pieces(&SgTable::from_kinded_ranges_bounded(&r, 0x1_0000, u64::MAX).unwrap()),
            pieces(&SgTable::from_kinded_ranges(&r, 0x1_0000).unwrap())
        );
        // A run ending on the last byte of the address space.
        let top = [(PhysAddr::new(u64::MAX - 0x1fff), 0x2000, SegKind::Ram)];
        let t = SgTable::from_kinded_ranges_bounded(&top, 0x10_0000, 0xfff).unwrap();
        assert_eq!(pieces(&t).len(), 2);
    }
}
