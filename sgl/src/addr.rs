//! Address-space newtypes.
//!
//! Every address space a DMA mapping crosses gets its own type so that a CPU
//! physical address can never be programmed into a device by accident, and an
//! IOVA can never be handed to the CPU. They live in this bottom crate (rather
//! than in `dma-api`, which re-exports them) because a scatterlist entry holds
//! both a CPU physical address and a DMA address and the dependency direction is
//! `scatterlist <- dma-api`.
//!
//! Conversions are explicit (`new`, `raw`, `from_*` helpers); there is no
//! `From<u64>`. Arithmetic is checked and returns `None` on wrap, never panics.

use core::fmt;

/// log2 of the page size the whole workspace models (4 KiB, like x86_64 and
/// the common arm64 configuration).
pub const PAGE_SHIFT: u32 = 12;
/// The page size in bytes.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;

macro_rules! addr_type {
    ($(#[$m:meta])* $name:ident, $tag:literal) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[repr(transparent)]
        pub struct $name(u64);

        impl $name {
            /// The zero address.
            pub const ZERO: Self = Self(0);
            /// The highest representable address.
            pub const MAX: Self = Self(u64::MAX);

            /// Wraps a raw address value. Explicit by design: there is no `From<u64>`.
            #[inline]
            pub const fn new(raw: u64) -> Self {
                Self(raw)
            }

            /// The raw address value, for printing, hashing or register programming.
            #[inline]
            pub const fn raw(self) -> u64 {
                self.0
            }

            /// `self + off`, or `None` if the result would wrap past `u64::MAX`.
            #[inline]
            pub const fn checked_add(self, off: u64) -> Option<Self> {
                match self.0.checked_add(off) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }

            /// `self - off`, or `None` if the result would go below zero.
            #[inline]
            pub const fn checked_sub(self, off: u64) -> Option<Self> {
                match self.0.checked_sub(off) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }

            /// The byte distance `self - base`, or `None` if `base > self`.
            #[inline]
            pub const fn offset_from(self, base: Self) -> Option<u64> {
                self.0.checked_sub(base.0)
            }

            /// The address of the last byte of `[self, self + len)`, or `None`
            /// when `len == 0` or the range wraps.
            #[inline]
            pub const fn last_of(self, len: u64) -> Option<Self> {
                if len == 0 {
                    return None;
                }
                match self.0.checked_add(len - 1) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }

            /// Rounds down to a multiple of `align` (a power of two; otherwise `None`).
            #[inline]
            pub const fn align_down(self, align: u64) -> Option<Self> {
                if !align.is_power_of_two() {
                    return None;
                }
                Some(Self(self.0 & !(align - 1)))
            }

            /// Rounds up to a multiple of `align` (a power of two), or `None` on
            /// wrap or a bad alignment.
            #[inline]
            pub const fn align_up(self, align: u64) -> Option<Self> {
                if !align.is_power_of_two() {
                    return None;
                }
                match self.0.checked_add(align - 1) {
                    Some(v) => Some(Self(v & !(align - 1))),
                    None => None,
                }
            }

            /// True if the address is a multiple of `align` (a power of two).
            #[inline]
            pub const fn is_aligned(self, align: u64) -> bool {
                align.is_power_of_two() && self.0 & (align - 1) == 0
            }

            /// Offset inside its 4 KiB page.
            #[inline]
            pub const fn page_offset(self) -> u64 {
                self.0 & (PAGE_SIZE - 1)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($tag, "({:#x})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }

        impl fmt::LowerHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }
    };
}

addr_type!(
    /// A CPU physical address (Linux `phys_addr_t`).
    PhysAddr,
    "PhysAddr"
);
addr_type!(
    /// An address a PCI device emits on the bus without IOMMU translation
    /// (Linux: the result of `phys_to_dma` / `pci_bus_address`).
    BusAddr,
    "BusAddr"
);
addr_type!(
    /// An I/O virtual address inside one IOMMU domain.
    Iova,
    "Iova"
);
addr_type!(
    /// What a driver programs into its device (Linux `dma_addr_t`): either a
    /// bus address or an IOVA. Which one is recorded beside it (the segment's
    /// `BUS_ADDRESS` DMA flag, or the mapping's route), not inside it, so the
    /// scatterlist entry stays 32 bytes like Linux's.
    DmaAddr,
    "DmaAddr"
);

impl PhysAddr {
    /// The page frame number holding this address.
    #[inline]
    pub const fn pfn(self) -> Pfn {
        Pfn(self.0 >> PAGE_SHIFT)
    }
}

impl DmaAddr {
    /// The DMA address for an untranslated bus address.
    #[inline]
    pub const fn from_bus(bus: BusAddr) -> Self {
        Self(bus.0)
    }

    /// The DMA address for an IOVA.
    #[inline]
    pub const fn from_iova(iova: Iova) -> Self {
        Self(iova.0)
    }

    /// Reinterprets this DMA address as a bus address (caller knows the route
    /// bypassed the IOMMU).
    #[inline]
    pub const fn as_bus(self) -> BusAddr {
        BusAddr(self.0)
    }

    /// Reinterprets this DMA address as an IOVA (caller knows the route goes
    /// through an IOMMU domain).
    #[inline]
    pub const fn as_iova(self) -> Iova {
        Iova(self.0)
    }
}

/// A page frame number: a physical address shifted right by [`PAGE_SHIFT`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct Pfn(u64);

impl Pfn {
    /// Wraps a raw page frame number.
    #[inline]
    pub const fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw page frame number.
    #[inline]
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// The physical address of the first byte of the page, or `None` when the
    /// frame number is too large to shift into a 64-bit address.
    #[inline]
    pub const fn phys(self) -> Option<PhysAddr> {
        if self.0 > (u64::MAX >> PAGE_SHIFT) {
            None
        } else {
            Some(PhysAddr(self.0 << PAGE_SHIFT))
        }
    }

    /// The next frame number, or `None` at the top.
    #[inline]
    pub const fn next(self) -> Option<Self> {
        match self.0.checked_add(1) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }
}

impl fmt::Debug for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pfn({:#x})", self.0)
    }
}

impl fmt::Display for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_arith_refuses_wrap() {
        assert_eq!(PhysAddr::MAX.checked_add(1), None);
        assert_eq!(PhysAddr::ZERO.checked_sub(1), None);
        assert_eq!(
            PhysAddr::new(0x1000).checked_add(0x10),
            Some(PhysAddr::new(0x1010))
        );
        assert_eq!(PhysAddr::new(u64::MAX - 1).last_of(2), Some(PhysAddr::MAX));
        assert_eq!(PhysAddr::new(u64::MAX - 1).last_of(3), None);
        assert_eq!(PhysAddr::new(5).last_of(0), None);
    }

    #[test]
    fn alignment() {
        assert_eq!(
            BusAddr::new(0x1fff).align_down(0x1000),
            Some(BusAddr::new(0x1000))
        );
        assert_eq!(
            BusAddr::new(0x1001).align_up(0x1000),
            Some(BusAddr::new(0x2000))
        );
        assert_eq!(BusAddr::new(u64::MAX).align_up(0x1000), None);
        assert_eq!(BusAddr::new(0x1000).align_up(3), None);
        assert!(Iova::new(0x2000).is_aligned(0x1000));
        assert!(!Iova::new(0x2001).is_aligned(0x1000));
    }

    #[test]
    fn pfn_round_trip() {
        let p = PhysAddr::new(0x1234_5678);
        assert_eq!(p.pfn(), Pfn::new(0x12345));
        assert_eq!(p.pfn().phys(), Some(PhysAddr::new(0x1234_5000)));
        assert_eq!(Pfn::new(u64::MAX).phys(), None);
        assert_eq!(p.page_offset(), 0x678);
    }

    #[test]
    fn formatting() {
        extern crate alloc;
        use alloc::format;
        assert_eq!(format!("{:?}", DmaAddr::new(0xff)), "DmaAddr(0xff)");
        assert_eq!(format!("{}", Iova::new(0x10)), "0x10");
    }
}
