//! The `dma_set_*` calls of include/linux/dma-mapping.h on a
//! [`DmaDevice`]: a driver states its device's DMA mask, coherent mask,
//! min-align mask, maximum segment size, segment boundary and virt boundary
//! ([`DmaConstraints`]), and the backend below is told, so the new values
//! change what it does (which RAM bounces, which IOVAs it hands out, how it
//! merges segments). [`DmaDevice::map_sgtable`] then refuses tables that
//! break them and [`DmaDevice::table_from_ranges`] builds tables that keep
//! them.
//!
//! Deliberate differences from Linux (RFC §5.7):
//! * every setter is all-or-nothing with a typed error, and
//!   [`DmaDevice::set_mask_and_coherent`] sets both masks or neither (Linux
//!   ignores the coherent half's result);
//! * values the block layer would refuse (`blk_validate_limits`) are refused
//!   here ([`DmaError::InvalidConstraint`]);
//! * nothing but the virt boundary may change while the device has live
//!   mappings ([`DmaError::ConstraintsBusy`]): unmap must undo exactly what
//!   map did, under the limits map used.

use super::constraints::{DmaConstraints, EntryAddr};
use super::context::DmaContext;
use super::raw::DmaDevice;
use crate::error::DmaError;
use crate::mask::DmaMask;
use crate::port::{ConstraintsRequest, DmaBackend};
use crate::topology::DeviceId;
use scatterlist::SgTable;

/// What a new [`DmaDevice`] starts with: what its backend applies, else a
/// PCI function's defaults over the mask of its topology record
/// ([`DmaConstraints::pci`]).
pub(super) fn initial_constraints(
    ctx: &DmaContext,
    id: DeviceId,
    backend: &dyn DmaBackend,
) -> DmaConstraints {
    if let Some(c) = backend.constraints() {
        return DmaConstraints {
            virt_boundary_mask: 0,
            ..c
        };
    }
    let mask = ctx
        .topology
        .read()
        .device(id)
        .map_or(DmaMask::BITS_32, |d| d.dma_mask);
    DmaConstraints::pci(mask)
}

impl DmaDevice {
    /// The device's current constraints (`dma_get_mask`,
    /// `dma_get_max_seg_size`, `dma_get_seg_boundary`,
    /// `dma_get_min_align_mask`, and the virt boundary).
    pub fn constraints(&self) -> DmaConstraints {
        *self.constraints.lock()
    }

    /// Linux `dma_set_mask` (kernel/dma/mapping.c): the streaming mask. The
    /// backend first checks it can serve the device under it (`dma_supported`):
    /// the direct backend wants the mask to reach the bounce pool every
    /// unreachable page falls back to, or all of RAM without one
    /// (`dma_direct_supported`); the IOMMU backend accepts any mask that
    /// holds an IOVA granule (`use_dma_iommu`). A refusal is
    /// [`DmaError::MaskNotSupported`] naming the device, the mask and what
    /// it cannot reach; the old mask stays.
    pub fn set_dma_mask(&self, mask: DmaMask) -> Result<(), DmaError> {
        self.update(|c| c.dma_mask = mask)
    }

    /// Linux `dma_set_coherent_mask`: the mask coherent allocations must fit
    /// below. On the direct path the context's coherent pool
    /// ([`DmaContext::ram_pool`]) must be reachable under it, else
    /// [`DmaError::MaskNotSupported`] (Linux checks only `dma_supported`
    /// and fails the allocation later); behind an IOMMU it caps the
    /// allocation's IOVA (`iommu_dma_alloc` passes `coherent_dma_mask`).
    pub fn set_coherent_mask(&self, mask: DmaMask) -> Result<(), DmaError> {
        self.update(|c| c.coherent_mask = mask)
    }

    /// Linux `dma_set_mask_and_coherent`: both masks, or neither.
    pub fn set_mask_and_coherent(&self, mask: DmaMask) -> Result<(), DmaError> {
        self.update(|c| {
            c.dma_mask = mask;
            c.coherent_mask = mask;
        })
    }

    /// Linux `dma_set_max_seg_size`: no table entry or DMA segment longer
    /// than `size` (at least a page).
    pub fn set_max_seg_size(&self, size: u32) -> Result<(), DmaError> {
        self.update(|c| c.max_seg_size = size)
    }

    /// Linux `dma_set_seg_boundary`: no table entry or DMA segment crosses a
    /// multiple of `mask + 1` (`2^n - 1`, at least a page − 1).
    pub fn set_seg_boundary(&self, mask: u64) -> Result<(), DmaError> {
        self.update(|c| c.seg_boundary_mask = mask)
    }

    /// Linux `dma_set_min_align_mask`: a bounce buffer keeps the original's
    /// address bits under `mask` (kernel/dma/swiotlb.c), so a device that
    /// derives descriptors from the low bits (NVMe PRPs) sees the same
    /// offsets after bouncing. 0 or `2^n - 1`.
    pub fn set_min_align_mask(&self, mask: u64) -> Result<(), DmaError> {
        self.update(|c| c.min_align_mask = mask)
    }

    /// The block layer's `virt_boundary_mask` (block/blk-settings.c), checked
    /// by [`DmaDevice::map_sgtable`] on the CPU entries (block/blk-merge.c
    /// `bvec_gap_to_prev`): every entry but the first must start on a
    /// multiple of `mask + 1`, every entry but the last must end on one. 0
    /// turns it off. Only the mapping layer uses it, so it may change while
    /// mappings are live.
    pub fn set_virt_boundary(&self, mask: u64) -> Result<(), DmaError> {
        self.update(|c| c.virt_boundary_mask = mask)
    }

    fn update(&self, f: impl FnOnce(&mut DmaConstraints)) -> Result<(), DmaError> {
        let device = self.bdf();
        // Held throughout: setters are serialised, and a refused update
        // leaves the old value.
        let mut cur = self.constraints.lock();
        let mut new = *cur;
        f(&mut new);
        if let Some((what, value, rule)) = new.invalid_field() {
            return Err(DmaError::InvalidConstraint {
                device,
                what,
                value,
                rule,
            });
        }
        if new == *cur {
            return Ok(());
        }
        let backend_view = |c: &DmaConstraints| DmaConstraints {
            virt_boundary_mask: 0,
            ..*c
        };
        if backend_view(&new) != backend_view(&cur) {
            let (singles, tables, coherent) = (
                self.live_singles(),
                self.live_tables(),
                self.live_coherent(),
            );
            if singles + tables + coherent > 0 {
                return Err(DmaError::ConstraintsBusy {
                    device,
                    singles,
                    tables,
                    coherent,
                });
            }
            self.raw_backend().set_constraints(&ConstraintsRequest {
                device,
                constraints: new,
                coherent_pool: self.context().ram_pool(),
            })?;
        }
        *cur = new;
        Ok(())
    }

    /// The CPU entries of `table` against the device's constraints, before
    /// anything is mapped.
    pub(super) fn check_table_constraints(&self, table: &SgTable) -> Result<(), DmaError> {
        self.constraints()
            .check_table(table)
            .map_err(
                |(index, phys, len, violation)| DmaError::ConstraintViolated {
                    device: self.bdf(),
                    index,
                    at: EntryAddr::Cpu(phys),
                    len,
                    violation,
                },
            )
    }

    /// The DMA segments the backend produced for `table` against the
    /// segment rules (kernel/dma/debug.c `check_sg_segment`).
    pub(super) fn check_mapped_constraints(&self, table: &SgTable) -> Result<(), DmaError> {
        self.constraints()
            .check_mapped(table)
            .map_err(
                |(index, dma, len, violation)| DmaError::ConstraintViolated {
                    device: self.bdf(),
                    index,
                    at: EntryAddr::Dma(dma),
                    len,
                    violation,
                },
            )
    }
}
