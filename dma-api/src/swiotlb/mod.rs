//! SWIOTLB: the bounce-buffer pool of the direct mapping path.
//!
//! Semantics of kernel/dma/swiotlb.c (`swiotlb_tbl_map_single`,
//! `swiotlb_bounce`, `swiotlb_tbl_unmap_single`, `swiotlb_sync_single_for_*`,
//! `swiotlb_area_find_slots`, `swiotlb_max_mapping_size`), over simulated RAM
//! (through the [`CpuMemory`](crate::mem::CpuMemory) port) so every copy moves real bytes:
//!
//! * the pool is cut into 2 KiB slots ([`IO_TLB_SIZE`], `IO_TLB_SHIFT` 11); one
//!   mapping takes contiguous slots inside one [`IO_TLB_SEGSIZE`] (128-slot)
//!   segment;
//! * the device's minimum-alignment mask is honoured: the in-slot offset is
//!   `orig & min_align_mask & (IO_TLB_SIZE - 1)`, and the slot is chosen so the
//!   bits of the mask above the slot size match too (plus page alignment for
//!   mappings of a page or more), so `bounce & mask == orig & mask`;
//! * map copies original → bounce for **every** direction (Linux does since
//!   5.19 so a partial device write cannot expose stale pool data);
//!   sync-for-device copies original → bounce for `ToDevice`/`Bidirectional`;
//!   sync-for-CPU and unmap copy bounce → original for
//!   `FromDevice`/`Bidirectional` (unmap not with `SKIP_CPU_SYNC`).
//!
//! Deliberate difference: a sync or unmap that is not wholly inside a live
//! mapping is a typed [`DmaError::NotMapped`](crate::DmaError::NotMapped) (Linux WARNs, then clips or
//! ignores it). Sub-range syncs are resolved through the mapping's head slot,
//! so any sub-range copies the right bytes.

mod pool;

pub use pool::{Swiotlb, SwiotlbStats};

use crate::types::DmaAddr;

/// The segment boundary a bounce must not span, in the mapping device's DMA
/// address space: `mask` is `dma_get_seg_boundary` (`u64::MAX`: none) and
/// `pool_dma` the DMA address of the pool's first byte for that device
/// (Linux `phys_to_dma_unencrypted(dev, pool->start)`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SegBoundary {
    /// The segment boundary mask (`2^n - 1`).
    pub mask: u64,
    /// Where the pool starts as the device addresses it.
    pub pool_dma: DmaAddr,
}

impl SegBoundary {
    /// No boundary.
    pub const NONE: Self = Self {
        mask: u64::MAX,
        pool_dma: DmaAddr::new(0),
    };
}

/// log2 of the slot size (`IO_TLB_SHIFT`).
pub const IO_TLB_SHIFT: u32 = 11;
/// Slot size in bytes (`IO_TLB_SIZE`, 2 KiB).
pub const IO_TLB_SIZE: u64 = 1 << IO_TLB_SHIFT;
/// Most contiguous slots one mapping may use (`IO_TLB_SEGSIZE`).
pub const IO_TLB_SEGSIZE: u64 = 128;

/// kernel/dma/swiotlb.c `swiotlb_align_offset`: the low bits of the original
/// address kept in the bounce address.
#[inline]
pub const fn align_offset(min_align_mask: u64, addr: u64) -> u64 {
    addr & min_align_mask & (IO_TLB_SIZE - 1)
}

/// kernel/dma/swiotlb.c `swiotlb_max_mapping_size`: 128 slots minus the
/// minimum alignment rounded up to a slot.
pub const fn max_mapping_size(min_align_mask: u64) -> u64 {
    let min_align = if min_align_mask == 0 {
        0
    } else {
        // roundup(mask, IO_TLB_SIZE); a mask near u64::MAX saturates.
        let r = min_align_mask.saturating_add(IO_TLB_SIZE - 1) / IO_TLB_SIZE;
        r.saturating_mul(IO_TLB_SIZE)
    };
    (IO_TLB_SIZE * IO_TLB_SEGSIZE).saturating_sub(min_align)
}

#[cfg(test)]
mod tests;
