//! How the fabric consults the IOMMU at the root complex.
//!
//! The fabric (dma-api) routes a device's request up to the root complex; if
//! the requester's group is attached to a translating domain, the IOMMU (the
//! hardware walker + IOTLB in `dma-iommu`) turns the DMA address into a
//! physical address or a fault. Keeping this a trait keeps the dependency
//! arrow pointing one way.

use alloc::string::String;
use core::fmt;
use dma_pci::bdf::Bdf;
use dma_pci::types::{DmaAddr, PhysAddr};

/// Why the IOMMU refused a request.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum RcFaultReason {
    /// No translation for the address.
    NotPresent,
    /// Translation exists but forbids this access (read or write).
    Permission,
    /// The requester's domain blocks all DMA.
    Blocked,
    /// The IOMMU has no context entry for the requester (a function it was
    /// never told about, such as one hot-added without attaching it to its
    /// group's domain): hardware blocks the request (VT-d fault reason 2,
    /// "present bit in context entry is clear").
    NoContext,
    /// Anything else, described.
    Other(String),
}

/// A fault raised by the IOMMU for one request.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RcFault {
    /// The device that issued the request.
    pub requester: Bdf,
    /// The DMA address it used.
    pub addr: DmaAddr,
    /// Whether it was a write.
    pub write: bool,
    /// Why it faulted.
    pub reason: RcFaultReason,
}

impl fmt::Display for RcFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IOMMU fault: {} {} at {}: {:?}",
            self.requester,
            if self.write { "write" } else { "read" },
            self.addr,
            self.reason
        )
    }
}

/// The IOMMU as seen from the root complex.
pub trait RootComplexIommu: Send + Sync {
    /// Translates one request. `Ok(None)` means the requester is not
    /// translated (an identity/passthrough domain): the address is a bus
    /// address. A requester the IOMMU does not know is not passed through
    /// but faults ([`RcFaultReason::NoContext`]). `len` does not cross a page
    /// boundary.
    fn translate(
        &self,
        requester: Bdf,
        addr: DmaAddr,
        len: u64,
        write: bool,
    ) -> Result<Option<PhysAddr>, RcFault>;
}
