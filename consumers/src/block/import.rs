//! Requests over an imported buffer (dma-buf): the data has no pages, only
//! the attachment's DMA-only mapping, so the block layer holds the
//! *DMA segments* to the queue limits — the same rules as for a request's
//! own segments, on the addresses the device will use. Linux has no block
//! path for a dma-buf at all (only RDMA's umem takes one); RFC §5.12.

use super::bio::SECTOR_SIZE;
use super::error::{BlockError, LimitViolation};
use super::map::BlockQueue;
use dma_api::Segment;

impl BlockQueue {
    /// Checks an imported buffer's DMA segments against the limits: each
    /// aligned, no virt-boundary gap, at most `max_segments` segments and
    /// `max_hw_sectors` bytes, whole sectors. The error names the segment.
    pub fn check_dma_segments(&self, segs: &[Segment]) -> Result<(), BlockError> {
        let lim = self.limits();
        if segs.is_empty() {
            return Err(BlockError::Empty);
        }
        let (mut total, mut count) = (0u64, 0u64);
        for (i, s) in segs.iter().enumerate() {
            let (start, len) = (s.dma.raw(), s.len);
            lim.check_segment(i, start, len)?;
            let over = |violation| BlockError::OverLimits {
                index: Some(i),
                violation,
            };
            if i > 0 {
                let prev = &segs[i - 1];
                if lim.gap(prev.dma.raw() + prev.len, start) {
                    return Err(over(LimitViolation::VirtGap {
                        virt_boundary_mask: lim.virt_boundary_mask,
                    }));
                }
            }
            count += lim.segments_of(start, len);
            if count > u64::from(lim.max_segments) {
                return Err(over(LimitViolation::TooManySegments {
                    max_segments: lim.max_segments,
                }));
            }
            total = total.saturating_add(len);
            if total > lim.max_hw_bytes {
                return Err(over(LimitViolation::TooLarge {
                    max_hw_bytes: lim.max_hw_bytes,
                }));
            }
        }
        if total % SECTOR_SIZE != 0 {
            return Err(BlockError::OverLimits {
                index: None,
                violation: LimitViolation::NotSectorMultiple { len: total },
            });
        }
        Ok(())
    }
}
