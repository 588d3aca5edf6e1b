//! A device's engine on the simulated fabric: local memory is the BAR store
//! at the BAR's CPU address (never on a link: the device reads its own
//! VRAM), DMA goes through [`Fabric::dma_read`] / [`Fabric::dma_write`] as
//! the device, so every byte of an owner's copy is routed, translated by
//! the IOMMU and counted.

use crate::fabric::Fabric;
use dma_api::hmm::DeviceEngine;
use dma_api::mem::MemError;
use dma_api::{Bdf, DmaAddr, PhysAddr};
use std::sync::Arc;

/// The engine of the device `bdf` on `fabric`.
#[derive(Debug, Clone)]
pub struct FabricEngine {
    fabric: Arc<Fabric>,
    bdf: Bdf,
}

impl FabricEngine {
    /// The engine of `bdf`.
    pub fn new(fabric: Arc<Fabric>, bdf: Bdf) -> Arc<Self> {
        Arc::new(Self { fabric, bdf })
    }
}

fn local_err(at: PhysAddr, len: usize) -> MemError {
    MemError::Unbacked {
        addr: at,
        len: len as u64,
    }
}

impl DeviceEngine for FabricEngine {
    fn local_read(&self, at: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        self.fabric
            .cpu_read(at, buf)
            .map_err(|_| local_err(at, buf.len()))
    }

    fn local_write(&self, at: PhysAddr, data: &[u8]) -> Result<(), MemError> {
        self.fabric
            .cpu_write(at, data)
            .map_err(|_| local_err(at, data.len()))
    }

    fn dma_write(&self, dma: DmaAddr, data: &[u8]) -> Result<(), String> {
        self.fabric
            .dma_write(self.bdf, dma, data)
            .map_err(|f| f.to_string())
    }

    fn dma_read(&self, dma: DmaAddr, buf: &mut [u8]) -> Result<(), String> {
        self.fabric
            .dma_read(self.bdf, dma, buf)
            .map_err(|f| f.to_string())
    }
}
