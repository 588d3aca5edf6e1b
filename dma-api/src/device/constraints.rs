//! A device's DMA constraints as one value, with Linux semantics: the masks
//! and `dma_parms` of `struct device` (include/linux/dma-mapping.h
//! `dma_set_mask`, `dma_set_coherent_mask`, `dma_set_min_align_mask`,
//! `dma_set_max_seg_size`, `dma_set_seg_boundary`) and the block layer's
//! virt boundary (block/blk-settings.c `virt_boundary_mask`), plus the
//! checks a table must pass against them.
//!
//! The setters are [`DmaDevice`](super::DmaDevice) methods (`dma_set.rs`);
//! this file is the plain data and its rules.
//!
//! Which side each rule is checked on:
//! * **max segment size** and **segment boundary** — every CPU entry before
//!   mapping, and every DMA segment the backend produced after mapping
//!   (kernel/dma/debug.c `check_sg_segment`, which Linux only reports; we
//!   refuse);
//! * **virt boundary** — the CPU entries only (block/blk-merge.c
//!   `bvec_gap_to_prev`: a table is what the block layer would have
//!   merged). Every entry but the first must start on the boundary and every
//!   entry but the last must end on it. The DMA side keeps those offsets
//!   where the path preserves them: the IOMMU keeps the offset inside its
//!   granule, swiotlb the offset under the min-align mask — which is why a
//!   driver that needs the rule on DMA addresses (NVMe PRPs) also sets the
//!   min-align mask, and checks its descriptors itself.

use crate::mask::DmaMask;
use crate::types::{DmaAddr, PhysAddr, PAGE_SIZE};
use core::fmt;
use scatterlist::{SgEntry, SgTable};

/// `dma_get_max_seg_size` for a PCI device: `pci_device_add`
/// (drivers/pci/probe.c) sets 64 KiB, which is also the value
/// include/linux/dma-mapping.h returns without `dma_parms` (`SZ_64K`).
pub const DEFAULT_MAX_SEG_SIZE: u32 = 0x1_0000;

/// `dma_get_seg_boundary` for a PCI device: `pci_device_add`
/// (drivers/pci/probe.c) sets `0xffffffff`. (Without `dma_parms`
/// include/linux/dma-mapping.h returns `ULONG_MAX` since 5.10; every PCI
/// function has `dma_parms`, so 4 GiB is what a PCI driver starts with.)
pub const DEFAULT_SEG_BOUNDARY_MASK: u64 = 0xffff_ffff;

/// One device's DMA constraints.
///
/// Linux keeps them in `struct device` and `struct device_dma_parameters`
/// (include/linux/device.h), except the virt boundary, which is a block
/// queue limit (block/blk-settings.c); here the mapping layer checks it, so
/// it lives with the rest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct DmaConstraints {
    /// The streaming DMA mask (`*dev->dma_mask`, `dma_set_mask`).
    pub dma_mask: DmaMask,
    /// The coherent DMA mask (`dev->coherent_dma_mask`,
    /// `dma_set_coherent_mask`): what coherent allocations must fit below.
    pub coherent_mask: DmaMask,
    /// `dma_get_min_align_mask`: the low address bits a bounce buffer keeps
    /// from the original (kernel/dma/swiotlb.c). 0 or `2^n - 1`.
    pub min_align_mask: u64,
    /// `dma_get_max_seg_size`: no table entry or DMA segment is longer.
    /// At least one page (block/blk-settings.c `blk_validate_limits`).
    pub max_seg_size: u32,
    /// `dma_get_seg_boundary`: no table entry or DMA segment crosses a
    /// multiple of `seg_boundary_mask + 1`. `2^n - 1`, at least a page − 1
    /// (`blk_validate_limits`); `u64::MAX` is no boundary.
    pub seg_boundary_mask: u64,
    /// The block layer's `virt_boundary_mask` (block/blk-settings.c): every
    /// entry but the first starts on it, every entry but the last ends on
    /// it. 0 (none) or `2^n - 1`.
    pub virt_boundary_mask: u64,
}

impl DmaConstraints {
    /// What a PCI function starts with (drivers/pci/probe.c
    /// `pci_device_add`): both masks `mask` (the device's topology record),
    /// 64 KiB segments, 4 GiB boundary, no min-align mask, no virt boundary.
    pub const fn pci(mask: DmaMask) -> Self {
        Self {
            dma_mask: mask,
            coherent_mask: mask,
            min_align_mask: 0,
            max_seg_size: DEFAULT_MAX_SEG_SIZE,
            seg_boundary_mask: DEFAULT_SEG_BOUNDARY_MASK,
            virt_boundary_mask: 0,
        }
    }

    /// The first rule these values break, as `(field, value, rule)`, or
    /// `None` if all are valid.
    pub fn invalid_field(&self) -> Option<(&'static str, u64, &'static str)> {
        let low_ones = |v: u64| v & v.wrapping_add(1) == 0;
        if u64::from(self.max_seg_size) < PAGE_SIZE {
            return Some((
                "max_seg_size",
                u64::from(self.max_seg_size),
                "must be at least one page (block/blk-settings.c blk_validate_limits)",
            ));
        }
        if !low_ones(self.seg_boundary_mask) || self.seg_boundary_mask < PAGE_SIZE - 1 {
            return Some((
                "seg_boundary_mask",
                self.seg_boundary_mask,
                "must be 2^n - 1 and at least a page - 1 (blk_validate_limits)",
            ));
        }
        if !low_ones(self.min_align_mask) {
            return Some((
                "min_align_mask",
                self.min_align_mask,
                "must be 0 or 2^n - 1 (low address bits kept by swiotlb)",
            ));
        }
        if !low_ones(self.virt_boundary_mask) {
            return Some((
                "virt_boundary_mask",
                self.virt_boundary_mask,
                "must be 0 or 2^n - 1",
            ));
        }
        None
    }

    /// Linux `check_sg_segment` (kernel/dma/debug.c) for one range: not
    /// longer than the max segment size, not across a segment boundary
    /// (`(start ^ end) & !boundary`).
    pub fn check_segment(&self, start: u64, len: u64) -> Result<(), ConstraintViolation> {
        if len > u64::from(self.max_seg_size) {
            return Err(ConstraintViolation::TooLong {
                max_seg_size: self.max_seg_size,
            });
        }
        let crosses = match start.checked_add(len.saturating_sub(1)) {
            Some(end) => (start ^ end) & !self.seg_boundary_mask != 0,
            None => self.seg_boundary_mask != u64::MAX,
        };
        if crosses {
            return Err(ConstraintViolation::CrossesBoundary {
                seg_boundary_mask: self.seg_boundary_mask,
            });
        }
        Ok(())
    }

    /// Non-zero if `[start, start + len)` may break a segment rule: the
    /// branch-free screen of the table checks ([`DmaConstraints::check_segment`]
    /// decides; a wrapping range screens as crossing every boundary but
    /// "none", as there).
    #[inline]
    pub(crate) fn screen(max: u64, not_boundary: u64, start: u64, len: u64) -> u64 {
        let end = start.wrapping_add(len).wrapping_sub(1);
        u64::from(len > max) | ((start ^ end) & not_boundary)
    }

    /// The CPU entries of `table` against every rule (segment size,
    /// boundary, virt-boundary gaps); the first offender as
    /// `(index, start, length, violation)`.
    pub fn check_table(
        &self,
        table: &SgTable,
    ) -> Result<(), (usize, PhysAddr, u64, ConstraintViolation)> {
        // One branch-free pass over the table (this runs on every map);
        // the entry-by-entry walk only when it finds something.
        let (max, nb) = (u64::from(self.max_seg_size), !self.seg_boundary_mask);
        let (bad, gaps) = match plain(table, table.orig_nents()) {
            Some(slots) => {
                let bad = slots.iter().fold(0, |acc, e| {
                    acc | Self::screen(max, nb, e.phys().raw(), u64::from(e.len()))
                });
                let gaps = if self.virt_boundary_mask == 0 {
                    0
                } else {
                    slots
                        .windows(2)
                        .fold(0, |acc, w| acc | w[0].phys_end() | w[1].phys().raw())
                };
                (bad, gaps)
            }
            None => {
                let (mut bad, mut gaps, mut prev_end, mut first) = (0u64, 0u64, 0u64, true);
                for e in table.iter() {
                    let (start, len) = (e.phys().raw(), u64::from(e.len()));
                    bad |= Self::screen(max, nb, start, len);
                    if !first {
                        gaps |= prev_end | start;
                    }
                    first = false;
                    prev_end = start.wrapping_add(len);
                }
                (bad, gaps)
            }
        };
        if bad == 0 && gaps & self.virt_boundary_mask == 0 {
            return Ok(());
        }
        self.find_in_table(table)
    }

    fn find_in_table(
        &self,
        table: &SgTable,
    ) -> Result<(), (usize, PhysAddr, u64, ConstraintViolation)> {
        let n = table.orig_nents();
        let v = self.virt_boundary_mask;
        for (i, e) in table.iter().enumerate() {
            let (phys, len) = (e.phys(), u64::from(e.len()));
            let fail = |why| (i, phys, len, why);
            self.check_segment(phys.raw(), len).map_err(fail)?;
            if v == 0 {
                continue;
            }
            if i > 0 && phys.raw() & v != 0 {
                return Err(fail(ConstraintViolation::VirtGapBefore {
                    virt_boundary_mask: v,
                }));
            }
            if i + 1 < n && phys.raw().wrapping_add(len) & v != 0 {
                return Err(fail(ConstraintViolation::VirtGapAfter {
                    virt_boundary_mask: v,
                }));
            }
        }
        Ok(())
    }

    /// The DMA segments of a mapped `table` against the segment rules
    /// (`check_sg_segment`); the first offender as
    /// `(index, DMA address, length, violation)`.
    pub fn check_mapped(
        &self,
        table: &SgTable,
    ) -> Result<(), (usize, DmaAddr, u64, ConstraintViolation)> {
        let (max, nb) = (u64::from(self.max_seg_size), !self.seg_boundary_mask);
        let screen = |acc, e: &SgEntry| {
            acc | Self::screen(max, nb, e.dma_address().raw(), u64::from(e.dma_len()))
        };
        let n = table.nents();
        let bad = if n == table.orig_nents() && n == table.alloc_nents() {
            // One DMA segment per CPU entry, no spare slot: every slot that
            // is not a chain link holds a segment.
            table
                .slots()
                .split(|e| e.is_chain())
                .fold(0u64, |acc, data| data.iter().fold(acc, screen))
        } else {
            table.dma_iter().fold(0u64, screen)
        };
        if bad == 0 {
            return Ok(());
        }
        for (i, e) in table.dma_iter().enumerate() {
            let (dma, len) = (e.dma_address(), u64::from(e.dma_len()));
            self.check_segment(dma.raw(), len)
                .map_err(|why| (i, dma, len, why))?;
        }
        Ok(())
    }
}

/// The first `count` entries of `table` as one slice, when no chain link
/// sits among its slots (a table built in one go): the checks then walk a
/// plain slice.
fn plain(table: &SgTable, count: usize) -> Option<&[SgEntry]> {
    if table.slot_count() == table.alloc_nents() {
        table.slots().get(..count)
    } else {
        None
    }
}

/// The rule a table entry breaks.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ConstraintViolation {
    /// Longer than `dma_get_max_seg_size` (kernel/dma/debug.c
    /// `check_sg_segment`: "mapping sg segment longer than device claims to
    /// support").
    TooLong {
        /// The device's max segment size.
        max_seg_size: u32,
    },
    /// Crosses a multiple of `seg_boundary_mask + 1` (`check_sg_segment`:
    /// "mapping sg segment across boundary").
    CrossesBoundary {
        /// The device's segment boundary mask.
        seg_boundary_mask: u64,
    },
    /// Not the first entry, and does not start on the virt boundary: a gap
    /// before it (block/blk-merge.c `bvec_gap_to_prev`).
    VirtGapBefore {
        /// The device's virt boundary mask.
        virt_boundary_mask: u64,
    },
    /// Not the last entry, and does not end on the virt boundary: a gap
    /// after it.
    VirtGapAfter {
        /// The device's virt boundary mask.
        virt_boundary_mask: u64,
    },
}

impl fmt::Display for ConstraintViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooLong { max_seg_size } => {
                write!(f, "is longer than the max segment size {max_seg_size:#x}")
            }
            Self::CrossesBoundary { seg_boundary_mask } => write!(
                f,
                "crosses a segment boundary (mask {seg_boundary_mask:#x})"
            ),
            Self::VirtGapBefore { virt_boundary_mask } => write!(
                f,
                "is not the first entry and does not start on the virt boundary (mask {virt_boundary_mask:#x})"
            ),
            Self::VirtGapAfter { virt_boundary_mask } => write!(
                f,
                "is not the last entry and does not end on the virt boundary (mask {virt_boundary_mask:#x})"
            ),
        }
    }
}

/// Which side of a table an offending entry was found on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum EntryAddr {
    /// A CPU entry (checked before mapping) at this physical address.
    Cpu(PhysAddr),
    /// A DMA segment the backend produced, at this DMA address.
    Dma(DmaAddr),
}

impl fmt::Display for EntryAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu(p) => write!(f, "CPU entry at {p}"),
            Self::Dma(d) => write!(f, "DMA segment at {d}"),
        }
    }
}
