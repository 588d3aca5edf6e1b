//! DMA attributes with the bit values of Linux `DMA_ATTR_*`
//! (include/linux/dma-mapping.h), kept for trace and ABI familiarity.
//!
//! Unlike Linux, MMIO is primarily a property of the segment
//! ([`crate::SegKind`]); the `MMIO` bit is still accepted for single-range
//! maps of memory the memory map does not know.

bitflags::bitflags! {
    /// A set of `DMA_ATTR_*` flags.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
    pub struct DmaAttrs: u64 {
        /// `DMA_ATTR_WEAK_ORDERING`: reads and writes may be weakly ordered.
        const WEAK_ORDERING = 1 << 1;
        /// `DMA_ATTR_WRITE_COMBINE`: writes may be buffered.
        const WRITE_COMBINE = 1 << 2;
        /// `DMA_ATTR_NO_KERNEL_MAPPING`: no CPU mapping for an allocation.
        const NO_KERNEL_MAPPING = 1 << 4;
        /// `DMA_ATTR_SKIP_CPU_SYNC`: no cache maintenance on map/unmap.
        const SKIP_CPU_SYNC = 1 << 5;
        /// `DMA_ATTR_FORCE_CONTIGUOUS`: physically contiguous allocation.
        const FORCE_CONTIGUOUS = 1 << 6;
        /// `DMA_ATTR_ALLOC_SINGLE_PAGES`: build from order-0 pages.
        const ALLOC_SINGLE_PAGES = 1 << 7;
        /// `DMA_ATTR_NO_WARN`: suppress allocation-failure warnings.
        const NO_WARN = 1 << 8;
        /// `DMA_ATTR_PRIVILEGED`: privileged access only (`IOMMU_PRIV`).
        const PRIVILEGED = 1 << 9;
        /// `DMA_ATTR_MMIO`: not RAM; no cache maintenance, no bouncing.
        const MMIO = 1 << 10;
        /// `DMA_ATTR_DEBUGGING_IGNORE_CACHELINES`: silence dma-debug overlap checks.
        const DEBUGGING_IGNORE_CACHELINES = 1 << 11;
        /// `DMA_ATTR_REQUIRE_COHERENT`: fail rather than bounce or flush.
        const REQUIRE_COHERENT = 1 << 12;
        /// `DMA_ATTR_CC_SHARED` (proposed upstream): shared memory in a CoCo guest.
        const CC_SHARED = 1 << 13;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_bit_values() {
        assert_eq!(DmaAttrs::SKIP_CPU_SYNC.bits(), 0x20);
        assert_eq!(DmaAttrs::MMIO.bits(), 0x400);
        assert_eq!(DmaAttrs::REQUIRE_COHERENT.bits(), 0x1000);
        // Bits 0 and 3 were removed upstream and must stay unused.
        assert_eq!(DmaAttrs::from_bits(1), None);
        assert_eq!(DmaAttrs::from_bits(1 << 3), None);
    }
}
