//! The kind and constraint pass (`verify.rs`) answers exactly what a fresh
//! search of the memory map per entry answers: the same first mismatching
//! entry (index, range, claimed and actual kind), the same "all RAM", and
//! a screen that fires exactly when some entry breaks a segment rule. Over
//! random tables whose entries alternate RAM, peer BARs, stolen RAM and
//! device-private memory, straddle the edges between map ranges (touching
//! ranges of different kinds, holes, the last byte of the address space),
//! cross chain links, and over maps that gain and lose ranges between two
//! passes of the same table.

use super::constraints::DmaConstraints;
use super::verify::{verify, Pass, Screen};
use crate::error::DmaError;
use crate::memmap::{MemRange, MemoryMap, RangeKind};
use crate::types::{PhysAddr, ProviderId, SegKind};
use alloc::vec::Vec;
use proptest::prelude::*;
use scatterlist::{Pfn, SgAppendTable, SgTable, PAGE_SIZE};

const P1: ProviderId = ProviderId::new(1);
const P2: ProviderId = ProviderId::new(2);

/// The ranges of the test map: RAM from 0 touching a BAR touching stolen
/// RAM, a hole, device-private memory touching RAM, a second BAR, and RAM
/// up to the last byte of the address space.
fn ranges() -> Vec<MemRange> {
    let r = |start: u64, size: u64, kind| MemRange {
        start: PhysAddr::new(start),
        size,
        kind,
    };
    alloc::vec![
        r(0, 0x10_0000, RangeKind::Ram),
        r(
            0x10_0000,
            0x4_0000,
            RangeKind::Bar {
                provider: P1,
                bar: 0
            }
        ),
        r(0x14_0000, 0x4_0000, RangeKind::StolenRam { owner: P2 }),
        // hole [0x18_0000, 0x20_0000)
        r(0x20_0000, 0x4_0000, RangeKind::DevicePrivate { owner: P2 }),
        r(0x24_0000, 0x10_0000, RangeKind::Ram),
        r(
            0x40_0000,
            0x4_0000,
            RangeKind::Bar {
                provider: P2,
                bar: 2
            }
        ),
        r(u64::MAX - 0xf_ffff, 0x10_0000, RangeKind::Ram),
    ]
}

fn map_of(ranges: &[MemRange]) -> MemoryMap {
    let mut m = MemoryMap::new();
    for r in ranges {
        m.insert(*r).unwrap();
    }
    m
}

/// What the pass must answer, from one fresh search per entry and the
/// segment rules checked entry by entry.
fn fresh(memmap: &MemoryMap, table: &SgTable, c: &DmaConstraints) -> Result<Pass, DmaError> {
    let mut all_ram = true;
    for (index, e) in table.iter().enumerate() {
        let (phys, len, claimed) = (e.phys(), u64::from(e.len()), e.kind());
        let actual = memmap.kind_of_range(phys, len).map(|(_, k)| k);
        if actual != Some(claimed) {
            return Err(DmaError::KindMismatch {
                index,
                phys,
                len,
                claimed,
                actual,
            });
        }
        all_ram &= claimed == SegKind::Ram;
    }
    let mut suspect = false;
    let mut prev_end = None::<u64>;
    for e in table.iter() {
        let (start, len) = (e.phys().raw(), u64::from(e.len()));
        suspect |= c.check_segment(start, len).is_err();
        if let Some(p) = prev_end {
            suspect |= (p | start) & c.virt_boundary_mask != 0;
        }
        prev_end = Some(start.wrapping_add(len));
    }
    Ok(Pass { all_ram, suspect })
}

fn screen_of(c: &DmaConstraints) -> Screen {
    Screen {
        max: u64::from(c.max_seg_size),
        not_boundary: !c.seg_boundary_mask,
        virt: c.virt_boundary_mask,
    }
}

/// One entry: a map range (by index), an offset into it that may run past
/// its end, a length, and whether the entry lies about its kind.
fn entry() -> impl Strategy<Value = (usize, u64, u64, u8)> {
    (0usize..7, 0u64..0x11_0000, 1u64..0x3_0000, 0u8..8)
}

/// The kind an entry at `phys` claims: the map's (or RAM where the map has
/// nothing), or, with `lie` 0, another one.
fn claimed(memmap: &MemoryMap, phys: PhysAddr, lie: u8) -> SegKind {
    let truth = memmap.kind_of(phys).map_or(SegKind::Ram, |(_, k)| k);
    let others = [
        SegKind::Ram,
        SegKind::PeerBar(P1),
        SegKind::PeerBar(P2),
        SegKind::StolenRam(P2),
        SegKind::DevicePrivate(P2),
    ];
    match lie {
        0 => others[(phys.raw() as usize >> 12) % others.len()],
        _ => truth,
    }
}

/// A table of `entries` over `ranges` (touching entries of one kind
/// merge); `layout` 1 chains it after a small table (chain links in odd
/// places), 2 appends it page by page with room left for more (spare
/// allocated slots). `None` if no entry fits the address space.
fn table(
    ranges: &[MemRange],
    memmap: &MemoryMap,
    entries: &[(usize, u64, u64, u8)],
    layout: u8,
) -> Option<SgTable> {
    let mut pieces = Vec::new();
    for &(r, off, len, lie) in entries {
        let base = ranges[r % ranges.len()].start.raw();
        let start = base.saturating_add(off) & !0xfff;
        let len = len.min(u64::MAX - start);
        if len == 0 {
            continue;
        }
        let phys = PhysAddr::new(start);
        pieces.push((phys, len, claimed(memmap, phys, lie)));
    }
    if pieces.is_empty() {
        return None;
    }
    match layout % 3 {
        0 => SgTable::from_kinded_ranges(&pieces, 0x1_0000).ok(),
        1 => {
            let t = SgTable::from_kinded_ranges(&pieces, 0x1_0000).ok()?;
            let head = SgTable::from_kinded_ranges(
                &[(PhysAddr::new(0x8000), 0x1000, SegKind::Ram)],
                0x1_0000,
            )
            .ok()?;
            head.chain(t).ok()
        }
        _ => {
            let mut pages = Vec::new();
            for &(phys, len, kind) in &pieces {
                let first = phys.raw() / PAGE_SIZE;
                let n = len
                    .div_ceil(PAGE_SIZE)
                    .min(u64::MAX / PAGE_SIZE - first + 1);
                pages.extend((first..first + n).map(|p| (Pfn::new(p), kind)));
            }
            let size = pages.len() as u64 * PAGE_SIZE;
            let mut t = SgAppendTable::new();
            t.append_pages_kinds(&pages, 0, size, 0x1_0000, 8).ok()?;
            Some(t.into_table())
        }
    }
}

fn constraints(sel: u8) -> DmaConstraints {
    let mut c = DmaConstraints::pci(crate::mask::DmaMask::BITS_64);
    match sel % 4 {
        0 => {}
        1 => c.seg_boundary_mask = 0xffff,
        2 => c.max_seg_size = 0x1_0000,
        _ => c.virt_boundary_mask = 0xfff,
    }
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The pass and a fresh search per entry give the same answer, and go
    /// on doing so as ranges are removed from and added back to the map
    /// between passes over the same table.
    #[test]
    fn the_pass_answers_as_a_fresh_search_per_entry(
        entries in proptest::collection::vec(entry(), 1..300),
        layout in any::<u8>(),
        sel in any::<u8>(),
        drop_range in 0usize..7,
    ) {
        let all = ranges();
        let mut memmap = map_of(&all);
        let Some(t) = table(&all, &memmap, &entries, layout) else {
            return Ok(());
        };
        let c = constraints(sel);
        let sc = screen_of(&c);
        prop_assert_eq!(verify(&memmap, &t, sc), fresh(&memmap, &t, &c));
        // A range removed between two passes: the pass sees the map as it is.
        let gone = all[drop_range];
        memmap.remove_where(|k| *k == gone.kind);
        prop_assert_eq!(verify(&memmap, &t, sc), fresh(&memmap, &t, &c));
        // And registered again.
        memmap.insert(gone).unwrap();
        prop_assert_eq!(verify(&memmap, &t, sc), fresh(&memmap, &t, &c));
    }
}

#[test]
fn every_layout_is_covered() {
    let all = ranges();
    let memmap = map_of(&all);
    let entries: Vec<_> = (0..200u64).map(|i| (0, i * 0x2000, 0x1000, 1)).collect();
    let plain = table(&all, &memmap, &entries, 0).unwrap();
    assert_eq!(plain.alloc_nents(), plain.orig_nents());
    assert!(plain.slot_count() > plain.orig_nents(), "chain links");
    let spare = table(&all, &memmap, &entries, 2).unwrap();
    assert!(spare.alloc_nents() > spare.orig_nents(), "spare slots");
    let c = constraints(0);
    for t in [plain, spare, table(&all, &memmap, &entries, 1).unwrap()] {
        assert_eq!(verify(&memmap, &t, screen_of(&c)), fresh(&memmap, &t, &c));
    }
}

#[test]
fn an_entry_straddling_ram_and_a_bar_is_refused_after_ram_entries_set_the_hint() {
    let memmap = map_of(&ranges());
    // Two RAM entries inside RAM (the hint), then one running from RAM
    // into the BAR that touches it: the hint must not answer for it.
    let t = SgTable::from_kinded_ranges(
        &[
            (PhysAddr::new(0x1000), 0x1000, SegKind::Ram),
            (PhysAddr::new(0x3000), 0x1000, SegKind::Ram),
            (PhysAddr::new(0xf_f000), 0x2000, SegKind::Ram),
        ],
        0x1_0000,
    )
    .unwrap();
    let c = constraints(0);
    let got = verify(&memmap, &t, screen_of(&c));
    assert_eq!(got, fresh(&memmap, &t, &c));
    assert!(matches!(
        got,
        Err(DmaError::KindMismatch {
            index: 2,
            actual: None,
            ..
        })
    ));
}

#[test]
fn a_chain_link_is_never_an_entry_even_under_the_largest_ram_range() {
    // RAM from byte 0 to one byte short of the end of the address space
    // (the largest range there is): a chain link (start 0, length 0, last
    // byte u64::MAX) must not be taken for an entry inside it.
    let mut memmap = MemoryMap::new();
    memmap
        .insert(MemRange {
            start: PhysAddr::new(0),
            size: u64::MAX,
            kind: RangeKind::Ram,
        })
        .unwrap();
    let pieces: Vec<_> = (0..300u64)
        .map(|i| (PhysAddr::new(i * 0x2000), 0x1000, SegKind::Ram))
        .collect();
    let t = SgTable::from_kinded_ranges(&pieces, 0x1_0000).unwrap();
    assert!(t.slot_count() > t.orig_nents(), "the table has chain links");
    let c = constraints(0);
    let got = verify(&memmap, &t, screen_of(&c));
    assert_eq!(got, fresh(&memmap, &t, &c));
    assert_eq!(
        got,
        Ok(Pass {
            all_ram: true,
            suspect: false
        })
    );
    // The last byte of the address space is not in the map: an entry
    // ending there is refused, after RAM entries set the hint.
    let t = SgTable::from_kinded_ranges(
        &[
            (PhysAddr::new(0x2000), 0x1000, SegKind::Ram),
            (PhysAddr::new(u64::MAX - 0xfff), 0x1000, SegKind::Ram),
        ],
        0x1_0000,
    )
    .unwrap();
    let got = verify(&memmap, &t, screen_of(&c));
    assert_eq!(got, fresh(&memmap, &t, &c));
    assert!(matches!(
        got,
        Err(DmaError::KindMismatch {
            index: 1,
            actual: None,
            ..
        })
    ));
}

/// Through a device: an all-RAM table of 300 entries (chain links among
/// them) maps without a plan and moves the device's bytes; after the map
/// loses the RAM under its middle entry to device-private memory the next
/// map names that entry; with the RAM back it maps again.
#[test]
fn a_device_maps_sees_a_range_change_between_maps_and_maps_again() {
    use super::tests::device;
    use crate::attrs::DmaAttrs;
    use crate::direction::Direction;
    use crate::mem::CpuMemory;
    use crate::test_support::TestMem;
    use alloc::sync::Arc;
    use alloc::vec;

    const A: u64 = 0x2000_0000;
    let mem = Arc::new(TestMem::default());
    let (dev, _) = device(&mem);
    let pieces: Vec<_> = (0..300u64)
        .map(|i| (PhysAddr::new(A + i * 0x2000), 0x1000, SegKind::Ram))
        .collect();
    let mut t = SgTable::from_kinded_ranges(&pieces, 0x1_0000).unwrap();
    let (dir, attrs) = (Direction::FromDevice, DmaAttrs::empty());
    assert_eq!(dev.map_sgtable(&mut t, dir, attrs).unwrap(), 300);
    for (i, e) in t.dma_iter().enumerate() {
        let data = vec![i as u8 ^ 0xa5; e.dma_len() as usize];
        mem.write(PhysAddr::new(e.dma_address().raw()), &data)
            .unwrap();
    }
    dev.unmap_sgtable(&mut t, dir, attrs).unwrap();
    for (i, e) in t.iter().enumerate() {
        let mut seen = vec![0u8; e.len() as usize];
        mem.read(e.phys(), &mut seen).unwrap();
        assert!(seen.iter().all(|&b| b == i as u8 ^ 0xa5), "entry {i}");
    }
    // The page under entry 150 becomes device-private memory.
    let hole = A + 150 * 0x2000;
    let owner = ProviderId::new(7);
    let set = |private: bool| {
        let mut map = dev.context().memmap.write();
        map.remove_where(|k| matches!(k, RangeKind::Ram | RangeKind::DevicePrivate { .. }));
        let r = |start: u64, size: u64, kind| MemRange {
            start: PhysAddr::new(start),
            size,
            kind,
        };
        if private {
            map.insert(r(0, hole, RangeKind::Ram)).unwrap();
            map.insert(r(hole, 0x1000, RangeKind::DevicePrivate { owner }))
                .unwrap();
            map.insert(r(
                hole + 0x1000,
                0x2_0000_0000 - hole - 0x1000,
                RangeKind::Ram,
            ))
            .unwrap();
        } else {
            map.insert(r(0, 0x2_0000_0000, RangeKind::Ram)).unwrap();
        }
    };
    set(true);
    assert_eq!(
        dev.map_sgtable(&mut t, dir, attrs).unwrap_err(),
        DmaError::KindMismatch {
            index: 150,
            phys: PhysAddr::new(hole),
            len: 0x1000,
            claimed: SegKind::Ram,
            actual: Some(SegKind::DevicePrivate(owner)),
        }
    );
    assert!(!t.is_dma_mapped());
    assert_eq!(dev.live_tables(), 0);
    set(false);
    assert_eq!(dev.map_sgtable(&mut t, dir, attrs).unwrap(), 300);
    dev.unmap_sgtable(&mut t, dir, attrs).unwrap();
    assert_eq!(dev.live_tables(), 0);
}
