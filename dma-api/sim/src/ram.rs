//! The machine's RAM as the DMA layer sees it: the CPU-memory port of
//! `dma-api` over the shared physical store the IOMMU's page tables also
//! live in.
//!
//! One store serves the table writer, the hardware walker, swiotlb, coherent
//! allocations and the fabric, so a device that scribbles over a page table
//! would be seen by the walker, as on hardware.

use dma_api::mem::{CpuMemory, MemError};
use dma_api::PhysAddr;
use dma_iommu::{PhysMem, SharedMem};
use std::sync::{Arc, PoisonError, RwLock};

/// [`CpuMemory`] over the simulator's [`SharedMem`].
#[derive(Clone, Debug)]
pub struct SimRam(pub SharedMem);

impl SimRam {
    /// Fresh, empty RAM.
    pub fn new() -> Self {
        Self(Arc::new(RwLock::new(PhysMem::new())))
    }

    /// The store behind it (for the page tables and the fabric).
    pub fn shared(&self) -> &SharedMem {
        &self.0
    }

    /// A `dma-api` handle to this RAM.
    pub fn port(&self) -> dma_api::CpuMem {
        Arc::new(self.clone())
    }
}

impl Default for SimRam {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuMemory for SimRam {
    fn read(&self, phys: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .read(phys, buf)
    }

    fn write(&self, phys: PhysAddr, data: &[u8]) -> Result<(), MemError> {
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .write(phys, data)
    }

    /// One lock for the whole copy, so no other user sees it half done.
    fn copy(&self, dst: PhysAddr, src: PhysAddr, len: u64) -> Result<(), MemError> {
        let n = usize::try_from(len).map_err(|_| MemError::Overflow { addr: src, len })?;
        let mut buf = vec![0u8; n];
        let mut mem = self.0.write().unwrap_or_else(PoisonError::into_inner);
        mem.read(src, &mut buf)?;
        mem.write(dst, &buf)
    }
}
