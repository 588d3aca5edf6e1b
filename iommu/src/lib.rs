//! IOMMU backends: the IOVA allocator, the radix page-table engine and its
//! formats, an independent hardware walker, domains and IOTLB invalidation.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod iova;

pub use iova::{CachedIovaDomain, DeviceIovaPolicy, IovaDomain, IovaRange};
