//! The bus as a device model sees it: DMA reads and writes a device issues
//! at the addresses its driver programmed. The device models here (the NVMe
//! controller, the RDMA NIC) move their data only through it, so the tests
//! and scenarios plug in the simulated fabric and every byte is counted
//! where it really went; this crate stays free of the simulator.

use dma_api::{Bdf, DmaAddr};

/// A device-side DMA port.
pub trait Wire {
    /// `who` reads `buf.len()` bytes at `at`; the error text is the bus's
    /// fault.
    fn dma_read(&self, who: Bdf, at: DmaAddr, buf: &mut [u8]) -> Result<(), String>;
    /// `who` writes `data` at `at`.
    fn dma_write(&self, who: Bdf, at: DmaAddr, data: &[u8]) -> Result<(), String>;
}
