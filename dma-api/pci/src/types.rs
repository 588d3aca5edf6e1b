//! Core address and segment types, re-exported from the `scatterlist` crate so
//! that every layer names the same types (see `scatterlist::addr` for why they
//! are defined there).

pub use scatterlist::addr::{BusAddr, DmaAddr, Iova, Pfn, PhysAddr, PAGE_SHIFT, PAGE_SIZE};
pub use scatterlist::kind::{ProviderId, SegKind};
