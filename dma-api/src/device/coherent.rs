//! The owning form of a coherent allocation, modelled on Rust-for-Linux
//! `kernel::dma::CoherentAllocation` (rust/kernel/dma.rs): created by
//! [`DmaDevice::alloc_coherent_buf`], it owns the memory and its mapping,
//! gives the CPU bounds-checked access through the context's CPU-memory
//! port, and frees on drop (Linux `dma_alloc_attrs` / `dma_free_attrs`,
//! kernel/dma/mapping.c).
//!
//! The memory is coherent in every mode (see
//! [`DmaBackend::map_coherent`](crate::port::DmaBackend::map_coherent)):
//! what the CPU writes the device reads at [`CoherentAllocation::dma_handle`]
//! with no sync, and the other way round.

use super::context::mem_error;
use super::raw::DmaDevice;
use crate::error::DmaError;
use crate::types::{DmaAddr, PhysAddr};
use alloc::sync::Arc;

/// A coherent DMA allocation that owns its memory and mapping.
///
/// # Invariants
/// * `[phys, phys + len)` is RAM from the context's pool, allocated and
///   mapped by `dev`'s [`DmaDevice::alloc_coherent`] at `dma`, and stays so
///   until [`CoherentAllocation::free`] or drop; `len > 0`.
/// * Nothing else frees it: the raw pair `(phys, dma)` is not handed out,
///   so [`DmaDevice::free_coherent`] cannot be called on it by mistake.
/// * CPU accesses ([`CoherentAllocation::read`],
///   [`CoherentAllocation::write`]) stay inside `[0, len)`.
#[derive(Debug)]
pub struct CoherentAllocation {
    dev: Arc<DmaDevice>,
    phys: PhysAddr,
    dma: DmaAddr,
    len: u64,
    armed: bool,
}

impl DmaDevice {
    /// Allocates `size` bytes of zeroed coherent memory for this device
    /// (rounded up to whole pages inside, like `dma_alloc_coherent`) and
    /// returns the owning [`CoherentAllocation`]. Errors as
    /// [`DmaDevice::alloc_coherent`]; a zero size is
    /// [`DmaError::ZeroLength`].
    pub fn alloc_coherent_buf(self: &Arc<Self>, size: u64) -> Result<CoherentAllocation, DmaError> {
        if size == 0 {
            return Err(DmaError::ZeroLength {
                phys: PhysAddr::ZERO,
            });
        }
        let (phys, dma) = self.alloc_coherent(size)?;
        Ok(CoherentAllocation {
            dev: self.clone(),
            phys,
            dma,
            len: size,
            armed: true,
        })
    }
}

impl CoherentAllocation {
    /// The address to program into the device (Rust-for-Linux
    /// `dma_handle`).
    pub fn dma_handle(&self) -> DmaAddr {
        self.dma
    }

    /// The CPU physical address of the first byte.
    pub fn phys(&self) -> PhysAddr {
        self.phys
    }

    /// Bytes asked for (the pages behind them may be more).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Never true (the invariant), kept for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The device the memory is mapped for.
    pub fn device(&self) -> &Arc<DmaDevice> {
        &self.dev
    }

    /// Reads `buf.len()` bytes at `offset`; no sync is needed, the device's
    /// writes are visible. Outside the allocation is
    /// [`DmaError::OutOfBounds`].
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let Some(phys) = self.at(offset, buf.len() as u64)? else {
            return Ok(());
        };
        self.dev
            .context()
            .mem
            .read(phys, buf)
            .map_err(|e| mem_error(e, phys, buf.len() as u64))
    }

    /// Writes `data` at `offset`; the device sees it with no sync. Outside
    /// the allocation is [`DmaError::OutOfBounds`].
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), DmaError> {
        let Some(phys) = self.at(offset, data.len() as u64)? else {
            return Ok(());
        };
        self.dev
            .context()
            .mem
            .write(phys, data)
            .map_err(|e| mem_error(e, phys, data.len() as u64))
    }

    /// The physical address of `[offset, offset + len)` if it lies inside
    /// the allocation (`None` for an empty access), else the typed error.
    fn at(&self, offset: u64, len: u64) -> Result<Option<PhysAddr>, DmaError> {
        if offset > self.len || len > self.len - offset {
            return Err(DmaError::OutOfBounds {
                offset,
                len,
                size: self.len,
            });
        }
        if len == 0 {
            return Ok(None);
        }
        // Inside a live allocation of the pool: cannot wrap.
        Ok(Some(PhysAddr::new(self.phys.raw() + offset)))
    }

    /// Frees the allocation now (`dma_free_coherent`), returning what
    /// [`DmaDevice::free_coherent`] says; dropping does the same and
    /// discards the error.
    pub fn free(mut self) -> Result<(), DmaError> {
        self.release()
    }

    fn release(&mut self) -> Result<(), DmaError> {
        self.armed = false;
        self.dev.free_coherent(self.phys, self.dma)
    }
}

impl Drop for CoherentAllocation {
    /// Frees the allocation. A drop cannot return an error, so, as for the
    /// typed layer's mappings (`DeviceMapping`), a failed free is recorded
    /// with the context ([`DmaContext::report_drop_error`](super::DmaContext::report_drop_error)):
    /// the RAM then stays out of the pool rather than be reused while the
    /// device may still reach it. Use [`CoherentAllocation::free`] to get
    /// the error directly.
    fn drop(&mut self) {
        if self.armed {
            if let Err(e) = self.release() {
                self.dev.context().report_drop_error(e);
            }
        }
    }
}
