//! The driver's typed errors.

use super::prp::PrpRule;
use crate::block::BlockError;
use core::fmt;
use dma_api::share::ShareError;
use dma_api::{Bdf, DmaAddr, DmaError, PhysAddr};

/// Why a request was not submitted (nothing stays mapped or allocated) or
/// did not complete cleanly.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum NvmeError {
    /// A request without data buffers.
    EmptyRequest,
    /// A buffer whose start or length is not dword aligned (the queue's
    /// `dma_alignment = 3`, drivers/nvme/host/core.c `nvme_set_ctrl_limits`).
    Unaligned {
        /// The buffer's index in the request.
        index: usize,
        /// Its start.
        phys: PhysAddr,
        /// Its length.
        len: u64,
    },
    /// More data than one command carries.
    TooLarge {
        /// Bytes asked for (`None`: the sum overflows).
        len: Option<u64>,
        /// The most a command may carry.
        max: u64,
    },
    /// The DMA layer refused (mapping, a constraint violation naming the
    /// entry, a PRP list page allocation); the error says why.
    Dma(DmaError),
    /// A submission queue depth outside 2..=4096.
    BadQueueDepth {
        /// The depth asked for.
        depth: u16,
    },
    /// A command whose length is not 1..=65536 whole blocks (NLB cannot
    /// say it).
    BadCommandLength {
        /// Its length.
        len: u64,
    },
    /// A DMA segment one SGL cannot describe.
    SglInvalid {
        /// The DMA segment's index.
        segment: usize,
        /// The rule it breaks.
        rule: crate::nvme::sgl::SglRule,
    },
    /// The block layer refused the request (limits, a peer segment on a
    /// queue without the P2P feature, classification).
    Block(BlockError),
    /// A block queue of another device was handed to this controller.
    ForeignQueue {
        /// The queue's device.
        queue: Bdf,
    },
    /// The sharing protocol refused (attach, map, unmap of an imported
    /// buffer); the error says why.
    Share(ShareError),
    /// A DMA segment PRPs cannot describe (Linux `nvme_pci_setup_prps`:
    /// "Invalid SGL for payload", `BLK_STS_IOERR`). Found after mapping,
    /// before submission; the request was unmapped.
    PrpInvalid {
        /// The DMA segment's index.
        segment: usize,
        /// Its DMA address.
        dma: DmaAddr,
        /// Its length.
        len: u64,
        /// The rule it breaks.
        rule: PrpRule,
    },
}

impl From<DmaError> for NvmeError {
    fn from(e: DmaError) -> Self {
        NvmeError::Dma(e)
    }
}

impl From<BlockError> for NvmeError {
    fn from(e: BlockError) -> Self {
        match e {
            BlockError::Dma(d) => NvmeError::Dma(d),
            e => NvmeError::Block(e),
        }
    }
}

impl From<ShareError> for NvmeError {
    fn from(e: ShareError) -> Self {
        NvmeError::Share(e)
    }
}

impl fmt::Display for NvmeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NvmeError::EmptyRequest => f.write_str("request has no data buffers"),
            NvmeError::Unaligned { index, phys, len } => {
                write!(f, "buffer {index} ({phys} + {len:#x}) is not dword aligned")
            }
            NvmeError::TooLarge {
                len: Some(len),
                max,
            } => {
                write!(f, "request of {len:#x} bytes exceeds {max:#x}")
            }
            NvmeError::TooLarge { len: None, max } => {
                write!(f, "request length overflows (max {max:#x})")
            }
            NvmeError::Dma(e) => write!(f, "DMA: {e}"),
            NvmeError::Share(e) => write!(f, "sharing: {e}"),
            NvmeError::Block(e) => write!(f, "block: {e}"),
            NvmeError::BadQueueDepth { depth } => {
                write!(f, "submission queue depth {depth} outside 2..=4096")
            }
            NvmeError::BadCommandLength { len } => {
                write!(f, "command of {len:#x} bytes is not 1..=65536 blocks")
            }
            NvmeError::SglInvalid { segment, rule } => write!(f, "DMA segment {segment} {rule}"),
            NvmeError::ForeignQueue { queue } => {
                write!(f, "queue of {queue} is not this controller's")
            }
            NvmeError::PrpInvalid {
                segment,
                dma,
                len,
                rule,
            } => write!(f, "DMA segment {segment} ({dma} + {len:#x}) {rule}"),
        }
    }
}

impl std::error::Error for NvmeError {}
