//! The block layer's DMA side: bios and requests over physical segments,
//! queue limits taken from the device's DMA constraints, splitting at those
//! limits, and request mapping with a **per-segment** P2P check.
//!
//! Linux: block/bio.c, block/blk-merge.c (`bio_attempt_back_merge`,
//! `ll_back_merge_fn`, `bio_split_rw_at`,
//! `bvec_split_segs`, `get_max_segment_size`, `bvec_gap_to_prev`),
//! block/blk-settings.c (`blk_validate_limits`), block/blk-mq-dma.c
//! (`blk_rq_dma_map_iter_start` / `_next`, `blk_can_dma_map_iova`).
//!
//! Where it differs (RFC §5.12): Linux decides whether a request is P2P from
//! its *first* segment (`req_op` P2P flag / `pci_p2pdma_state` of the first
//! bvec) and maps the rest the same way; here every segment is classified
//! from the memory map on its own, a peer segment on a queue without
//! [`Features::pci_p2pdma`] is refused before anything is mapped, and a
//! request mixing RAM and peer segments maps each by its own route.

mod bio;
mod error;
mod import;
mod limits;
mod map;
mod merge;
mod split;

pub use bio::{Bio, BioVec, BlockRequest, Op, SECTOR_SIZE};
pub use error::{BlockError, LimitViolation};
pub use limits::{Features, QueueLimits};
pub use map::{BlockQueue, MapPath, MappedRequest, MappedSegment, Piece};
pub use merge::merge_bios;
pub use split::split;
