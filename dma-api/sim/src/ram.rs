//! The machine's RAM as the DMA layer sees it: the CPU-memory port of
//! `dma-api` over the shared physical store the IOMMU's page tables also
//! live in.
//!
//! One store serves the table writer, the hardware walker, swiotlb, coherent
//! allocations and the fabric, so a device that scribbles over a page table
//! would be seen by the walker, as on hardware.

use dma_api::mem::{CpuMemory, MemError};
use dma_api::memmap::MemoryMap;
use dma_api::{PhysAddr, SegKind};
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

/// The CPU's view of every memory kind the machine has, as `dma-api`'s
/// CPU-memory port: RAM and stolen-RAM carve-outs in the RAM store, BARs in
/// the fabric's BAR store (CPU MMIO), split where the memory map's ranges
/// end. Device-private memory and holes are not CPU-addressable
/// ([`MemError::Unbacked`], naming the first such byte).
#[derive(Clone, Debug)]
pub struct SimCpu {
    ram: SharedMem,
    bars: SharedMem,
    memmap: MemoryMap,
}

impl SimCpu {
    /// A view over `ram` and `bars`, classified by `memmap`.
    pub fn new(ram: SharedMem, bars: SharedMem, memmap: MemoryMap) -> Self {
        Self { ram, bars, memmap }
    }

    /// A `dma-api` handle to this view.
    pub fn port(&self) -> dma_api::CpuMem {
        Arc::new(self.clone())
    }

    /// The store behind each piece of `[phys, phys + len)`, all or nothing.
    fn pieces(&self, phys: PhysAddr, len: u64) -> Result<Vec<(PhysAddr, u64, bool)>, MemError> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut bad = None;
        self.memmap
            .classify(phys, len, |p, n, k| match k {
                SegKind::Ram | SegKind::StolenRam(_) => out.push((p, n, false)),
                SegKind::PeerBar(_) => out.push((p, n, true)),
                SegKind::DevicePrivate(_) => {
                    bad.get_or_insert(MemError::Unbacked { addr: p, len: n });
                }
            })
            .map_err(|at| MemError::Unbacked {
                addr: at,
                len: len - (at.raw() - phys.raw()),
            })?;
        match bad {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    fn store(&self, bar: bool) -> &SharedMem {
        if bar {
            &self.bars
        } else {
            &self.ram
        }
    }
}

impl CpuMemory for SimCpu {
    fn read(&self, phys: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        let mut at = 0usize;
        for (p, n, bar) in self.pieces(phys, buf.len() as u64)? {
            let n = n as usize;
            self.store(bar)
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .read(p, &mut buf[at..at + n])?;
            at += n;
        }
        Ok(())
    }

    fn write(&self, phys: PhysAddr, data: &[u8]) -> Result<(), MemError> {
        let pieces = self.pieces(phys, data.len() as u64)?;
        let mut at = 0usize;
        for (p, n, bar) in pieces {
            let n = n as usize;
            self.store(bar)
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .write(p, &data[at..at + n])?;
            at += n;
        }
        Ok(())
    }
}
