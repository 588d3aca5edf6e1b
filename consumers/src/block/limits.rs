//! Queue limits (Linux `struct queue_limits`, include/linux/blkdev.h) taken
//! from the device's DMA constraints, and the checks a request must pass to
//! be mapped whole.
//!
//! block/blk-settings.c `blk_validate_limits` rules kept here: a queue with a
//! virt boundary has no max segment size of its own (it becomes
//! `UINT_MAX`); the segment boundary and max segment size come from the DMA
//! device (`dma_get_seg_boundary`, `dma_get_max_seg_size`, which SCSI and
//! NVMe copy into the limits).

use super::bio::{BlockRequest, SECTOR_SIZE};
use super::error::{BlockError, LimitViolation};
use dma_api::{DmaDevice, PAGE_SIZE};

/// Queue features that decide what memory a request may carry (Linux
/// `BLK_FEAT_*` in `queue_limits.features`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Features {
    /// `BLK_FEAT_PCI_P2PDMA`: the driver maps peer memory. Without it, a
    /// request with a peer segment anywhere is refused.
    pub pci_p2pdma: bool,
}

/// The limits a request is split at and checked against.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct QueueLimits {
    /// `max_hw_sectors`, in bytes: the most one request carries.
    pub max_hw_bytes: u64,
    /// `max_segments`: the most DMA segments one request may need.
    pub max_segments: u16,
    /// `max_segment_size`.
    pub max_segment_size: u64,
    /// `seg_boundary_mask`: no segment crosses a multiple of mask + 1.
    pub seg_boundary_mask: u64,
    /// `virt_boundary_mask`: every segment but the first starts on it, every
    /// one but the last ends on it (0: none).
    pub virt_boundary_mask: u64,
    /// `dma_alignment`: every segment's start and length are multiples of
    /// this mask + 1.
    pub dma_alignment: u64,
    /// The queue's features.
    pub features: Features,
}

impl QueueLimits {
    /// The limits of a queue over `dev`: segment size, boundary and virt
    /// boundary from [`DmaDevice::constraints`], the rest from the driver
    /// (what `blk_mq_alloc_disk` is handed). Invalid driver values are
    /// [`BlockError::InvalidLimit`].
    pub fn from_device(
        dev: &DmaDevice,
        max_segments: u16,
        max_hw_bytes: u64,
        dma_alignment: u64,
        features: Features,
    ) -> Result<Self, BlockError> {
        let c = dev.constraints();
        let low_ones = |v: u64| v & v.wrapping_add(1) == 0;
        if max_segments == 0 {
            return Err(BlockError::InvalidLimit {
                field: "max_segments",
                value: 0,
            });
        }
        if max_hw_bytes < PAGE_SIZE || !max_hw_bytes.is_multiple_of(SECTOR_SIZE) {
            return Err(BlockError::InvalidLimit {
                field: "max_hw_bytes",
                value: max_hw_bytes,
            });
        }
        if !low_ones(dma_alignment) || dma_alignment >= PAGE_SIZE {
            return Err(BlockError::InvalidLimit {
                field: "dma_alignment",
                value: dma_alignment,
            });
        }
        let max_segment_size = if c.virt_boundary_mask != 0 {
            u64::from(u32::MAX)
        } else {
            u64::from(c.max_seg_size)
        };
        Ok(Self {
            max_hw_bytes,
            max_segments,
            max_segment_size,
            seg_boundary_mask: c.seg_boundary_mask,
            virt_boundary_mask: c.virt_boundary_mask,
            dma_alignment,
            features,
        })
    }

    /// block/blk-merge.c `get_max_segment_size`: the longest segment that
    /// may start at `phys` (at most `len`): not past the segment boundary,
    /// not longer than the max segment size.
    pub fn max_segment_at(&self, phys: u64, len: u64) -> u64 {
        let to_boundary = self
            .seg_boundary_mask
            .saturating_sub(phys & self.seg_boundary_mask)
            .saturating_add(1);
        len.min(to_boundary).min(self.max_segment_size)
    }

    /// The DMA segments `[phys, phys + len)` needs (block/blk-merge.c
    /// `bvec_split_segs`: cut at [`QueueLimits::max_segment_at`]).
    pub fn segments_of(&self, phys: u64, len: u64) -> u64 {
        let (mut at, mut left, mut n) = (phys, len, 0u64);
        while left > 0 {
            let take = self.max_segment_at(at, left).max(1);
            at = at.saturating_add(take);
            left -= take;
            n += 1;
        }
        n
    }

    /// block/blk-merge.c `bvec_gap_to_prev`: true if a segment ending at
    /// `prev_end` cannot be followed by one starting at `next` in one
    /// request.
    pub fn gap(&self, prev_end: u64, next: u64) -> bool {
        self.virt_boundary_mask != 0 && (prev_end | next) & self.virt_boundary_mask != 0
    }

    /// Checks a segment on its own: non-empty and aligned to the queue's DMA
    /// alignment.
    pub(super) fn check_segment(
        &self,
        index: usize,
        phys: u64,
        len: u64,
    ) -> Result<(), BlockError> {
        if len == 0 {
            return Err(BlockError::OverLimits {
                index: Some(index),
                violation: LimitViolation::ZeroLength,
            });
        }
        if (phys | len) & self.dma_alignment != 0 {
            return Err(BlockError::OverLimits {
                index: Some(index),
                violation: LimitViolation::Unaligned {
                    dma_alignment: self.dma_alignment,
                },
            });
        }
        Ok(())
    }

    /// Checks that `req` may be mapped whole (what a split produced, or a
    /// passthrough request, which Linux refuses over the limits too:
    /// block/blk-map.c `blk_rq_append_bio` → `ll_back_merge_fn`). The error
    /// names the first offending segment.
    pub fn check(&self, req: &BlockRequest) -> Result<(), BlockError> {
        if req.is_empty() {
            return Err(BlockError::Empty);
        }
        let mut total = 0u64;
        let mut segs = 0u64;
        let mut prev_end: Option<u64> = None;
        for (i, v) in req.segments.iter().enumerate() {
            let (p, l) = (v.phys.raw(), v.len);
            self.check_segment(i, p, l)?;
            if let Some(e) = prev_end {
                if self.gap(e, p) {
                    return Err(BlockError::OverLimits {
                        index: Some(i),
                        violation: LimitViolation::VirtGap {
                            virt_boundary_mask: self.virt_boundary_mask,
                        },
                    });
                }
            }
            prev_end = Some(p.saturating_add(l));
            segs += self.segments_of(p, l);
            if segs > u64::from(self.max_segments) {
                return Err(BlockError::OverLimits {
                    index: Some(i),
                    violation: LimitViolation::TooManySegments {
                        max_segments: self.max_segments,
                    },
                });
            }
            total = total.checked_add(l).ok_or(BlockError::OverLimits {
                index: Some(i),
                violation: LimitViolation::TooLarge {
                    max_hw_bytes: self.max_hw_bytes,
                },
            })?;
            if total > self.max_hw_bytes {
                return Err(BlockError::OverLimits {
                    index: Some(i),
                    violation: LimitViolation::TooLarge {
                        max_hw_bytes: self.max_hw_bytes,
                    },
                });
            }
        }
        if !total.is_multiple_of(SECTOR_SIZE) {
            return Err(BlockError::OverLimits {
                index: None,
                violation: LimitViolation::NotSectorMultiple { len: total },
            });
        }
        Ok(())
    }
}
