//! DMA addressing masks (`DMA_BIT_MASK(n)` in include/linux/dma-mapping.h).

use crate::types::BusAddr;
use core::fmt;

/// A DMA mask that cannot exist; `dma_api::DmaError` converts it into its
/// `InvalidMask` / `InvalidMaskValue` variants.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MaskError {
    /// A width outside 1..=64.
    InvalidMask {
        /// The width asked for.
        bits: u32,
    },
    /// A mask value that is not a non-zero run of low ones.
    InvalidMaskValue {
        /// The value given.
        value: u64,
    },
}

impl fmt::Display for MaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaskError::InvalidMask { bits } => {
                write!(f, "DMA mask width {bits} is outside 1..=64")
            }
            MaskError::InvalidMaskValue { value } => {
                write!(f, "DMA mask value {value:#x} is not a run of low one bits")
            }
        }
    }
}

impl core::error::Error for MaskError {}

/// How many low address bits a device can drive: 1..=64.
///
/// `DMA_BIT_MASK(n)` is `GENMASK_ULL(n - 1, 0)`, so `n = 64` is all ones.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DmaMask(u8);

impl DmaMask {
    /// 32-bit addressing (legacy PCI).
    pub const BITS_32: Self = Self(32);
    /// 64-bit addressing.
    pub const BITS_64: Self = Self(64);

    /// Compile-time checked constructor: `DmaMask::of::<40>()`.
    pub const fn of<const BITS: u32>() -> Self {
        const { assert!(BITS >= 1 && BITS <= 64, "DmaMask bits must be 1..=64") };
        Self(BITS as u8)
    }

    /// Fallible constructor; a width outside 1..=64 is an `Invalid` error naming it.
    pub const fn new(bits: u32) -> Result<Self, MaskError> {
        if bits >= 1 && bits <= 64 {
            Ok(Self(bits as u8))
        } else {
            Err(MaskError::InvalidMask { bits })
        }
    }

    /// Accepts a mask value like `0xffff_ffff`; it must be a non-zero run of low ones.
    pub const fn from_value(value: u64) -> Result<Self, MaskError> {
        if value == 0 || (value & value.wrapping_add(1)) != 0 {
            return Err(MaskError::InvalidMaskValue { value });
        }
        Ok(Self(value.count_ones() as u8))
    }

    /// The width in bits.
    pub const fn bits(self) -> u32 {
        self.0 as u32
    }

    /// The mask value, `GENMASK_ULL(bits - 1, 0)`.
    pub const fn value(self) -> u64 {
        if self.0 >= 64 {
            u64::MAX
        } else {
            (1u64 << self.0) - 1
        }
    }

    /// Linux `dma_capable` for the mask alone: true if every byte of
    /// `[addr, addr + len)` is addressable. A zero length or a wrapping range is
    /// not capable.
    pub const fn covers(self, addr: BusAddr, len: u64) -> bool {
        match addr.last_of(len) {
            Some(last) => last.raw() <= self.value(),
            None => false,
        }
    }

    /// The smaller of two masks (Linux `min_not_zero(mask, bus_dma_limit)`).
    pub const fn min(self, other: DmaMask) -> DmaMask {
        if self.0 <= other.0 {
            self
        } else {
            other
        }
    }
}

impl fmt::Debug for DmaMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DmaMask({} bits)", self.0)
    }
}

impl fmt::Display for DmaMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-bit", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(DmaMask::of::<32>().value(), 0xffff_ffff);
        assert_eq!(DmaMask::of::<64>().value(), u64::MAX);
        assert_eq!(DmaMask::of::<1>().value(), 1);
        assert_eq!(DmaMask::from_value(0xff_ffff_ffff).unwrap().bits(), 40);
    }

    #[test]
    fn bad_masks_are_invalid_with_value() {
        assert_eq!(DmaMask::new(0), Err(MaskError::InvalidMask { bits: 0 }));
        assert_eq!(DmaMask::new(65), Err(MaskError::InvalidMask { bits: 65 }));
        assert_eq!(
            DmaMask::from_value(0xf0),
            Err(MaskError::InvalidMaskValue { value: 0xf0 })
        );
        assert_eq!(
            DmaMask::from_value(0),
            Err(MaskError::InvalidMaskValue { value: 0 })
        );
    }

    #[test]
    fn covers_edges() {
        let m = DmaMask::BITS_32;
        assert!(m.covers(BusAddr::new(0xffff_f000), 0x1000));
        assert!(!m.covers(BusAddr::new(0xffff_f000), 0x1001));
        assert!(!m.covers(BusAddr::new(0), 0));
        assert!(!DmaMask::BITS_64.covers(BusAddr::MAX, 2));
        assert!(DmaMask::BITS_64.covers(BusAddr::MAX, 1));
    }
}
