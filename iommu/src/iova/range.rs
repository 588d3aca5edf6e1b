//! One allocated IOVA range and the size arithmetic shared by the allocator.

use dma_api::Iova;

/// An allocated range of whole granules in an IOVA space.
///
/// Kernel equivalent: `struct iova {pfn_lo, pfn_hi}` (include/linux/iova.h),
/// here with the granule shift carried along so that byte addresses can be
/// derived without the domain.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct IovaRange {
    pfn: u64,
    pages: u64,
    shift: u8,
}

impl IovaRange {
    pub(crate) const fn from_pfn(pfn: u64, pages: u64, shift: u32) -> Self {
        Self {
            pfn,
            pages,
            shift: shift as u8,
        }
    }

    /// First IOVA of the range (granule aligned).
    pub const fn start(&self) -> Iova {
        Iova::new(self.pfn << self.shift)
    }

    /// Last IOVA of the range (inclusive).
    pub const fn last(&self) -> Iova {
        Iova::new(((self.pfn + self.pages) << self.shift).wrapping_sub(1))
    }

    /// Length in bytes.
    pub const fn len(&self) -> u64 {
        self.pages << self.shift
    }

    /// Never true: a range holds at least one granule.
    pub const fn is_empty(&self) -> bool {
        self.pages == 0
    }

    /// Number of granules.
    pub const fn pages(&self) -> u64 {
        self.pages
    }

    /// First granule frame number (`pfn_lo` in the kernel).
    pub const fn pfn_lo(&self) -> u64 {
        self.pfn
    }

    /// Last granule frame number (`pfn_hi` in the kernel).
    pub const fn pfn_hi(&self) -> u64 {
        self.pfn + self.pages - 1
    }

    /// The granule shift of the domain the range came from.
    pub const fn granule_shift(&self) -> u32 {
        self.shift as u32
    }
}

/// The last granule frame that lies wholly at or below the inclusive byte
/// limit `limit`, or `None` if not even frame 0 does.
///
/// Linux uses `limit >> shift`, which for a limit that does not end a
/// granule lets the last range end past the limit; DMA masks always end a
/// granule, so the two agree for them.
#[inline]
pub(crate) const fn limit_pfn(limit: Iova, shift: u32) -> Option<u64> {
    match limit.raw().checked_add(1) {
        None => Some(u64::MAX >> shift),
        Some(end) => (end >> shift).checked_sub(1),
    }
}

/// `fls_long(n - 1)`: the order of `roundup_pow_of_two(n)` (0 for n <= 1).
/// This is both the kernel's size-alignment shift and `order_base_2(n)`.
#[inline]
pub(crate) const fn order_base_2(n: u64) -> u32 {
    if n <= 1 {
        0
    } else {
        64 - (n - 1).leading_zeros()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders() {
        assert_eq!(order_base_2(1), 0);
        assert_eq!(order_base_2(2), 1);
        assert_eq!(order_base_2(3), 2);
        assert_eq!(order_base_2(4), 2);
        assert_eq!(order_base_2(5), 3);
        assert_eq!(order_base_2(32), 5);
        assert_eq!(order_base_2(33), 6);
    }

    #[test]
    fn addresses() {
        let r = IovaRange::from_pfn(0x10, 3, 12);
        assert_eq!(r.start(), Iova::new(0x10000));
        assert_eq!(r.last(), Iova::new(0x12fff));
        assert_eq!(r.len(), 0x3000);
        assert_eq!(r.pfn_hi(), 0x12);
    }
}
