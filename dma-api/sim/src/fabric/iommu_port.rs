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
use dma_pci::types::{DmaAddr, PhysAddr, PAGE_SIZE};

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

    /// Translates the longest prefix of `[addr, addr + len)` (`len >= 1`, not
    /// wrapping) that one [`RcRun`] describes: every page of it translated
    /// alike (all passed through, or all onto physically contiguous memory
    /// with the access allowed), as [`translate`](Self::translate) would
    /// answer each of its requests. The run holds at least the first page's
    /// bytes; the first page's fault is returned, a later page's fault (or
    /// a discontiguity) only ends the run, and the fabric asks again there.
    ///
    /// The fabric routes and copies a run at once (one request per IOTLB
    /// lookup instead of one per TLP). The default asks [`translate`](Self::translate)
    /// page by page; an implementation may take its locks once for the run.
    fn translate_run(
        &self,
        requester: Bdf,
        addr: DmaAddr,
        len: u64,
        write: bool,
    ) -> Result<RcRun, RcFault> {
        let first = len.min(PAGE_SIZE - addr.page_offset()).max(1);
        let phys = self.translate(requester, addr, first, write)?;
        let mut run = RcRun { phys, len: first };
        while run.len < len {
            // Cannot wrap: `[addr, addr + len)` does not.
            let at = DmaAddr::new(addr.raw() + run.len);
            let n = (len - run.len).min(PAGE_SIZE);
            match self.translate(requester, at, n, write) {
                Ok(p) if p == run.phys_at(run.len) => run.len += n,
                _ => break,
            }
        }
        Ok(run)
    }
}

/// A stretch of DMA addresses the IOMMU translates alike
/// ([`RootComplexIommu::translate_run`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RcRun {
    /// The physical address of the first byte, or `None` when the
    /// requester is not translated (the addresses are bus addresses).
    pub phys: Option<PhysAddr>,
    /// Bytes in the run.
    pub len: u64,
}

impl RcRun {
    /// What byte `off` of the run translates to (`None`: untranslated, or
    /// past the top of the address space).
    pub fn phys_at(&self, off: u64) -> Option<PhysAddr> {
        self.phys.and_then(|p| p.checked_add(off))
    }
}
