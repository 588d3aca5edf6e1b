//! Page-table errors: every variant names the offending values.

use core::fmt;

use scatterlist::{Iova, PhysAddr};

use super::MemError;

/// Why a page-table operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PtError {
    /// The range overlaps an existing translation (generic_pt `-EADDRINUSE`).
    AddressInUse {
        /// First IOVA of the map chunk that collided.
        iova: Iova,
    },
    /// A zero-length map.
    ZeroSize {
        /// IOVA of the request.
        iova: Iova,
    },
    /// IOVA, physical address or size is not aligned to the smallest page size.
    Misaligned {
        /// IOVA of the request.
        iova: Iova,
        /// Physical address of the request.
        paddr: PhysAddr,
        /// Size of the request.
        size: u64,
        /// Smallest supported page size.
        granule: u64,
    },
    /// The IOVA range does not fit the table's input address size.
    IovaOutOfRange {
        /// IOVA of the request.
        iova: Iova,
        /// Size of the request.
        size: u64,
        /// Input address bits of the table.
        ias: u32,
    },
    /// The physical range does not fit the table's output address size.
    PhysOutOfRange {
        /// Physical address of the request.
        paddr: PhysAddr,
        /// Size of the request.
        size: u64,
        /// Output address bits of the table.
        oas: u32,
    },
    /// Neither read nor write permission was requested.
    NoAccess {
        /// IOVA of the request.
        iova: Iova,
    },
    /// No page size the table supports fits this request.
    NoPageSize {
        /// IOVA of the chunk.
        iova: Iova,
        /// Physical address of the chunk.
        paddr: PhysAddr,
    },
    /// A `map_pages` page size that is not one of the table's page sizes
    /// (io-pgtable `-EINVAL`).
    BadPageSize {
        /// IOVA of the request.
        iova: Iova,
        /// The page size asked for.
        pgsize: u64,
        /// The page sizes the table uses.
        bitmap: u64,
    },
    /// A format configuration is invalid.
    BadConfig {
        /// Which parameter.
        what: &'static str,
        /// Its value.
        value: u64,
    },
    /// Table memory could not be allocated or accessed.
    Mem(MemError),
}

impl fmt::Display for PtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AddressInUse { iova } => write!(f, "IOVA {iova} is already mapped"),
            Self::ZeroSize { iova } => write!(f, "zero-length mapping at IOVA {iova}"),
            Self::Misaligned {
                iova,
                paddr,
                size,
                granule,
            } => write!(
                f,
                "IOVA {iova} / phys {paddr} / size {size:#x} not aligned to granule {granule:#x}"
            ),
            Self::IovaOutOfRange { iova, size, ias } => {
                write!(
                    f,
                    "IOVA range {iova}+{size:#x} exceeds the {ias}-bit input address size"
                )
            }
            Self::PhysOutOfRange { paddr, size, oas } => {
                write!(
                    f,
                    "phys range {paddr}+{size:#x} exceeds the {oas}-bit output address size"
                )
            }
            Self::NoAccess { iova } => {
                write!(f, "mapping at IOVA {iova} grants neither read nor write")
            }
            Self::NoPageSize { iova, paddr } => {
                write!(f, "no supported page size fits IOVA {iova} -> phys {paddr}")
            }
            Self::BadPageSize {
                iova,
                pgsize,
                bitmap,
            } => write!(
                f,
                "page size {pgsize:#x} at IOVA {iova} is not one of the table's sizes {bitmap:#x}"
            ),
            Self::BadConfig { what, value } => {
                write!(f, "invalid page-table config: {what} = {value}")
            }
            Self::Mem(e) => write!(f, "table memory: {e}"),
        }
    }
}

impl core::error::Error for PtError {}

impl From<MemError> for PtError {
    fn from(e: MemError) -> Self {
        Self::Mem(e)
    }
}

impl From<PtError> for dma_api::DmaError {
    /// Overmap becomes [`DmaError::IovaInUse`](dma_api::DmaError::IovaInUse);
    /// table-memory exhaustion becomes `OutOfMemory`; every other refusal is
    /// an invalid IOVA range naming the request.
    fn from(e: PtError) -> Self {
        use dma_api::DmaError;
        match e {
            PtError::AddressInUse { iova } => DmaError::IovaInUse { iova },
            PtError::ZeroSize { iova } => DmaError::IovaRangeInvalid { iova, len: 0 },
            PtError::Misaligned { iova, size, .. } | PtError::IovaOutOfRange { iova, size, .. } => {
                DmaError::IovaRangeInvalid { iova, len: size }
            }
            PtError::PhysOutOfRange { paddr, size, .. } => DmaError::NotTranslatable {
                phys: paddr,
                len: size,
            },
            PtError::NoAccess { iova }
            | PtError::NoPageSize { iova, .. }
            | PtError::BadPageSize { iova, .. } => DmaError::IovaRangeInvalid { iova, len: 0 },
            PtError::Mem(MemError::OutOfFrames { bytes }) => DmaError::OutOfMemory { bytes },
            PtError::Mem(_) | PtError::BadConfig { .. } => DmaError::OutOfMemory { bytes: 0 },
        }
    }
}
