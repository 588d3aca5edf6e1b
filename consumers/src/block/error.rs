//! The block layer's typed errors.

use core::fmt;
use dma_api::{DmaError, PhysAddr, ProviderId};

/// A queue limit a request breaks.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum LimitViolation {
    /// A segment of zero bytes.
    ZeroLength,
    /// A segment's start or length is off the queue's DMA alignment.
    Unaligned {
        /// The queue's `dma_alignment` mask.
        dma_alignment: u64,
    },
    /// A gap against the virt boundary before this segment.
    VirtGap {
        /// The queue's virt boundary mask.
        virt_boundary_mask: u64,
    },
    /// The request needs more DMA segments than the queue takes.
    TooManySegments {
        /// The queue's `max_segments`.
        max_segments: u16,
    },
    /// More bytes than one request carries.
    TooLarge {
        /// The queue's `max_hw_sectors` in bytes.
        max_hw_bytes: u64,
    },
    /// The total is not a whole number of sectors.
    NotSectorMultiple {
        /// The total.
        len: u64,
    },
}

impl fmt::Display for LimitViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroLength => f.write_str("is empty"),
            Self::Unaligned { dma_alignment } => {
                write!(f, "is off the DMA alignment mask {dma_alignment:#x}")
            }
            Self::VirtGap { virt_boundary_mask } => {
                write!(
                    f,
                    "leaves a gap against virt boundary {virt_boundary_mask:#x}"
                )
            }
            Self::TooManySegments { max_segments } => {
                write!(f, "needs more than {max_segments} segments")
            }
            Self::TooLarge { max_hw_bytes } => write!(f, "exceeds {max_hw_bytes:#x} bytes"),
            Self::NotSectorMultiple { len } => write!(f, "totals {len:#x}, not whole sectors"),
        }
    }
}

/// Why a request was not mapped. Nothing stays mapped after any of them.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum BlockError {
    /// A request without segments.
    Empty,
    /// A driver gave an invalid limit.
    InvalidLimit {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// The request breaks a queue limit (at segment `index` when it is one
    /// segment's fault).
    OverLimits {
        /// The offending segment.
        index: Option<usize>,
        /// The limit.
        violation: LimitViolation,
    },
    /// Segment `index` is peer memory and the queue lacks
    /// [`Features::pci_p2pdma`](super::Features::pci_p2pdma). Checked for
    /// every segment before anything is mapped.
    PeerOnNonP2pQueue {
        /// The segment's index in the request.
        index: usize,
        /// The peer piece's start.
        phys: PhysAddr,
        /// Its length.
        len: u64,
        /// Who owns it.
        provider: ProviderId,
    },
    /// The DMA layer refused (classification, a peer route the oracle or
    /// the arch refuses, an IOMMU error); the error says why.
    Dma(DmaError),
}

impl From<DmaError> for BlockError {
    fn from(e: DmaError) -> Self {
        BlockError::Dma(e)
    }
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("request has no segments"),
            Self::InvalidLimit { field, value } => write!(f, "invalid queue limit {field} = {value:#x}"),
            Self::OverLimits {
                index: Some(i),
                violation,
            } => write!(f, "segment {i} {violation}"),
            Self::OverLimits {
                index: None,
                violation,
            } => write!(f, "request {violation}"),
            Self::PeerOnNonP2pQueue {
                index,
                phys,
                len,
                provider,
            } => write!(
                f,
                "segment {index} ({phys} + {len:#x}) is peer memory of provider {provider:?} and the queue has no PCI P2PDMA feature"
            ),
            Self::Dma(e) => write!(f, "DMA: {e}"),
        }
    }
}

impl std::error::Error for BlockError {}
