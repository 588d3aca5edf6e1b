//! Where the machine's shared structures live in RAM.
//!
//! Everything the DMA layer itself needs is carved from the largest RAM
//! range below 4 GiB (so 32-bit devices reach it, like Linux's `ZONE_DMA32`
//! swiotlb and coherent allocations), from the top down: the IOMMU
//! page-table frame pool, the swiotlb pool, the coherent/fallback pool. What
//! stays below is free for drivers' buffers (`scratch`).

use super::error::AssemblyError;
use dma_api::memmap::{MemoryMap, RangeKind};
use dma_api::PhysAddr;

const FOUR_GIB: u64 = 1 << 32;

/// Sizes of the carved regions.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LayoutSizes {
    /// IOMMU page-table frames.
    pub page_tables: u64,
    /// The swiotlb bounce pool (Linux default: 64 MiB).
    pub swiotlb: u64,
    /// Coherent allocations and fallback staging buffers.
    pub coherent: u64,
}

impl Default for LayoutSizes {
    fn default() -> Self {
        Self {
            page_tables: 128 << 20,
            swiotlb: 64 << 20,
            coherent: 64 << 20,
        }
    }
}

/// The carved regions, each `(start, size)`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RamLayout {
    /// IOMMU page-table frame pool.
    pub page_tables: (PhysAddr, u64),
    /// swiotlb pool.
    pub swiotlb: (PhysAddr, u64),
    /// The context's RAM pool (coherent and fallback buffers).
    pub coherent: (PhysAddr, u64),
    /// The rest of the low RAM range, free for test and driver buffers.
    pub scratch: (PhysAddr, u64),
}

impl RamLayout {
    /// Carves `sizes` (each rounded up to 2 MiB) from the top of the largest
    /// RAM range below 4 GiB of `memmap`.
    pub fn carve(memmap: &MemoryMap, sizes: LayoutSizes) -> Result<Self, AssemblyError> {
        const ALIGN: u64 = 2 << 20;
        let up = |x: u64| x.div_ceil(ALIGN).saturating_mul(ALIGN);
        let (pt, tlb, coh) = (up(sizes.page_tables), up(sizes.swiotlb), up(sizes.coherent));
        let needed = pt.saturating_add(tlb).saturating_add(coh);
        let (lo, hi) = memmap
            .ranges()
            .iter()
            .filter(|r| r.kind == RangeKind::Ram && r.start.raw() < FOUR_GIB)
            .map(|r| {
                let lo = r.start.raw().div_ceil(ALIGN).saturating_mul(ALIGN);
                let end = r.start.raw().saturating_add(r.size).min(FOUR_GIB);
                (lo, (end / ALIGN * ALIGN).max(lo))
            })
            .max_by_key(|(lo, hi)| hi - lo)
            .unwrap_or((0, 0));
        // Leave the first 2 MiB of the range to firmware-ish use, like the
        // kernel's low memory, so scratch never starts at physical 0.
        let usable = (hi - lo).saturating_sub(ALIGN);
        if usable < needed || needed == 0 {
            return Err(AssemblyError::NoLowRam {
                needed,
                largest: hi - lo,
            });
        }
        let pt_start = hi - pt;
        let tlb_start = pt_start - tlb;
        let coh_start = tlb_start - coh;
        let scratch_start = lo + ALIGN;
        Ok(Self {
            page_tables: (PhysAddr::new(pt_start), pt),
            swiotlb: (PhysAddr::new(tlb_start), tlb),
            coherent: (PhysAddr::new(coh_start), coh),
            scratch: (PhysAddr::new(scratch_start), coh_start - scratch_start),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dma_api::memmap::MemRange;

    fn map(ranges: &[(u64, u64)]) -> MemoryMap {
        let mut m = MemoryMap::default();
        for &(start, size) in ranges {
            m.insert(MemRange {
                start: PhysAddr::new(start),
                size,
                kind: RangeKind::Ram,
            })
            .unwrap();
        }
        m
    }

    #[test]
    fn carves_from_the_top_of_the_largest_low_range() {
        // 512 MiB low, 3 GiB straddling 4 GiB (clipped to the 1 GiB below
        // it, which wins).
        let m = map(&[(0, 512 << 20), (3 << 30, 3 << 30)]);
        let l = RamLayout::carve(&m, LayoutSizes::default()).unwrap();
        assert_eq!(
            l.page_tables,
            (PhysAddr::new((4 << 30) - (128 << 20)), 128 << 20)
        );
        assert_eq!(l.swiotlb.0.raw() + l.swiotlb.1, l.page_tables.0.raw());
        assert_eq!(l.coherent.0.raw() + l.coherent.1, l.swiotlb.0.raw());
        assert_eq!(l.scratch.0, PhysAddr::new((3 << 30) + (2 << 20)));
        assert_eq!(l.scratch.0.raw() + l.scratch.1, l.coherent.0.raw());
    }

    #[test]
    fn too_little_low_ram_is_a_typed_error() {
        let m = map(&[(0, 64 << 20), (1 << 32, 1 << 34)]);
        let e = RamLayout::carve(&m, LayoutSizes::default()).unwrap_err();
        assert_eq!(
            e,
            AssemblyError::NoLowRam {
                needed: 256 << 20,
                largest: 64 << 20
            }
        );
        let none = map(&[(1 << 32, 1 << 34)]);
        assert!(matches!(
            RamLayout::carve(&none, LayoutSizes::default()),
            Err(AssemblyError::NoLowRam { largest: 0, .. })
        ));
    }
}
