//! Splitting a request at the queue limits (block/blk-merge.c
//! `bio_split_rw_at` with `bvec_split_segs`, `get_max_segment_size` and
//! `bvec_gap_to_prev`):
//!
//! * a gap against the virt boundary ends the piece before the segment;
//! * a segment is cut where the max segment size or the segment boundary
//!   says, each cut one DMA segment;
//! * a piece ends when it has `max_segments` segments or `max_hw_sectors`
//!   bytes;
//! * every piece but the last is a whole number of sectors: the bytes past
//!   the last sector boundary move to the next piece (`bio_split_rw_at`
//!   aligns the split down to the logical block size; one that would
//!   become empty is `-EINVAL` there, [`LimitViolation::NotSectorMultiple`]
//!   here).
//!
//! Differences: Linux merges physically contiguous bvecs into one segment
//! before counting (`biovec_phys_mergeable`); here each segment of the
//! request counts on its own, which may split earlier, never later.

use super::bio::{BioVec, BlockRequest, SECTOR_SIZE};
use super::error::{BlockError, LimitViolation};
use super::limits::QueueLimits;
use dma_api::PhysAddr;

struct Pieces<'a> {
    lim: &'a QueueLimits,
    req: &'a BlockRequest,
    out: Vec<BlockRequest>,
    cur: Vec<BioVec>,
    bytes: u64,
    sector: u64,
}

impl Pieces<'_> {
    /// Ends the current piece at its last sector boundary; the rest goes
    /// back on `stack` (popped first).
    fn flush(&mut self, stack: &mut Vec<BioVec>) -> Result<(), BlockError> {
        let mut excess = self.bytes % SECTOR_SIZE;
        let mut carry = Vec::new();
        while excess > 0 {
            let Some(last) = self.cur.last_mut() else {
                break;
            };
            if last.len <= excess {
                excess -= last.len;
                carry.push(*last);
                self.cur.pop();
            } else {
                last.len -= excess;
                carry.push(BioVec {
                    phys: PhysAddr::new(last.phys.raw() + last.len),
                    len: excess,
                });
                excess = 0;
            }
        }
        let kept: u64 = self.cur.iter().map(|v| v.len).sum();
        if kept == 0 {
            return Err(BlockError::OverLimits {
                index: None,
                violation: LimitViolation::NotSectorMultiple { len: self.bytes },
            });
        }
        // `carry` holds the tail in reverse order: pushing it as is makes
        // the earliest byte pop first.
        stack.extend(carry);
        self.out.push(BlockRequest {
            op: self.req.op,
            sector: self.sector,
            segments: core::mem::take(&mut self.cur),
        });
        self.sector += kept / SECTOR_SIZE;
        self.bytes = 0;
        Ok(())
    }
}

/// Splits `req` into requests that each pass [`QueueLimits::check`], in
/// order, covering the same bytes and sectors. Errors are the segment
/// checks (empty, unaligned), a total that is not whole sectors, or a cut
/// that cannot keep a whole sector.
pub fn split(req: &BlockRequest, lim: &QueueLimits) -> Result<Vec<BlockRequest>, BlockError> {
    if req.is_empty() {
        return Err(BlockError::Empty);
    }
    for (i, v) in req.segments.iter().enumerate() {
        lim.check_segment(i, v.phys.raw(), v.len)?;
    }
    let total = req.len().ok_or(BlockError::OverLimits {
        index: None,
        violation: LimitViolation::TooLarge {
            max_hw_bytes: lim.max_hw_bytes,
        },
    })?;
    if total % SECTOR_SIZE != 0 {
        return Err(BlockError::OverLimits {
            index: None,
            violation: LimitViolation::NotSectorMultiple { len: total },
        });
    }
    let mut p = Pieces {
        lim,
        req,
        out: Vec::new(),
        cur: Vec::new(),
        bytes: 0,
        sector: req.sector,
    };
    let mut stack: Vec<BioVec> = req.segments.iter().rev().copied().collect();
    while let Some(v) = stack.pop() {
        let (start, len) = (v.phys.raw(), v.len);
        let prev_end = p.cur.last().map(|l| l.phys.raw() + l.len);
        let gap = prev_end.is_some_and(|e| e != start && p.lim.gap(e, start));
        let full = p.cur.len() >= usize::from(p.lim.max_segments) || p.bytes == p.lim.max_hw_bytes;
        if !p.cur.is_empty() && (gap || full) {
            stack.push(v);
            p.flush(&mut stack)?;
            continue;
        }
        let take = p
            .lim
            .max_segment_at(start, len)
            .min(p.lim.max_hw_bytes - p.bytes);
        p.cur.push(BioVec {
            phys: v.phys,
            len: take,
        });
        p.bytes += take;
        if take < len {
            stack.push(BioVec {
                phys: PhysAddr::new(start + take),
                len: len - take,
            });
        }
    }
    if !p.cur.is_empty() {
        p.flush(&mut stack)?;
        debug_assert!(stack.is_empty());
    }
    Ok(p.out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{Features, Op};

    fn lim(max_segments: u16, max_hw_bytes: u64, vb: u64) -> QueueLimits {
        QueueLimits {
            max_hw_bytes,
            max_segments,
            max_segment_size: 0x1_0000,
            seg_boundary_mask: 0xffff_ffff,
            virt_boundary_mask: vb,
            dma_alignment: 3,
            features: Features::default(),
        }
    }

    fn lens(v: &[BlockRequest]) -> Vec<Vec<u64>> {
        v.iter()
            .map(|r| r.segments.iter().map(|s| s.len).collect())
            .collect()
    }

    #[test]
    fn pieces_end_on_sectors_and_carry_the_rest() {
        // 0x280-byte segments, two per piece: each piece keeps its whole
        // sectors and the rest of its last segment starts the next one.
        let r = BlockRequest::new(
            Op::Write,
            10,
            &[
                (PhysAddr::new(0x10_000), 0x280),
                (PhysAddr::new(0x20_000), 0x280),
                (PhysAddr::new(0x30_000), 0x280),
                (PhysAddr::new(0x40_000), 0x280),
            ],
        );
        let l = lim(2, 1 << 20, 0);
        let p = split(&r, &l).unwrap();
        assert_eq!(
            lens(&p),
            [vec![0x280, 0x180], vec![0x100, 0x100], vec![0x180, 0x280]]
        );
        assert_eq!(p.iter().map(|r| r.sector).collect::<Vec<_>>(), [10, 12, 13]);
        assert_eq!(p[1].segments[0].phys.raw(), 0x20_180);
        assert_eq!(p[2].segments[0].phys.raw(), 0x30_100);
        for x in &p {
            l.check(x).unwrap();
        }
    }

    #[test]
    fn segments_are_cut_at_the_max_segment_size_and_the_boundary() {
        let mut l = lim(128, 1 << 20, 0);
        l.seg_boundary_mask = 0xffff;
        let r = BlockRequest::new(Op::Read, 0, &[(PhysAddr::new(0x1_8000), 0x2_0000)]);
        assert_eq!(
            lens(&split(&r, &l).unwrap()),
            [vec![0x8000, 0x1_0000, 0x8000]]
        );
        // Max bytes: pieces of 0x1_0000.
        let l = lim(128, 0x1_0000, 0);
        assert_eq!(split(&r, &l).unwrap().len(), 2);
    }

    #[test]
    fn a_gap_ends_the_piece_and_a_cut_without_a_whole_sector_is_refused() {
        let l = lim(128, 1 << 20, 0xfff);
        let r = BlockRequest::new(
            Op::Read,
            0,
            &[
                (PhysAddr::new(0x1000), 0x800),
                (PhysAddr::new(0x5000), 0x1000),
            ],
        );
        assert_eq!(lens(&split(&r, &l).unwrap()), [vec![0x800], vec![0x1000]]);
        let r = BlockRequest::new(
            Op::Read,
            0,
            &[
                (PhysAddr::new(0x1000), 0x100),
                (PhysAddr::new(0x5000), 0x100),
            ],
        );
        assert_eq!(
            split(&r, &l).unwrap_err(),
            BlockError::OverLimits {
                index: None,
                violation: LimitViolation::NotSectorMultiple { len: 0x100 }
            }
        );
    }

    /// Random requests (a fixed xorshift seed): the pieces cover exactly
    /// the request's bytes in order, sectors follow on, and each piece
    /// passes the limits it was split at.
    #[test]
    fn random_requests_split_into_pieces_that_fit_and_cover_them() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        let mut split_ok = 0;
        for _ in 0..500 {
            let vb = [0, 0xfff][next(2) as usize];
            let mut l = lim(1 + next(8) as u16, 0x1000 * (1 + next(16)), vb);
            l.max_segment_size = 0x1000 * (1 + next(4));
            l.seg_boundary_mask = [0xffff, 0xffff_ffff][next(2) as usize];
            let n = 1 + next(6);
            let mut segs = Vec::new();
            for i in 0..n {
                let len = 4 * (1 + next(0x800));
                let start = 0x100_0000 * (i + 1) + 4 * next(0x400);
                segs.push((PhysAddr::new(start), len));
            }
            // Round the total up to whole sectors with a last segment.
            let total: u64 = segs.iter().map(|s| s.1).sum();
            let pad = (SECTOR_SIZE - total % SECTOR_SIZE) % SECTOR_SIZE;
            if pad != 0 {
                segs.push((PhysAddr::new(0x7000_0000), pad));
            }
            let r = BlockRequest::new(Op::Write, 7, &segs);
            let pieces = match split(&r, &l) {
                Ok(p) => p,
                // Unaligned segments against a virt boundary or very few
                // segments per piece: a cut that keeps no whole sector.
                Err(e) => {
                    assert!(
                        matches!(
                            e,
                            BlockError::OverLimits {
                                index: None,
                                violation: LimitViolation::NotSectorMultiple { .. }
                            }
                        ),
                        "{e}"
                    );
                    continue;
                }
            };
            split_ok += 1;
            let flat = |v: &[BioVec]| -> Vec<(u64, u64)> {
                let mut out: Vec<(u64, u64)> = Vec::new();
                for b in v {
                    match out.last_mut() {
                        Some(last) if last.0 + last.1 == b.phys.raw() => last.1 += b.len,
                        _ => out.push((b.phys.raw(), b.len)),
                    }
                }
                out
            };
            let all: Vec<BioVec> = pieces.iter().flat_map(|p| p.segments.clone()).collect();
            assert_eq!(flat(&all), flat(&r.segments));
            let mut sector = 7;
            for p in &pieces {
                assert_eq!(p.sector, sector);
                l.check(p)
                    .unwrap_or_else(|e| panic!("{e}: {p:?} under {l:?}"));
                sector += p.len().unwrap() / SECTOR_SIZE;
            }
        }
        assert!(split_ok > 150, "only {split_ok} of 500 split");
    }
}
