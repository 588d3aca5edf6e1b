//! The radix page-table engine and its formats.
//!
//! One engine ([`PageTable`]) does every walk, map, unmap and lookup; each
//! hardware format ([`VtdSs`], [`AmdV1`], [`ArmLpae`]) only describes its
//! geometry and how one entry is encoded. This mirrors Linux's generic_pt
//! (drivers/iommu/generic_pt/: `iommu_pt.h` is the engine, `fmt/*.h` the
//! formats) and its semantics: best page size from alignment, `-EADDRINUSE` on
//! overmap, whole-entry removal on partial unmap of a large entry, and table
//! pages released only through the IOTLB gather.
//!
//! The engine is `no_std + alloc`: it reaches memory only through
//! [`TableMem`] / [`FrameStore`]. With `std` the default is the shared
//! simulated RAM (`SharedMem`), held as `SharedTableMem` so that entry loads
//! and stores skip the RAM lock; without `std`, [`BTreeMem`] (or a kernel's
//! own [`FrameStore`]) holds the tables.
//!
//! Levels are numbered as in generic_pt: level 0 holds the smallest (granule)
//! pages and the top level is `levels - 1`.

mod amdv1;
mod arm_lpae;
mod btree_mem;
mod engine;
mod error;
mod format;
mod frame_pool;
mod map_pages;
mod one_page;
mod table_mem;
mod vtdss;

pub use crate::walker::WalkMem;
pub use amdv1::AmdV1;
pub use arm_lpae::{ArmLpae, ArmStage, Granule};
pub use btree_mem::BTreeMem;
use dma_api::mem::MemError;
#[cfg(feature = "std")]
mod phys_mem;
#[cfg(feature = "std")]
mod pool_pages;
#[cfg(feature = "std")]
mod shared_table_mem;
pub use engine::{Gather, PageTable, PtStats};
pub use error::PtError;
pub use format::{AnyFormat, LeafBits, Prot, PtFormat, Pte};
pub use frame_pool::FramePool;
#[cfg(feature = "std")]
pub use phys_mem::{PfnHasher, PhysMem, SharedMem};
#[cfg(feature = "std")]
pub use shared_table_mem::SharedTableMem;
pub use table_mem::{FrameStore, TableMem};
pub use vtdss::VtdSs;

/// `2^lg2 - 1` without overflow for `lg2 >= 64`.
#[inline]
pub(crate) const fn mask(lg2: u32) -> u64 {
    if lg2 >= 64 {
        u64::MAX
    } else {
        (1u64 << lg2) - 1
    }
}

/// `x >> n` that yields 0 for `n >= 64`.
#[inline]
pub(crate) const fn shr(x: u64, n: u32) -> u64 {
    if n >= 64 {
        0
    } else {
        x >> n
    }
}

/// Largest page size (log2) in `bitmap` that `va` and `oa` are both aligned to
/// and that fits in `[va, last]` — generic_pt `pt_compute_best_pgsize`.
pub fn best_pgsize(bitmap: u64, va: u64, last: u64, oa: u64) -> Option<u32> {
    let len_m1 = last.checked_sub(va)?;
    let align = va | oa;
    // sizes s with s | align  (s <= lowest set bit of align)
    let low = align & align.wrapping_neg();
    let align_mask = if align == 0 {
        u64::MAX
    } else {
        low | (low - 1)
    };
    // sizes s with s <= len (len = len_m1 + 1)
    let len_mask = match len_m1.checked_add(1) {
        None => u64::MAX,
        Some(len) => mask(64 - len.leading_zeros()),
    };
    let cand = bitmap & align_mask & len_mask;
    if cand == 0 {
        None
    } else {
        Some(63 - cand.leading_zeros())
    }
}

#[cfg(test)]
mod tests {
    use super::best_pgsize;
    const B: u64 = (1 << 12) | (1 << 21) | (1 << 30);

    #[test]
    fn best_pgsize_matches_alignment_and_length() {
        assert_eq!(best_pgsize(B, 0, (1 << 30) - 1, 0), Some(30));
        assert_eq!(best_pgsize(B, 0, (1 << 30) - 2, 0), Some(21));
        assert_eq!(best_pgsize(B, 1 << 21, (1 << 31) - 1, 1 << 21), Some(21));
        assert_eq!(best_pgsize(B, 1 << 30, (1 << 31) - 1, 1 << 21), Some(21));
        assert_eq!(best_pgsize(B, 0x1000, 0x1fff, 0x5000), Some(12));
        assert_eq!(best_pgsize(B, 0x800, 0xfff, 0), None);
        assert_eq!(best_pgsize(B, 0, u64::MAX, 0), Some(30));
    }
}
