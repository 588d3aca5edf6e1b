//! Peer (BAR) memory as the CPU sees it through the fabric, for
//! [`map_or_fallback`](dma_api::fallback::map_or_fallback): the fallback
//! staging copies must read and write the BAR's real backing, which lives in
//! the fabric (not in the RAM store).

use crate::fabric::{CpuAccessError, Fabric};
use dma_api::mem::{CpuMemory, MemError};
use dma_api::PhysAddr;
use std::sync::Arc;

/// [`CpuMemory`] over the fabric's CPU accesses (RAM, stolen RAM, BARs).
#[derive(Clone, Debug)]
pub struct FabricPeer(pub Arc<Fabric>);

fn err(e: CpuAccessError, phys: PhysAddr, len: usize) -> MemError {
    match e {
        CpuAccessError::NotBacked { phys: at } => MemError::Unbacked {
            addr: at,
            len: len as u64,
        },
        _ => MemError::Overflow {
            addr: phys,
            len: len as u64,
        },
    }
}

impl CpuMemory for FabricPeer {
    fn read(&self, phys: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        let n = buf.len();
        self.0.cpu_read(phys, buf).map_err(|e| err(e, phys, n))
    }

    fn write(&self, phys: PhysAddr, data: &[u8]) -> Result<(), MemError> {
        self.0
            .cpu_write(phys, data)
            .map_err(|e| err(e, phys, data.len()))
    }
}
