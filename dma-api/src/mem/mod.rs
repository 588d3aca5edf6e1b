//! The CPU-memory port: how the DMA layer reads and writes CPU physical
//! memory.
//!
//! Bouncing through swiotlb, zeroing a coherent allocation, staging a
//! fallback copy and the CPU's view of a mapped buffer all move bytes by
//! physical address. The layer does it only through [`CpuMemory`], so the
//! same code runs over the simulator's RAM (which implements it in
//! `dma-sim`) and over a kernel's own accessor (a direct map, `kmap`-style
//! windows). Modelled on `dma_iommu::pgtable::TableMem`, which does the same
//! for page tables.

mod error;

pub use error::MemError;

use crate::types::PhysAddr;
use alloc::sync::Arc;

/// Byte access to CPU physical memory (RAM, and BAR backing where the
/// implementation has it).
///
/// Methods take `&self`: an implementation that needs a lock takes it inside,
/// once per call, so a copy sees one consistent memory. Every method is
/// all-or-nothing: on `Err` nothing was written.
pub trait CpuMemory: Send + Sync {
    /// Reads `buf.len()` bytes at `phys`.
    fn read(&self, phys: PhysAddr, buf: &mut [u8]) -> Result<(), MemError>;

    /// Writes `data` at `phys`.
    fn write(&self, phys: PhysAddr, data: &[u8]) -> Result<(), MemError>;

    /// Copies `len` bytes from `src` to `dst` (the ranges may overlap; the
    /// result is as if `src` were read whole first).
    fn copy(&self, dst: PhysAddr, src: PhysAddr, len: u64) -> Result<(), MemError> {
        let n = usize::try_from(len).map_err(|_| MemError::Overflow { addr: src, len })?;
        let mut buf = alloc::vec![0u8; n];
        self.read(src, &mut buf)?;
        self.write(dst, &buf)
    }

    /// Writes `len` zero bytes at `phys`.
    fn zero(&self, phys: PhysAddr, len: u64) -> Result<(), MemError> {
        let n = usize::try_from(len).map_err(|_| MemError::Overflow { addr: phys, len })?;
        self.write(phys, &alloc::vec![0u8; n])
    }
}

impl core::fmt::Debug for dyn CpuMemory {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("dyn CpuMemory")
    }
}

/// A shared handle to a [`CpuMemory`], as the context, swiotlb and the
/// typed layer hold it.
pub type CpuMem = Arc<dyn CpuMemory>;
