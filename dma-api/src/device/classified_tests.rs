//! Classified tables: checked once, mapped without re-checking while the
//! stamp holds, checked again after the memory map or the constraints
//! change.

use super::constraints::{ConstraintViolation, EntryAddr};
use super::tests::device;
use crate::attrs::DmaAttrs;
use crate::direction::Direction;
use crate::error::DmaError;
use crate::mem::CpuMemory;
use crate::memmap::{MemRange, RangeKind};
use crate::test_support::TestMem;
use crate::types::{PhysAddr, ProviderId, SegKind};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use scatterlist::SgTable;

const A: u64 = 0x2000_0000;

fn ram_table(ranges: &[(u64, u64)]) -> SgTable {
    let r: Vec<(PhysAddr, u64)> = ranges.iter().map(|&(p, l)| (PhysAddr::new(p), l)).collect();
    SgTable::from_ranges(&r, SegKind::Ram, 0x10_0000).unwrap()
}

#[test]
fn a_classified_table_maps_again_and_again_moving_the_device_bytes() {
    let mem = Arc::new(TestMem::default());
    let (dev, _) = device(&mem);
    let mut t = dev
        .classify(ram_table(&[(A, 0x1000), (A + 0x3000, 0x800)]))
        .unwrap();
    assert!(t.is_all_ram());
    for round in 0..3u8 {
        let n = dev
            .map_classified(&mut t, Direction::FromDevice, DmaAttrs::empty())
            .unwrap();
        assert_eq!(n, 2);
        // The device writes through the addresses it was given (identity
        // dma-ranges), the CPU reads them where the table points.
        for e in t.table().dma_iter() {
            let data = vec![round ^ 0x5a; e.dma_len() as usize];
            mem.write(PhysAddr::new(e.dma_address().raw()), &data)
                .unwrap();
        }
        dev.unmap_classified(&mut t, Direction::FromDevice, DmaAttrs::empty())
            .unwrap();
        for e in t.table().iter() {
            let mut seen = vec![0u8; e.len() as usize];
            mem.read(e.phys(), &mut seen).unwrap();
            assert!(seen.iter().all(|&b| b == round ^ 0x5a));
        }
    }
    assert_eq!(dev.live_tables(), 0);
    assert!(t.into_table().is_ok());
}

#[test]
fn a_forged_kind_is_refused_at_classification() {
    let mem = Arc::new(TestMem::default());
    let (dev, _) = device(&mem);
    let forged = SgTable::from_ranges(
        &[(PhysAddr::new(A), 0x1000)],
        SegKind::PeerBar(ProviderId::new(1)),
        0x10_0000,
    )
    .unwrap();
    assert!(matches!(
        dev.classify(forged),
        Err(DmaError::KindMismatch { index: 0, .. })
    ));
}

#[test]
fn a_memory_map_change_makes_the_next_map_check_again() {
    let mem = Arc::new(TestMem::default());
    let (dev, _) = device(&mem);
    let mut t = dev.classify(ram_table(&[(A, 0x1000)])).unwrap();
    dev.map_classified(&mut t, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    dev.unmap_classified(&mut t, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    // The RAM under the table goes away (hot-remove): only the first
    // 256 MiB stay.
    {
        let mut map = dev.context().memmap.write();
        map.remove_where(|k| *k == RangeKind::Ram);
        map.insert(MemRange {
            start: PhysAddr::new(0),
            size: 0x1000_0000,
            kind: RangeKind::Ram,
        })
        .unwrap();
    }
    let e = dev
        .map_classified(&mut t, Direction::ToDevice, DmaAttrs::empty())
        .unwrap_err();
    assert_eq!(
        e,
        DmaError::KindMismatch {
            index: 0,
            phys: PhysAddr::new(A),
            len: 0x1000,
            claimed: SegKind::Ram,
            actual: None,
        }
    );
    assert!(!t.table().is_dma_mapped());
    assert_eq!(dev.live_tables(), 0);
}

#[test]
fn a_constraint_change_makes_the_next_map_check_again() {
    let mem = Arc::new(TestMem::default());
    let (dev, _) = device(&mem);
    let mut t = dev.classify(ram_table(&[(A, 0x1_0000)])).unwrap();
    dev.set_max_seg_size(0x8000).unwrap();
    let e = dev
        .map_classified(&mut t, Direction::ToDevice, DmaAttrs::empty())
        .unwrap_err();
    assert_eq!(
        e,
        DmaError::ConstraintViolated {
            device: dev.bdf(),
            index: 0,
            at: EntryAddr::Cpu(PhysAddr::new(A)),
            len: 0x1_0000,
            violation: ConstraintViolation::TooLong {
                max_seg_size: 0x8000
            },
        }
    );
    // Back to the old limit: the table maps again (and is re-stamped).
    dev.set_max_seg_size(0x1_0000).unwrap();
    dev.map_classified(&mut t, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert!(t.into_table().is_err(), "a mapped table is not handed out");
}
