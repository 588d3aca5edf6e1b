//! DMA data direction, with the Linux numeric values of
//! `enum dma_data_direction` (include/linux/dma-direction.h).

use core::fmt;

/// Which way data moves between memory and the device.
///
/// The direction picks IOMMU protection and cache maintenance like Linux, and
/// — unlike Linux — also the *access* asked of the P2P oracle: a device that
/// receives data `ToDevice` issues reads, one that produces data `FromDevice`
/// issues (posted) writes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(u32)]
pub enum Direction {
    /// Data may move both ways (`DMA_BIDIRECTIONAL` = 0).
    Bidirectional = 0,
    /// Memory → device: the device reads (`DMA_TO_DEVICE` = 1).
    ToDevice = 1,
    /// Device → memory: the device writes (`DMA_FROM_DEVICE` = 2).
    FromDevice = 2,
}

impl Direction {
    /// True if the device issues reads of the mapped memory.
    #[inline]
    pub const fn device_reads(self) -> bool {
        matches!(self, Direction::Bidirectional | Direction::ToDevice)
    }

    /// True if the device issues writes to the mapped memory.
    #[inline]
    pub const fn device_writes(self) -> bool {
        matches!(self, Direction::Bidirectional | Direction::FromDevice)
    }

    /// The Linux value (`valid_dma_direction` accepts 0..=2).
    #[inline]
    pub const fn as_raw(self) -> u32 {
        self as u32
    }

    /// Parses a Linux direction value; `DMA_NONE` (3) and anything else is
    /// rejected with the offending value (Linux `BUG_ON`s instead).
    pub const fn from_raw(raw: u32) -> Result<Self, u32> {
        match raw {
            0 => Ok(Direction::Bidirectional),
            1 => Ok(Direction::ToDevice),
            2 => Ok(Direction::FromDevice),
            other => Err(other),
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Bidirectional => "bidirectional",
            Direction::ToDevice => "to-device",
            Direction::FromDevice => "from-device",
        })
    }
}

impl core::str::FromStr for Direction {
    type Err = alloc::string::String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bidirectional" | "bidir" | "rw" => Ok(Direction::Bidirectional),
            "to-device" | "to_device" => Ok(Direction::ToDevice),
            "from-device" | "from_device" => Ok(Direction::FromDevice),
            other => Err(alloc::format!(
                "unknown direction {other:?} (expected to-device, from-device or bidirectional)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_per_direction() {
        assert!(Direction::ToDevice.device_reads() && !Direction::ToDevice.device_writes());
        assert!(!Direction::FromDevice.device_reads() && Direction::FromDevice.device_writes());
        assert!(
            Direction::Bidirectional.device_reads() && Direction::Bidirectional.device_writes()
        );
    }

    #[test]
    fn linux_values() {
        for d in [
            Direction::Bidirectional,
            Direction::ToDevice,
            Direction::FromDevice,
        ] {
            assert_eq!(Direction::from_raw(d.as_raw()), Ok(d));
        }
        assert_eq!(Direction::from_raw(3), Err(3));
        assert_eq!("to-device".parse::<Direction>(), Ok(Direction::ToDevice));
        assert!("sideways".parse::<Direction>().is_err());
    }
}
