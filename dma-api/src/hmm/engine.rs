//! The device side of the wire, as an owner driver drives it: its own local
//! memory (VRAM, addressed by the CPU address of the BAR that exposes it)
//! and its DMA engine issuing reads and writes to DMA addresses.
//!
//! Linux drivers program their copy engine directly (nouveau's
//! `nouveau_dmem_copy_one`, amdgpu's SDMA in `svm_migrate_copy_memory_gart`);
//! the port is what that looks like to a driver written against `dma-api`.

use crate::mem::MemError;
use crate::types::{DmaAddr, PhysAddr};
use alloc::string::String;

/// A device's local memory and DMA engine.
pub trait DeviceEngine: Send + Sync {
    /// Reads the device's own memory at `at` (the BAR's CPU address of that
    /// memory): a local access, not a bus transaction.
    fn local_read(&self, at: PhysAddr, buf: &mut [u8]) -> Result<(), MemError>;

    /// Writes the device's own memory at `at` (local, as above).
    fn local_write(&self, at: PhysAddr, data: &[u8]) -> Result<(), MemError>;

    /// The device writes `data` at `dma` on the bus; `Err` carries the
    /// fault's description (nothing is retried).
    fn dma_write(&self, dma: DmaAddr, data: &[u8]) -> Result<(), String>;

    /// The device reads `buf.len()` bytes at `dma` on the bus.
    fn dma_read(&self, dma: DmaAddr, buf: &mut [u8]) -> Result<(), String>;
}
