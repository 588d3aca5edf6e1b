//! Building requests from bios: a bio is back-merged into the request
//! before it when the operation is the same, its first sector follows the
//! request's last, and the merged request still fits the queue limits
//! (block/blk-merge.c `blk_rq_merge_ok`, `bio_attempt_back_merge` →
//! `ll_back_merge_fn`: segment count, size, the virt-boundary gap).
//! Otherwise it starts a new request. Front merges and the elevator are not
//! modelled.

use super::bio::{Bio, BlockRequest, SECTOR_SIZE};
use super::error::BlockError;
use super::limits::QueueLimits;

/// The requests `bios` make, in order. A bio that does not fit the limits
/// on its own is kept as its own request (the caller splits it with
/// [`split`](super::split)); an empty bio is [`BlockError::Empty`].
pub fn merge_bios(bios: &[Bio], lim: &QueueLimits) -> Result<Vec<BlockRequest>, BlockError> {
    let mut out: Vec<BlockRequest> = Vec::new();
    for bio in bios {
        if bio.vecs.is_empty() {
            return Err(BlockError::Empty);
        }
        if let Some(last) = out.last_mut() {
            let end = last.len().map(|l| last.sector + l / SECTOR_SIZE);
            if last.op == bio.op && end == Some(bio.sector) {
                let mut merged = last.clone();
                merged.segments.extend_from_slice(&bio.vecs);
                if lim.check(&merged).is_ok() {
                    *last = merged;
                    continue;
                }
            }
        }
        out.push(BlockRequest::from_bio(bio.clone()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{Features, Op};
    use dma_api::PhysAddr;

    fn lim(max_segments: u16) -> QueueLimits {
        QueueLimits {
            max_hw_bytes: 1 << 20,
            max_segments,
            max_segment_size: u64::from(u32::MAX),
            seg_boundary_mask: 0xffff_ffff,
            virt_boundary_mask: 0xfff,
            dma_alignment: 3,
            features: Features::default(),
        }
    }

    fn bio(op: Op, sector: u64, phys: u64, len: u64) -> Bio {
        Bio::new(op, sector, &[(PhysAddr::new(phys), len)])
    }

    #[test]
    fn contiguous_bios_of_one_op_merge_within_the_limits() {
        let bios = [
            bio(Op::Write, 0, 0x10_000, 0x1000),
            bio(Op::Write, 8, 0x30_000, 0x1000),
            // Not contiguous in sectors.
            bio(Op::Write, 100, 0x40_000, 0x1000),
            // Other op.
            bio(Op::Read, 108, 0x50_000, 0x1000),
            // A gap against the virt boundary.
            bio(Op::Read, 116, 0x60_200, 0x200),
        ];
        let r = merge_bios(&bios, &lim(128)).unwrap();
        let shape: Vec<(u64, usize)> = r.iter().map(|r| (r.sector, r.segments.len())).collect();
        assert_eq!(shape, [(0, 2), (100, 1), (108, 1), (116, 1)]);
        // Max two segments: the third contiguous bio starts a new request.
        let bios = [
            bio(Op::Write, 0, 0x10_000, 0x1000),
            bio(Op::Write, 8, 0x30_000, 0x1000),
            bio(Op::Write, 16, 0x50_000, 0x1000),
        ];
        assert_eq!(merge_bios(&bios, &lim(2)).unwrap().len(), 2);
    }
}
