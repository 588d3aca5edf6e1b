//! IOMMU backends: the IOVA allocator, the radix page-table engine and its
//! formats, an independent hardware walker, domains and IOTLB invalidation.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod dma;
pub mod domain;
pub mod mem;
pub mod pgtable;
pub mod rc;
pub mod walker;

pub use domain::{
    DomainError, DomainId, DomainType, FlushToken, FqMode, GroupId, Iommu, IommuFault, IovaSource,
    QueueOutcome, SimClock, SimInstant,
};
pub use mem::{MemError, PhysMem};
pub use pgtable::{
    AmdV1, AnyFormat, ArmLpae, ArmStage, Gather, Granule, PageTable, Prot, PtError, PtFormat, VtdSs,
};
pub use scatterlist::{Iova, PhysAddr};
pub use walker::{Access, Fault, HwRegs};

pub mod iova;

pub use iova::{CachedIovaDomain, DeviceIovaPolicy, IovaDomain, IovaRange};

pub use dma::{DmaDomain, IommuDevice, IommuDmaBackend, SharedIommu};
pub use rc::RcIommu;
