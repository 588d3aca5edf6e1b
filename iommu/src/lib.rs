//! IOMMU backends: the IOVA allocator, the radix page-table engine and its
//! formats, an independent hardware walker, domains and IOTLB invalidation,
//! and the IOMMU DMA backend a `DmaDevice` maps through.
//!
//! Who depends on it: the simulator's machine assembly (which builds
//! domains over its RAM and lets the fabric translate through
//! [`walker`]) and the CLI; drivers see it only as a
//! [`DmaBackend`](dma_api::port::DmaBackend) behind their `DmaDevice`. It
//! depends on `dma-api` and `scatterlist`, never on the simulator.
//!
//! The IOVA allocator (`iova`), the page-table engine (`pgtable`) and the
//! hardware walker (`walker`) are `no_std + alloc`: build with
//! `default-features = false` to use them in a kernel (tables then live in a
//! [`pgtable::BTreeMem`] or the kernel's own [`pgtable::FrameStore`]). The
//! domains and the DMA backend keep their tables in a [`SharedMem`] the
//! caller passes in (the simulator passes its RAM) and need `std`.
//!
//! # Example: allocate an IOVA, map it, walk it like hardware
//!
//! ```
//! use dma_iommu::pgtable::{BTreeMem, PageTable, Prot, VtdSs};
//! use dma_iommu::{walker, IovaDomain, Iova, PhysAddr};
//!
//! // 4 KiB granule, IOVA 0 never handed out (drivers/iommu/iova.c rules).
//! let mut iovas = IovaDomain::new(4096, Iova::new(4096))?;
//! let range = iovas.alloc(4, Iova::new(0xffff_ffff), true)?; // 16 KiB below 4 GiB
//! // A VT-d second-stage table (4 levels) in a no_std in-memory store.
//! let mut pt = PageTable::with_mem(VtdSs::new(4)?, BTreeMem::new())?;
//! pt.map(range.start(), PhysAddr::new(0x1234_0000), 0x4000, Prot::READ | Prot::WRITE)?;
//! // The walker reads the entries the table wrote, as an IOMMU would.
//! let w = walker::walk(&pt.hw_regs(), pt.mem(), Iova::new(range.start().raw() + 0x2010))?;
//! assert_eq!(w.pa, PhysAddr::new(0x1234_2010));
//! assert!(w.read && w.write);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
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

#[cfg(feature = "std")]
pub use domain::{
    DomainError, DomainId, DomainType, FlushToken, FqMode, GroupId, Iommu, IommuFault, IovaSource,
    QueueOutcome, SimClock, SimInstant,
};
pub use pgtable::{
    AmdV1, AnyFormat, ArmLpae, ArmStage, Gather, Granule, PageTable, Prot, PtError, PtFormat, VtdSs,
};
#[cfg(feature = "std")]
pub use pgtable::{PhysMem, SharedMem, SharedTableMem};
pub use scatterlist::{Iova, PhysAddr};
pub use walker::{Access, Fault, HwRegs};

pub mod iova;

pub use iova::{CachedIovaDomain, DeviceIovaPolicy, IovaDomain, IovaRange};

#[cfg(feature = "std")]
pub use dma::{DmaDomain, IommuDevice, IommuDmaBackend, SharedIommu};
