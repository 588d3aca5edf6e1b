//! IOMMU backends: the IOVA allocator, the radix page-table engine and its
//! formats, an independent hardware walker, domains and IOTLB invalidation.
//!
//! The IOVA allocator (`iova`), the page-table engine (`pgtable`) and the
//! hardware walker (`walker`) are `no_std + alloc`: build with
//! `default-features = false` to use them in a kernel (tables then live in a
//! [`pgtable::BTreeMem`] or the kernel's own [`pgtable::FrameStore`]). The
//! domains and DMA backend live on simulated RAM and need `std`.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

#[cfg(feature = "std")]
pub mod dma;
#[cfg(feature = "std")]
pub mod domain;
pub mod pgtable;
pub mod walker;

pub use dma_api::MemError;
#[cfg(feature = "std")]
pub use domain::{
    DomainError, DomainId, DomainType, FlushToken, FqMode, GroupId, Iommu, IommuFault, IovaSource,
    QueueOutcome, SimClock, SimInstant,
};
pub use pgtable::{
    AmdV1, AnyFormat, ArmLpae, ArmStage, Gather, Granule, PageTable, Prot, PtError, PtFormat, VtdSs,
};
#[cfg(feature = "std")]
pub use pgtable::{PhysMem, SharedMem};
pub use scatterlist::{Iova, PhysAddr};
pub use walker::{Access, Fault, HwRegs};

pub mod iova;

pub use iova::{CachedIovaDomain, DeviceIovaPolicy, IovaDomain, IovaRange};

#[cfg(feature = "std")]
pub use dma::{DmaDomain, IommuDevice, IommuDmaBackend, SharedIommu};
