//! DMA data direction, with the Linux numeric values of
//! `enum dma_data_direction` (include/linux/dma-direction.h).

use crate::error::DmaError;
use crate::p2p::{Route, Verdict};
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

    /// True if the oracle's verdict lets a mapping in this direction go
    /// peer to peer: `ToDevice` needs client reads, `FromDevice` client
    /// writes, `Bidirectional` both.
    #[inline]
    pub const fn permitted_by(self, verdict: &Verdict) -> bool {
        verdict.permits(self.device_reads(), self.device_writes())
    }

    /// The route's verdict if it allows a mapping in this direction, else the
    /// `Fallback` error [`DmaError::P2pUnreachable`] with its reason chain.
    pub fn check_route(self, route: &Route) -> Result<Verdict, DmaError> {
        if self.permitted_by(&route.verdict) {
            Ok(route.verdict)
        } else {
            Err(DmaError::p2p_unreachable(route))
        }
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

    /// A host bridge that forwards posted writes but not reads: only
    /// `FromDevice` may go peer to peer; the others get the `Fallback` error
    /// with the oracle's reason chain.
    #[test]
    fn route_check_follows_the_access_the_direction_needs() {
        use crate::error::ErrorKind;
        use crate::p2p::{Access, MapType, Reason};
        use alloc::string::ToString;
        use alloc::vec;
        let route = Route {
            provider: "01:00.0".parse().unwrap(),
            client: "02:00.0".parse().unwrap(),
            verdict: Verdict {
                map_type: MapType::ThruHostBridge,
                distance: 4,
                read: false,
                write: true,
            },
            reasons: vec![Reason::AccessNotForwarded {
                bridge: "hb0".into(),
                access: Access::Read,
            }],
        };
        assert!(Direction::FromDevice.permitted_by(&route.verdict));
        assert!(!Direction::ToDevice.permitted_by(&route.verdict));
        assert!(!Direction::Bidirectional.permitted_by(&route.verdict));
        assert_eq!(Direction::FromDevice.check_route(&route), Ok(route.verdict));
        for d in [Direction::ToDevice, Direction::Bidirectional] {
            let e = d.check_route(&route).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Fallback);
            assert_eq!(
                e,
                DmaError::P2pUnreachable {
                    provider: route.provider,
                    client: route.client,
                    reasons: vec![route.reasons[0].to_string()],
                }
            );
        }
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
