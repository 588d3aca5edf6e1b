//! The target's typed errors.

use crate::block::BlockError;
use crate::nvme::{ControllerError, NvmeError};
use crate::rdma::RdmaError;
use core::fmt;
use dma_api::{Bdf, DmaError};

/// Why a setting, a port or an I/O was refused.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum NvmetError {
    /// The p2pmem setting names no PCI device and is no boolean
    /// (`pci_p2pdma_enable_store`: "No such PCI device").
    NoSuchDevice {
        /// What was written (without its trailing newline).
        input: String,
    },
    /// The named device has no published p2pmem ("PCI device has no
    /// peer-to-peer memory").
    NoP2pMem {
        /// The device.
        device: Bdf,
    },
    /// The named provider cannot serve every client
    /// (`pci_p2pdma_distance_many` failed); the text names the routes.
    NotReachable {
        /// The provider.
        provider: Bdf,
        /// The oracle's explanation.
        why: String,
    },
    /// The namespace's queue does not carry peer memory
    /// (`nvmet_p2pmem_ns_enable`: "peer-to-peer DMA is not supported by the
    /// driver of …").
    QueueWithoutP2p {
        /// The namespace device.
        device: Bdf,
    },
    /// A device the port names is unknown.
    UnknownDevice {
        /// It.
        device: Bdf,
    },
    /// A buffer of zero bytes or not whole blocks.
    BadLength {
        /// The length.
        len: u64,
    },
    /// The DMA layer refused.
    Dma(DmaError),
    /// The block layer refused.
    Block(BlockError),
    /// The NVMe driver refused.
    Nvme(NvmeError),
    /// The controller model refused or faulted.
    Controller(ControllerError),
    /// The NIC refused or faulted.
    Rdma(RdmaError),
}

impl From<DmaError> for NvmetError {
    fn from(e: DmaError) -> Self {
        Self::Dma(e)
    }
}
impl From<NvmeError> for NvmetError {
    fn from(e: NvmeError) -> Self {
        Self::Nvme(e)
    }
}
impl From<BlockError> for NvmetError {
    fn from(e: BlockError) -> Self {
        Self::Block(e)
    }
}
impl From<ControllerError> for NvmetError {
    fn from(e: ControllerError) -> Self {
        Self::Controller(e)
    }
}
impl From<RdmaError> for NvmetError {
    fn from(e: RdmaError) -> Self {
        Self::Rdma(e)
    }
}

impl fmt::Display for NvmetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchDevice { input } => write!(f, "No such PCI device: {input:?}"),
            Self::NoP2pMem { device } => {
                write!(f, "PCI device has no peer-to-peer memory: {device}")
            }
            Self::NotReachable { provider, why } => write!(
                f,
                "p2pmem of {provider} is not reachable by every client: {why}"
            ),
            Self::QueueWithoutP2p { device } => write!(
                f,
                "peer-to-peer DMA is not supported by the driver of {device}"
            ),
            Self::UnknownDevice { device } => write!(f, "unknown device {device}"),
            Self::BadLength { len } => write!(f, "bad I/O length {len:#x}"),
            Self::Dma(e) => write!(f, "DMA: {e}"),
            Self::Block(e) => write!(f, "block: {e}"),
            Self::Nvme(e) => write!(f, "NVMe: {e}"),
            Self::Controller(e) => write!(f, "controller: {e}"),
            Self::Rdma(e) => write!(f, "RDMA: {e}"),
        }
    }
}

impl std::error::Error for NvmetError {}
