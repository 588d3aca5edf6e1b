//! Opt-in map-or-fallback: when peer memory cannot be mapped for a device
//! (a `Fallback`-kind error: P2P unreachable, arch veto, provider refusal,
//! MMIO that would need bouncing), stage the data through a system-RAM
//! buffer instead, and *say so*.
//!
//! Linux has no such helper; every subsystem hand-rolls one (nvmet
//! `sgl_alloc`, amdgpu migrating to GTT, block `BLK_STS_INVAL`) and none
//! reports why. Here the outcome carries the original error with its reason
//! chain.
//!
//! The peer bytes are read and written through a [`CpuMemory`] the caller
//! passes (the simulator's fabric gives one that reaches BAR backing); the
//! staging buffer is the context's own RAM.

use crate::attrs::DmaAttrs;
use crate::device::context_mem_error as mem_error;
use crate::device::DmaDevice;
use crate::direction::Direction;
use crate::error::{DmaError, ErrorKind};
use crate::mem::CpuMemory;
use crate::types::{DmaAddr, PhysAddr, SegKind};
use alloc::sync::Arc;

/// A mapping made by [`map_or_fallback`]. Call [`FallbackMapping::complete`]
/// when the device is done: it unmaps and, after a fallback, copies the
/// device's writes back to the peer memory (`FromDevice`/`Bidirectional`)
/// and frees the RAM buffer.
///
/// # Invariants
/// `bounce` is `Some` exactly when `reason` is; the RAM buffer holds `len`
/// bytes and is mapped at `dma`.
#[must_use = "complete() unmaps and copies the device's writes back"]
pub struct FallbackMapping {
    dev: Arc<DmaDevice>,
    orig: PhysAddr,
    len: u64,
    dir: Direction,
    attrs: DmaAttrs,
    dma: DmaAddr,
    bounce: Option<PhysAddr>,
    reason: Option<DmaError>,
    peer: Arc<dyn CpuMemory>,
}

impl core::fmt::Debug for FallbackMapping {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FallbackMapping")
            .field("orig", &self.orig)
            .field("len", &self.len)
            .field("dma", &self.dma)
            .field("bounce", &self.bounce)
            .field("reason", &self.reason)
            .finish()
    }
}

impl FallbackMapping {
    /// The address to program into the device.
    pub fn dma_addr(&self) -> DmaAddr {
        self.dma
    }

    /// Why the direct mapping was impossible, if it fell back.
    pub fn fell_back(&self) -> Option<&DmaError> {
        self.reason.as_ref()
    }

    /// The RAM staging buffer, if it fell back.
    pub fn bounce_buffer(&self) -> Option<PhysAddr> {
        self.bounce
    }

    /// Unmaps; after a fallback copies the RAM buffer back to the peer
    /// memory when the device wrote, then frees it.
    pub fn complete(self) -> Result<(), DmaError> {
        self.dev
            .unmap_phys(self.dma, self.len, self.dir, self.attrs)?;
        let Some(bounce) = self.bounce else {
            return Ok(());
        };
        let copy = if self.dir.device_writes() {
            copy_between(
                self.dev.context().mem.as_ref(),
                bounce,
                self.peer.as_ref(),
                self.orig,
                self.len,
            )
        } else {
            Ok(())
        };
        let freed = self.dev.context().free_ram(bounce);
        copy.and(freed)
    }
}

/// Copies `len` bytes between two memories (peer and RAM, either way).
pub(super) fn copy_between(
    from: &dyn CpuMemory,
    from_at: PhysAddr,
    to: &dyn CpuMemory,
    to_at: PhysAddr,
    len: u64,
) -> Result<(), DmaError> {
    let n = usize::try_from(len).map_err(|_| DmaError::OutOfMemory { bytes: len })?;
    let mut buf = alloc::vec![0u8; n];
    from.read(from_at, &mut buf)
        .map_err(|e| mem_error(e, from_at, len))?;
    to.write(to_at, &buf).map_err(|e| mem_error(e, to_at, len))
}

/// Maps `[phys, phys + len)` for `dev`; if that fails with a
/// [`ErrorKind::Fallback`] error and the range is not plain RAM, copies the
/// range into a fresh RAM buffer (always, so a partial device write leaves
/// the rest intact, like swiotlb) and maps that instead. Other errors are
/// returned as they are.
pub fn map_or_fallback(
    dev: &Arc<DmaDevice>,
    phys: PhysAddr,
    len: u64,
    dir: Direction,
    attrs: DmaAttrs,
    peer: Arc<dyn CpuMemory>,
) -> Result<FallbackMapping, DmaError> {
    let err = match dev.map_phys(phys, len, dir, attrs) {
        Ok(dma) => {
            return Ok(FallbackMapping {
                dev: dev.clone(),
                orig: phys,
                len,
                dir,
                attrs,
                dma,
                bounce: None,
                reason: None,
                peer,
            })
        }
        Err(e) => e,
    };
    let is_ram = matches!(
        dev.context().memmap.read().kind_of_range(phys, len),
        Some((_, SegKind::Ram))
    );
    if err.kind() != ErrorKind::Fallback || is_ram {
        return Err(err);
    }
    let ctx = dev.context();
    let bounce = ctx.alloc_ram(len)?;
    let staged = copy_between(peer.as_ref(), phys, ctx.mem.as_ref(), bounce, len)
        .and_then(|()| dev.map_phys(bounce, len, dir, attrs));
    match staged {
        Ok(dma) => Ok(FallbackMapping {
            dev: dev.clone(),
            orig: phys,
            len,
            dir,
            attrs,
            dma,
            bounce: Some(bounce),
            reason: Some(err),
            peer,
        }),
        Err(e) => {
            let _ = ctx.free_ram(bounce);
            Err(e)
        }
    }
}

mod table;

pub use table::{map_sgtable_or_fallback, BouncedEntry, TableFallback};
