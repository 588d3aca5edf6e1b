//! The machine's memory map: what every physical range *is*.
//!
//! Linux answers "is this page P2P memory?" per page from the page's pgmap
//! (`is_pci_p2pdma_page`, include/linux/memremap.h). Here the machine
//! classifies each physical range once; a scatterlist segment records the
//! resulting [`SegKind`] when it is built, so the mapping path never looks a
//! page up. Lookups are a binary search over non-overlapping sorted ranges.

use crate::types::{PhysAddr, ProviderId, SegKind};
use alloc::vec::Vec;
use core::fmt;

/// What a physical range holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum RangeKind {
    /// System RAM.
    Ram,
    /// A PCI device's memory BAR (MMIO).
    Bar {
        /// The device that owns the BAR.
        provider: ProviderId,
        /// The BAR index (0..=5).
        bar: u8,
    },
    /// A system-RAM carve-out presented as a device's memory (an APU's "VRAM").
    StolenRam {
        /// The device that owns the carve-out.
        owner: ProviderId,
    },
    /// HMM device-private memory: neither CPU- nor peer-addressable.
    DevicePrivate {
        /// The device that owns it.
        owner: ProviderId,
    },
}

impl RangeKind {
    /// The segment kind a scatterlist entry over this range carries.
    pub const fn seg_kind(self) -> SegKind {
        match self {
            RangeKind::Ram => SegKind::Ram,
            RangeKind::Bar { provider, .. } => SegKind::PeerBar(provider),
            RangeKind::StolenRam { owner } => SegKind::StolenRam(owner),
            RangeKind::DevicePrivate { owner } => SegKind::DevicePrivate(owner),
        }
    }
}

impl fmt::Display for RangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RangeKind::Ram => f.write_str("ram"),
            RangeKind::Bar { provider, bar } => write!(f, "bar{bar} of {provider}"),
            RangeKind::StolenRam { owner } => write!(f, "stolen-ram of {owner}"),
            RangeKind::DevicePrivate { owner } => write!(f, "device-private of {owner}"),
        }
    }
}

/// One classified range `[start, start + size)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct MemRange {
    /// First byte.
    pub start: PhysAddr,
    /// Length in bytes (never zero in a map).
    pub size: u64,
    /// What it is.
    pub kind: RangeKind,
}

impl MemRange {
    /// The last byte, `None` if the range is empty or wraps.
    pub fn last(&self) -> Option<PhysAddr> {
        self.start.last_of(self.size)
    }

    /// True if `[phys, phys + len)` lies wholly inside this range.
    pub fn contains(&self, phys: PhysAddr, len: u64) -> bool {
        match phys.offset_from(self.start) {
            Some(off) => len > 0 && off < self.size && len <= self.size - off,
            None => false,
        }
    }
}

impl fmt::Display for MemRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} +{:#x}] {}", self.start, self.size, self.kind)
    }
}

/// Why a range cannot enter the map; names the offending range(s).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MemMapError {
    /// A zero-sized range.
    Empty {
        /// The range.
        range: MemRange,
    },
    /// A range that wraps past the top of the address space.
    Wraps {
        /// The range.
        range: MemRange,
    },
    /// The new range overlaps one already in the map.
    Overlap {
        /// The range already in the map.
        existing: MemRange,
        /// The range being added.
        new: MemRange,
    },
}

impl fmt::Display for MemMapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemMapError::Empty { range } => write!(f, "memory range {range} is empty"),
            MemMapError::Wraps { range } => {
                write!(f, "memory range {range} wraps the address space")
            }
            MemMapError::Overlap { existing, new } => {
                write!(f, "memory range {new} overlaps {existing}")
            }
        }
    }
}

impl core::error::Error for MemMapError {}

/// Sorted, non-overlapping classified ranges.
///
/// # Invariants
/// `ranges` is sorted by `start`; no range is empty or wraps; no two overlap.
/// `generation` grows with every change, so a table classified against one
/// generation is known to be stale under another.
#[derive(Clone, Debug, Default)]
pub struct MemoryMap {
    ranges: Vec<MemRange>,
    generation: u64,
    /// The last byte of the highest RAM range, kept by every change so
    /// [`ram_last`](Self::ram_last) costs O(1) (it is asked once per device
    /// when a machine is assembled).
    ram_last: Option<PhysAddr>,
}

/// Two maps are equal when they classify the same ranges the same way,
/// whatever their histories.
impl PartialEq for MemoryMap {
    fn eq(&self, other: &Self) -> bool {
        self.ranges == other.ranges
    }
}

impl Eq for MemoryMap {}

impl MemoryMap {
    /// An empty map.
    pub const fn new() -> Self {
        Self {
            ranges: Vec::new(),
            generation: 0,
            ram_last: None,
        }
    }

    /// Bumped by every successful change ([`insert`](Self::insert),
    /// [`remove_where`](Self::remove_where) that removed something).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The pieces of `[phys, phys + len)` with their kinds, split where the
    /// map's ranges end: one lookup, then a walk over the ranges it spans.
    /// `Err` names the first byte no range covers.
    pub fn classify(
        &self,
        phys: PhysAddr,
        len: u64,
        mut each: impl FnMut(PhysAddr, u64, SegKind),
    ) -> Result<(), PhysAddr> {
        let Some(last) = phys.last_of(len) else {
            return Err(phys);
        };
        let mut at = phys;
        let mut i = self.ranges.partition_point(|r| r.start <= at);
        i = i.saturating_sub(1);
        while at <= last {
            let r = self.ranges.get(i).filter(|r| r.contains(at, 1)).ok_or(at)?;
            let r_last = r.last().ok_or(at)?;
            let piece_last = if r_last < last { r_last } else { last };
            let n = piece_last.raw() - at.raw() + 1;
            each(at, n, r.kind.seg_kind());
            if piece_last == last {
                return Ok(());
            }
            at = PhysAddr::new(piece_last.raw() + 1);
            i += 1;
        }
        Ok(())
    }

    /// Adds a range; rejects empty, wrapping or overlapping ranges. A range
    /// adjacent to one of the same [`RangeKind`] (same kind and owner; for a
    /// BAR, same BAR) merges with it, so the map never holds two touching
    /// ranges of one kind.
    pub fn insert(&mut self, range: MemRange) -> Result<(), MemMapError> {
        if range.size == 0 {
            return Err(MemMapError::Empty { range });
        }
        let Some(last) = range.last() else {
            return Err(MemMapError::Wraps { range });
        };
        let i = self.ranges.partition_point(|r| r.start <= range.start);
        if let Some(prev) = i.checked_sub(1).and_then(|p| self.ranges.get(p)) {
            if prev.last().is_some_and(|pl| pl >= range.start) {
                return Err(MemMapError::Overlap {
                    existing: *prev,
                    new: range,
                });
            }
        }
        if let Some(next) = self.ranges.get(i) {
            if next.start <= last {
                return Err(MemMapError::Overlap {
                    existing: *next,
                    new: range,
                });
            }
        }
        // Adjacent ranges of the same kind (and owner) are one range: a
        // buffer across the seam of two `[[ram]]` entries is one piece of RAM
        // for every consumer (classification, `kind_of_range`, the report).
        let joins = |a: &MemRange, b: &MemRange| {
            a.kind == b.kind
                && a.last()
                    .is_some_and(|al| al.raw().checked_add(1) == Some(b.start.raw()))
        };
        let mut merged = range;
        let mut at = i;
        if let Some(prev) = i.checked_sub(1).and_then(|p| self.ranges.get(p)).copied() {
            if joins(&prev, &merged) {
                merged = MemRange {
                    start: prev.start,
                    size: prev.size + merged.size,
                    kind: merged.kind,
                };
                at = i - 1;
                self.ranges.remove(at);
            }
        }
        if let Some(next) = self.ranges.get(at).copied() {
            if joins(&merged, &next) {
                merged.size += next.size;
                self.ranges.remove(at);
            }
        }
        self.ranges.insert(at, merged);
        if merged.kind == RangeKind::Ram {
            self.ram_last = self.ram_last.max(merged.last());
        }
        self.generation += 1;
        Ok(())
    }

    /// Removes every range whose kind satisfies `pred` (hot-remove of a device).
    pub fn remove_where(&mut self, mut pred: impl FnMut(&RangeKind) -> bool) {
        let before = self.ranges.len();
        self.ranges.retain(|r| !pred(&r.kind));
        if self.ranges.len() != before {
            self.generation += 1;
            self.ram_last = self
                .ranges
                .iter()
                .filter(|r| r.kind == RangeKind::Ram)
                .filter_map(|r| r.last())
                .max();
        }
    }

    /// The range containing `phys` and its segment kind, in O(log n).
    pub fn kind_of(&self, phys: PhysAddr) -> Option<(&MemRange, SegKind)> {
        self.kind_of_range(phys, 1)
    }

    /// The range wholly containing `[phys, phys + len)`, if one does.
    pub fn kind_of_range(&self, phys: PhysAddr, len: u64) -> Option<(&MemRange, SegKind)> {
        let i = self.ranges.partition_point(|r| r.start <= phys);
        let r = self.ranges.get(i.checked_sub(1)?)?;
        r.contains(phys, len).then_some((r, r.kind.seg_kind()))
    }

    /// All ranges, sorted by start.
    pub fn ranges(&self) -> &[MemRange] {
        &self.ranges
    }

    /// Total bytes of [`RangeKind::Ram`].
    pub fn ram_bytes(&self) -> u64 {
        self.ranges
            .iter()
            .filter(|r| r.kind == RangeKind::Ram)
            .fold(0u64, |a, r| a.saturating_add(r.size))
    }

    /// The last byte of system RAM (the end `dma_addressing_limited`
    /// compares a device's mask with), `None` without RAM. O(1).
    pub fn ram_last(&self) -> Option<PhysAddr> {
        self.ram_last
    }

    /// Re-checks the invariants (sorted, non-empty, non-wrapping, disjoint).
    pub fn check_invariants(&self) -> Result<(), MemMapError> {
        for r in &self.ranges {
            if r.size == 0 {
                return Err(MemMapError::Empty { range: *r });
            }
            if r.last().is_none() {
                return Err(MemMapError::Wraps { range: *r });
            }
        }
        for w in self.ranges.windows(2) {
            if let [a, b] = w {
                if a.last().is_none_or(|al| al >= b.start) {
                    return Err(MemMapError::Overlap {
                        existing: *a,
                        new: *b,
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, size: u64, kind: RangeKind) -> MemRange {
        MemRange {
            start: PhysAddr::new(start),
            size,
            kind,
        }
    }

    #[test]
    fn lookup_and_kinds() {
        let p = ProviderId::new(7);
        let mut m = MemoryMap::new();
        m.insert(r(0, 0x8000_0000, RangeKind::Ram)).unwrap();
        m.insert(r(
            0xe000_0000,
            0x1000,
            RangeKind::Bar {
                provider: p,
                bar: 2,
            },
        ))
        .unwrap();
        m.insert(r(
            0x8000_0000,
            0x1000_0000,
            RangeKind::StolenRam { owner: p },
        ))
        .unwrap();
        assert_eq!(
            m.kind_of(PhysAddr::new(0x7fff_ffff)).unwrap().1,
            SegKind::Ram
        );
        assert_eq!(
            m.kind_of(PhysAddr::new(0xe000_0fff)).unwrap().1,
            SegKind::PeerBar(p)
        );
        assert!(m.kind_of(PhysAddr::new(0xe000_1000)).is_none());
        assert_eq!(
            m.kind_of(PhysAddr::new(0x8000_0000)).unwrap().1,
            SegKind::StolenRam(p)
        );
        assert!(m
            .kind_of_range(PhysAddr::new(0x7fff_f000), 0x2000)
            .is_none());
        assert_eq!(m.ram_bytes(), 0x8000_0000);
        m.check_invariants().unwrap();
    }

    #[test]
    fn overlap_names_both_ranges() {
        let mut m = MemoryMap::new();
        let a = r(0x1000, 0x2000, RangeKind::Ram);
        let b = r(0x2fff, 0x10, RangeKind::Ram);
        m.insert(a).unwrap();
        assert_eq!(
            m.insert(b),
            Err(MemMapError::Overlap {
                existing: a,
                new: b
            })
        );
        let c = r(0x0, 0x1001, RangeKind::Ram);
        assert_eq!(
            m.insert(c),
            Err(MemMapError::Overlap {
                existing: a,
                new: c
            })
        );
        let e = r(u64::MAX, 2, RangeKind::Ram);
        assert_eq!(m.insert(e), Err(MemMapError::Wraps { range: e }));
        let z = r(5, 0, RangeKind::Ram);
        assert_eq!(m.insert(z), Err(MemMapError::Empty { range: z }));
        // Adjacent is fine, and of one kind it merges.
        m.insert(r(0x3000, 0x10, RangeKind::Ram)).unwrap();
        m.insert(r(0x0, 0x1000, RangeKind::Ram)).unwrap();
        assert_eq!(m.ranges(), &[r(0, 0x3010, RangeKind::Ram)]);
    }

    #[test]
    fn adjacent_ranges_of_one_kind_and_owner_merge() {
        let (p, q) = (ProviderId::new(1), ProviderId::new(2));
        let mut m = MemoryMap::new();
        m.insert(r(0x1000, 0x1000, RangeKind::Ram)).unwrap();
        // Another kind, or another owner, stays apart.
        m.insert(r(0x2000, 0x1000, RangeKind::StolenRam { owner: p }))
            .unwrap();
        m.insert(r(0x3000, 0x1000, RangeKind::StolenRam { owner: q }))
            .unwrap();
        m.insert(r(0x4000, 0x1000, RangeKind::StolenRam { owner: q }))
            .unwrap();
        let bar = |b| RangeKind::Bar {
            provider: p,
            bar: b,
        };
        m.insert(r(0x5000, 0x1000, bar(0))).unwrap();
        m.insert(r(0x6000, 0x1000, bar(2))).unwrap();
        // Fills a hole between two RAM ranges: all three become one.
        m.insert(r(0x10_0000, 0x1000, RangeKind::Ram)).unwrap();
        m.insert(r(0x10_2000, 0x1000, RangeKind::Ram)).unwrap();
        m.insert(r(0x10_1000, 0x1000, RangeKind::Ram)).unwrap();
        assert_eq!(
            m.ranges(),
            &[
                r(0x1000, 0x1000, RangeKind::Ram),
                r(0x2000, 0x1000, RangeKind::StolenRam { owner: p }),
                r(0x3000, 0x2000, RangeKind::StolenRam { owner: q }),
                r(0x5000, 0x1000, bar(0)),
                r(0x6000, 0x1000, bar(2)),
                r(0x10_0000, 0x3000, RangeKind::Ram),
            ]
        );
        assert!(m.kind_of_range(PhysAddr::new(0x10_0800), 0x2000).is_some());
        m.check_invariants().unwrap();
    }
}
