//! The NIC's typed errors for the rw context and physical registrations.

use core::fmt;
use dma_api::share::ShareError;
use dma_api::DmaError;

/// Why a context or registration was refused, or an access failed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum RdmaError {
    /// The DMA layer refused the mapping.
    Dma(DmaError),
    /// The sharing protocol refused.
    Share(ShareError),
    /// The data does not match the context's length.
    Length {
        /// The context's bytes.
        expected: u64,
        /// The data's.
        got: u64,
    },
    /// An access outside the region.
    OutOfRange {
        /// Offset asked for.
        offset: u64,
        /// Bytes asked for.
        len: u64,
        /// The region's length.
        region: u64,
    },
    /// The NIC's access faulted on the bus.
    Bus(String),
}

impl From<DmaError> for RdmaError {
    fn from(e: DmaError) -> Self {
        Self::Dma(e)
    }
}

impl From<ShareError> for RdmaError {
    fn from(e: ShareError) -> Self {
        Self::Share(e)
    }
}

impl fmt::Display for RdmaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dma(e) => write!(f, "DMA: {e}"),
            Self::Share(e) => write!(f, "sharing: {e}"),
            Self::Length { expected, got } => {
                write!(f, "{got:#x} bytes for a {expected:#x}-byte context")
            }
            Self::OutOfRange {
                offset,
                len,
                region,
            } => {
                write!(
                    f,
                    "{len:#x} bytes at {offset:#x} outside a {region:#x}-byte region"
                )
            }
            Self::Bus(e) => write!(f, "bus fault: {e}"),
        }
    }
}

impl std::error::Error for RdmaError {}
