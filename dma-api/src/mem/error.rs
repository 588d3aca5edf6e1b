//! The one error of physical memory: the CPU-memory port
//! ([`CpuMemory`](super::CpuMemory)), the page-table stores of `dma-iommu`
//! and the simulator's RAM all report it, so a failure reads the same
//! whichever memory is underneath.

use crate::types::PhysAddr;
use core::fmt;

/// A physical-memory access or frame allocation that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemError {
    /// An access `[addr, addr + len)` wraps past the end of the address space.
    Overflow {
        /// Start of the access.
        addr: PhysAddr,
        /// Length of the access.
        len: u64,
    },
    /// The memory has no backing at `[addr, addr + len)` (a kernel's
    /// accessor refusing an address it does not map).
    Unbacked {
        /// Start of the access.
        addr: PhysAddr,
        /// Length of the access.
        len: u64,
    },
    /// The frame pool cannot satisfy a request of `bytes` (after alignment).
    OutOfFrames {
        /// Requested bytes.
        bytes: u64,
    },
    /// A frame request was not a power-of-two multiple of the page size.
    BadFrameSize {
        /// Requested bytes.
        bytes: u64,
    },
    /// `free_frames` was given a block that the allocator never handed out.
    NotAllocated {
        /// Start of the block.
        addr: PhysAddr,
    },
}

impl fmt::Display for MemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Overflow { addr, len } => write!(f, "access of {len:#x} bytes at {addr} wraps"),
            Self::Unbacked { addr, len } => {
                write!(f, "no memory backs {len:#x} bytes at {addr}")
            }
            Self::OutOfFrames { bytes } => {
                write!(f, "frame pool exhausted allocating {bytes:#x} bytes")
            }
            Self::BadFrameSize { bytes } => {
                write!(
                    f,
                    "frame block of {bytes:#x} bytes is not a power-of-two number of pages"
                )
            }
            Self::NotAllocated { addr } => write!(f, "frame block at {addr} was not allocated"),
        }
    }
}

impl core::error::Error for MemError {}
