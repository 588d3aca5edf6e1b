//! Simulated physical memory. It lives in `dma-api` (the fabric and bounce
//! buffers share it with the page tables); re-exported here for the IOMMU code.

pub use dma_api::mem::{MemError, PfnHasher, PhysMem, SharedMem};
