//! Errors of physical-memory stores and their frame allocators: the simulated
//! RAM ([`crate::mem::PhysMem`], std) and the `no_std` table stores of
//! `dma-iommu`. `no_std`, so both builds share one error type.

use crate::types::PhysAddr;
use core::fmt;

/// Errors of the simulated memory and its frame allocator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemError {
    /// An access `[addr, addr + len)` wraps past the end of the address space.
    Overflow {
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
