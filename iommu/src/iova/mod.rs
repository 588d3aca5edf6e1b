//! The IOVA allocator: where in an IOMMU domain a mapping goes.
//!
//! Semantics follow drivers/iommu/iova.c and the IOVA parts of
//! drivers/iommu/dma-iommu.c:
//! * [`IovaDomain`]: granule frames from `start_pfn >= 1`, top-down allocation
//!   below an inclusive limit, optional size alignment, reservations, the
//!   `max32_alloc_size` failing-size memo;
//! * [`CachedIovaDomain`]: the per-CPU magazine cache (`alloc_iova_fast` /
//!   `free_iova_fast`), thread-safe;
//! * [`DeviceIovaPolicy`]: dma-iommu's 32-bit-first rule with the sticky
//!   per-device fallback;
//! * reservation helpers for host-bridge windows, `dma-ranges` gaps and the
//!   x86 MSI window.
//!
//! The difference that matters: Linux finds a gap by walking its rbtree of
//! allocations from a cached node, O(n) when fragmented. Here the free space
//! is a treap of free extents in which every node also stores, per alignment
//! order `k < 8`, the largest `2^k`-aligned size that fits anywhere in its
//! subtree; a right-first descent that skips subtrees too small finds the
//! highest suitably aligned fit below the limit in O(log n) (details in
//! `iova/tree.rs`). Linux's cached-node hint
//! can skip gaps above the hint (alignment padding), so Linux sometimes picks
//! a lower address than the highest fit; this allocator always picks the
//! highest fit, which is what the kernel's top-down rule intends.
//!
//! The core is `no_std + alloc`; `std` adds per-thread slot selection.

extern crate alloc;

mod domain;
mod lock;
mod magazine;
pub mod model;
mod policy;
mod range;
mod rcache;
mod reserve;
mod tree;

pub use domain::{FreeSpace, IovaDomain, MIN_GRANULE};
pub use magazine::IOVA_MAG_SIZE;
pub use policy::{DeviceIovaPolicy, IOVA_32BIT_LIMIT};
pub use range::IovaRange;
pub use rcache::{CachedIovaDomain, RcacheStats, DEFAULT_MAX_DEPOT, IOVA_RANGE_CACHE_MAX_SIZE};
pub use reserve::{X86_MSI_WINDOW_FIRST, X86_MSI_WINDOW_LAST};
