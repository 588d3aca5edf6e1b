//! Offset translation windows between CPU physical and bus addresses.
//!
//! One concept serves two Linux structures:
//! * a device's `dma-ranges` (`struct bus_dma_region {cpu_start, dma_start,
//!   size}`, include/linux/dma-direct.h `translate_phys_to_dma` /
//!   `translate_dma_to_phys`), which say how RAM appears to a device;
//! * a host bridge's MMIO windows (`pci_host_bridge::windows` with their
//!   `offset`, drivers/pci/host-bridge.c `pcibios_resource_to_bus`), which say
//!   how BARs appear on the bus.
//!
//! Difference from Linux, on purpose: Linux translates only the start address
//! and leaves the range check to `dma_capable`; here a range must lie wholly
//! inside one window or translation fails with the offending range, because a
//! range straddling two windows would be split on the bus.

use crate::types::{BusAddr, PhysAddr};
use alloc::vec::Vec;
use core::fmt;

/// `[cpu_start, cpu_start + size)` appears on the bus at `[bus_start, bus_start + size)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct AddrWindow {
    /// First CPU physical address of the window.
    pub cpu_start: PhysAddr,
    /// The bus address `cpu_start` appears at.
    pub bus_start: BusAddr,
    /// Size in bytes; never zero in a valid map.
    pub size: u64,
}

impl AddrWindow {
    /// An identity window (bus == CPU address).
    pub const fn identity(start: PhysAddr, size: u64) -> Self {
        Self {
            cpu_start: start,
            bus_start: BusAddr::new(start.raw()),
            size,
        }
    }

    /// True if the whole CPU range `[phys, phys + len)` lies inside the window.
    pub fn contains_phys(&self, phys: PhysAddr, len: u64) -> bool {
        match (phys.offset_from(self.cpu_start), len) {
            (Some(off), l) if l > 0 => off < self.size && l <= self.size - off,
            _ => false,
        }
    }

    /// True if the whole bus range `[bus, bus + len)` lies inside the window.
    pub fn contains_bus(&self, bus: BusAddr, len: u64) -> bool {
        match (bus.offset_from(self.bus_start), len) {
            (Some(off), l) if l > 0 => off < self.size && l <= self.size - off,
            _ => false,
        }
    }
}

/// Why a set of windows is not a valid map; names the offending windows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WindowError {
    /// A window of size zero.
    Empty {
        /// The window.
        window: AddrWindow,
    },
    /// A window whose CPU or bus side wraps past `u64::MAX`.
    Wraps {
        /// The window.
        window: AddrWindow,
    },
    /// Two windows overlap on the CPU side or on the bus side.
    Overlap {
        /// The first window.
        a: AddrWindow,
        /// The second window.
        b: AddrWindow,
    },
}

impl fmt::Display for WindowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowError::Empty { window } => {
                write!(f, "window at cpu {} has size 0", window.cpu_start)
            }
            WindowError::Wraps { window } => write!(
                f,
                "window cpu {} / bus {} + {:#x} wraps the address space",
                window.cpu_start, window.bus_start, window.size
            ),
            WindowError::Overlap { a, b } => write!(
                f,
                "windows cpu {}+{:#x}->bus {} and cpu {}+{:#x}->bus {} overlap",
                a.cpu_start, a.size, a.bus_start, b.cpu_start, b.size, b.bus_start
            ),
        }
    }
}

impl core::error::Error for WindowError {}

/// A range that a [`WindowMap`] cannot translate; `dma_api::DmaError`
/// converts each variant into its namesake.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TranslateError {
    /// A zero-length range.
    ZeroLength {
        /// Its start.
        phys: PhysAddr,
    },
    /// `phys + len` wraps the address space.
    PhysOverflow {
        /// Range start.
        phys: PhysAddr,
        /// Its length.
        len: u64,
    },
    /// No single window holds the CPU range.
    NotTranslatable {
        /// Range start.
        phys: PhysAddr,
        /// Its length.
        len: u64,
    },
    /// No single window holds the bus range.
    BusNotTranslatable {
        /// Range start.
        bus: BusAddr,
        /// Its length.
        len: u64,
    },
}

impl fmt::Display for TranslateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TranslateError::ZeroLength { phys } => write!(f, "zero-length range at {phys}"),
            TranslateError::PhysOverflow { phys, len } => {
                write!(f, "range {phys} + {len:#x} wraps the address space")
            }
            TranslateError::NotTranslatable { phys, len } => {
                write!(f, "no window translates {phys} + {len:#x}")
            }
            TranslateError::BusNotTranslatable { bus, len } => {
                write!(f, "no window translates bus {bus} + {len:#x}")
            }
        }
    }
}

impl core::error::Error for TranslateError {}

/// A validated set of non-overlapping windows with O(log n) lookup both ways.
///
/// # Invariants
/// `by_cpu` is sorted by `cpu_start`; `by_bus` holds indices into `by_cpu`
/// sorted by `bus_start`; no two windows overlap on either side; no window is
/// empty or wraps.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct WindowMap {
    by_cpu: Vec<AddrWindow>,
    by_bus: Vec<u32>,
}

fn overlaps(a_start: u64, a_size: u64, b_start: u64, b_size: u64) -> bool {
    // Both ranges are known not to wrap and not to be empty; compare last
    // bytes so a window ending at the very top (last byte u64::MAX) works.
    a_start <= b_start + (b_size - 1) && b_start <= a_start + (a_size - 1)
}

impl WindowMap {
    /// An empty map: nothing translates.
    pub const fn empty() -> Self {
        Self {
            by_cpu: Vec::new(),
            by_bus: Vec::new(),
        }
    }

    /// One identity window over the whole 64-bit space but its last byte
    /// (x86's default: bus address == physical address).
    pub fn identity_all() -> Self {
        Self::new([AddrWindow::identity(PhysAddr::ZERO, u64::MAX)]).expect("one window is valid")
    }

    /// Validates and indexes `windows`.
    pub fn new(windows: impl IntoIterator<Item = AddrWindow>) -> Result<Self, WindowError> {
        let mut by_cpu: Vec<AddrWindow> = windows.into_iter().collect();
        for w in &by_cpu {
            if w.size == 0 {
                return Err(WindowError::Empty { window: *w });
            }
            if w.cpu_start.last_of(w.size).is_none() || w.bus_start.last_of(w.size).is_none() {
                return Err(WindowError::Wraps { window: *w });
            }
        }
        by_cpu.sort_by_key(|w| w.cpu_start);
        for pair in by_cpu.windows(2) {
            if overlaps(
                pair[0].cpu_start.raw(),
                pair[0].size,
                pair[1].cpu_start.raw(),
                pair[1].size,
            ) {
                return Err(WindowError::Overlap {
                    a: pair[0],
                    b: pair[1],
                });
            }
        }
        let mut by_bus: Vec<u32> = (0..by_cpu.len() as u32).collect();
        by_bus.sort_by_key(|&i| by_cpu[i as usize].bus_start);
        for pair in by_bus.windows(2) {
            let (a, b) = (by_cpu[pair[0] as usize], by_cpu[pair[1] as usize]);
            if overlaps(a.bus_start.raw(), a.size, b.bus_start.raw(), b.size) {
                return Err(WindowError::Overlap { a, b });
            }
        }
        Ok(Self { by_cpu, by_bus })
    }

    /// The windows, sorted by CPU address.
    pub fn windows(&self) -> &[AddrWindow] {
        &self.by_cpu
    }

    /// True if there are no windows.
    pub fn is_empty(&self) -> bool {
        self.by_cpu.is_empty()
    }

    /// The window whose CPU side contains `phys`, if any.
    pub fn window_for_phys(&self, phys: PhysAddr) -> Option<&AddrWindow> {
        let i = self.by_cpu.partition_point(|w| w.cpu_start <= phys);
        let w = self.by_cpu.get(i.checked_sub(1)?)?;
        w.contains_phys(phys, 1).then_some(w)
    }

    /// The window whose bus side contains `bus`, if any.
    pub fn window_for_bus(&self, bus: BusAddr) -> Option<&AddrWindow> {
        let i = self
            .by_bus
            .partition_point(|&k| self.by_cpu[k as usize].bus_start <= bus);
        let w = &self.by_cpu[*self.by_bus.get(i.checked_sub(1)?)? as usize];
        w.contains_bus(bus, 1).then_some(w)
    }

    /// Translates a CPU range to the bus. The whole range must lie in one window.
    pub fn phys_to_bus(&self, phys: PhysAddr, len: u64) -> Result<BusAddr, TranslateError> {
        if len == 0 {
            return Err(TranslateError::ZeroLength { phys });
        }
        if phys.last_of(len).is_none() {
            return Err(TranslateError::PhysOverflow { phys, len });
        }
        let w = self
            .window_for_phys(phys)
            .filter(|w| w.contains_phys(phys, len))
            .ok_or(TranslateError::NotTranslatable { phys, len })?;
        let off = phys.raw() - w.cpu_start.raw();
        Ok(BusAddr::new(w.bus_start.raw() + off))
    }

    /// Translates a bus range back to CPU physical addresses.
    pub fn bus_to_phys(&self, bus: BusAddr, len: u64) -> Result<PhysAddr, TranslateError> {
        let w = self
            .window_for_bus(bus)
            .filter(|w| len > 0 && w.contains_bus(bus, len))
            .ok_or(TranslateError::BusNotTranslatable { bus, len })?;
        let off = bus.raw() - w.bus_start.raw();
        Ok(PhysAddr::new(w.cpu_start.raw() + off))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(cpu: u64, bus: u64, size: u64) -> AddrWindow {
        AddrWindow {
            cpu_start: PhysAddr::new(cpu),
            bus_start: BusAddr::new(bus),
            size,
        }
    }

    #[test]
    fn translates_at_edges() {
        let m = WindowMap::new([
            w(0x8000_0000, 0x0, 0x4000_0000),
            w(0x1_0000_0000, 0x8000_0000, 0x1000),
        ])
        .unwrap();
        assert_eq!(
            m.phys_to_bus(PhysAddr::new(0x8000_0000), 1),
            Ok(BusAddr::new(0))
        );
        assert_eq!(
            m.phys_to_bus(PhysAddr::new(0xbfff_ffff), 1),
            Ok(BusAddr::new(0x3fff_ffff))
        );
        assert!(m.phys_to_bus(PhysAddr::new(0xbfff_ffff), 2).is_err());
        assert!(m.phys_to_bus(PhysAddr::new(0x7fff_ffff), 1).is_err());
        assert_eq!(
            m.bus_to_phys(BusAddr::new(0x8000_0fff), 1),
            Ok(PhysAddr::new(0x1_0000_0fff))
        );
        assert!(m.bus_to_phys(BusAddr::new(0x8000_1000), 1).is_err());
        assert_eq!(
            m.phys_to_bus(PhysAddr::new(0x9000_0000), 0),
            Err(TranslateError::ZeroLength {
                phys: PhysAddr::new(0x9000_0000)
            })
        );
    }

    #[test]
    fn rejects_bad_maps() {
        assert!(matches!(
            WindowMap::new([w(0, 0, 0)]),
            Err(WindowError::Empty { .. })
        ));
        assert!(matches!(
            WindowMap::new([w(u64::MAX, 0, 2)]),
            Err(WindowError::Wraps { .. })
        ));
        assert!(matches!(
            WindowMap::new([w(0, 0, 0x2000), w(0x1000, 0x10000, 0x1000)]),
            Err(WindowError::Overlap { .. })
        ));
        assert!(matches!(
            WindowMap::new([w(0, 0x10000, 0x1000), w(0x5000, 0x10800, 0x1000)]),
            Err(WindowError::Overlap { .. })
        ));
    }

    #[test]
    fn window_ending_at_the_top() {
        let top = w(u64::MAX - 0xfff, 0x1000, 0x1000);
        let m = WindowMap::new([w(0, 0x10_0000, 0x1000), top]).unwrap();
        assert_eq!(m.phys_to_bus(PhysAddr::MAX, 1), Ok(BusAddr::new(0x1fff)));
        assert!(matches!(
            WindowMap::new([top, w(u64::MAX, 0x10_0000, 1)]),
            Err(WindowError::Overlap { .. })
        ));
    }

    #[test]
    fn identity_covers_everything_but_wraps() {
        let m = WindowMap::identity_all();
        assert_eq!(
            m.phys_to_bus(PhysAddr::new(0x1234), 0x10),
            Ok(BusAddr::new(0x1234))
        );
        assert!(m.phys_to_bus(PhysAddr::new(u64::MAX - 1), 4).is_err());
    }
}
