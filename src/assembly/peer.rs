//! Peer (BAR) memory as the CPU sees it through the fabric, for
//! [`map_or_fallback`](dma_api::fallback::map_or_fallback): the fallback
//! staging copies must read and write the BAR's real backing, which lives in
//! the fabric (not in the RAM store).

use dma_api::fabric::{CpuAccessError, Fabric};
use dma_api::fallback::PeerMemory;
use dma_api::{DmaError, PhysAddr};
use std::sync::Arc;

/// [`PeerMemory`] over the fabric's CPU accesses (RAM, stolen RAM, BARs).
#[derive(Clone, Debug)]
pub struct FabricPeer(pub Arc<Fabric>);

fn err(e: CpuAccessError, phys: PhysAddr, len: usize) -> DmaError {
    match e {
        CpuAccessError::NotBacked { phys: at } => DmaError::UnknownMemory {
            phys: at,
            len: len as u64,
        },
        _ => DmaError::PhysOverflow {
            phys,
            len: len as u64,
        },
    }
}

impl PeerMemory for FabricPeer {
    fn read(&self, phys: PhysAddr, buf: &mut [u8]) -> Result<(), DmaError> {
        let n = buf.len();
        self.0.cpu_read(phys, buf).map_err(|e| err(e, phys, n))
    }

    fn write(&self, phys: PhysAddr, data: &[u8]) -> Result<(), DmaError> {
        self.0
            .cpu_write(phys, data)
            .map_err(|e| err(e, phys, data.len()))
    }
}
