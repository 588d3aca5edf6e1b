//! dma-debug: scatter-gather tables (`debug_dma_map_sg` / `debug_dma_unmap_sg`).

mod common;

use common::{table, Arena, IOVA_BASE};
use dma_api::debug::{DebugReport, DmaDebug, MapKind};
use dma_api::port::{DmaBackend, SegPlan, SegTarget};
use dma_api::{BusAddr, Direction, DmaAddr, DmaAttrs};
use scatterlist::DmaFlags;

const FROM: Direction = Direction::FromDevice;
const TO: Direction = Direction::ToDevice;

fn none() -> DmaAttrs {
    DmaAttrs::empty()
}

#[test]
fn merged_table_with_a_bus_segment_maps_and_unmaps_cleanly() {
    let d = DmaDebug::new(Arena::iommu());
    let (mut t, mut plan) = table(&[
        (0x1_0000, 4096),
        (0x3_0000, 4096),
        (0x5_0000, 4096),
        (0x7_0000, 4096),
    ]);
    plan[2].target = SegTarget::PeerBus(BusAddr::new(0xe000_0000));
    let n = d.map_sg(&mut t, &plan, TO, none()).unwrap();
    // [RAM RAM] [BUS] [RAM]
    assert_eq!(n, 3);
    let segs: Vec<(DmaAddr, u32, DmaFlags)> = t
        .dma_iter()
        .map(|s| (s.dma_address(), s.dma_len(), s.dma_flags()))
        .collect();
    assert_eq!(segs[0], (DmaAddr::new(IOVA_BASE), 8192, DmaFlags::EMPTY));
    assert_eq!(
        segs[1],
        (DmaAddr::new(0xe000_0000), 4096, DmaFlags::BUS_ADDRESS)
    );
    assert_eq!(d.active_count(), 3);
    d.sync_for_device(segs[0].0.checked_add(4096).unwrap(), 4096, TO)
        .unwrap();
    d.unmap_sg(&mut t, &plan, TO, none()).unwrap();
    assert_eq!(d.reports(), vec![]);
    assert_eq!(d.active_count(), 0);
    assert_eq!(d.inner().live_count(), 0);
}

#[test]
fn unmap_with_another_entry_count() {
    let d = DmaDebug::new(Arena::direct());
    let (mut t, plan) = table(&[(0x1_0000, 4096), (0x3_0000, 4096), (0x5_0000, 4096)]);
    d.map_sg(&mut t, &plan, FROM, none()).unwrap();
    let segs: Vec<(DmaAddr, u32)> = t
        .dma_iter()
        .map(|s| (s.dma_address(), s.dma_len()))
        .collect();
    // The driver hands back a table of two entries over the first two
    // segments.
    let (mut t2, plan2) = table(&[(0x1_0000, 4096), (0x3_0000, 4096)]);
    for (s, &(dma, len)) in t2.dma_iter_mut().zip(segs.iter()) {
        s.set_dma(dma, len, DmaFlags::EMPTY).unwrap();
    }
    t2.set_nents(2).unwrap();
    d.unmap_sg(&mut t2, &plan2, FROM, none()).unwrap();
    assert_eq!(
        d.take_reports(),
        vec![
            DebugReport::UnmapNentsMismatch {
                dma: segs[0].0,
                mapped_nents: 3,
                unmap_nents: 2
            },
            DebugReport::UnmapNentsMismatch {
                dma: segs[1].0,
                mapped_nents: 3,
                unmap_nents: 2
            },
        ]
    );
    // The third segment is still active: a leak at detach.
    assert_eq!(
        d.detach(),
        vec![DebugReport::Leak {
            kind: MapKind::Sg,
            dma: segs[2].0,
            len: 4096,
            dir: FROM,
            target: None
        }]
    );
}

#[test]
fn unmap_with_another_plan() {
    let d = DmaDebug::new(Arena::direct());
    let (mut t, plan) = table(&[(0x1_0000, 4096), (0x3_0000, 4096)]);
    d.map_sg(&mut t, &plan, FROM, none()).unwrap();
    let first = t.dma_iter().next().unwrap().dma_address();
    let mut lie = plan.clone();
    lie[1] = SegPlan {
        phys: lie[1].phys,
        target: SegTarget::PeerHostBridge,
    };
    d.unmap_sg(&mut t, &lie, FROM, none()).unwrap();
    assert_eq!(
        d.reports(),
        vec![DebugReport::UnmapTargetMismatch {
            dma: first,
            mapped: SegTarget::Ram,
            unmapped: SegTarget::PeerHostBridge,
        }]
    );
}

#[test]
fn unmap_with_another_direction_reports_each_segment() {
    let d = DmaDebug::new(Arena::direct());
    let (mut t, plan) = table(&[(0x1_0000, 4096), (0x3_0000, 4096)]);
    d.map_sg(&mut t, &plan, FROM, none()).unwrap();
    let segs: Vec<DmaAddr> = t.dma_iter().map(|s| s.dma_address()).collect();
    d.unmap_sg(&mut t, &plan, TO, none()).unwrap();
    assert_eq!(
        d.reports(),
        vec![
            DebugReport::UnmapDirectionMismatch {
                dma: segs[0],
                mapped: FROM,
                unmapped: TO
            },
            DebugReport::UnmapDirectionMismatch {
                dma: segs[1],
                mapped: FROM,
                unmapped: TO
            },
        ]
    );
}

#[test]
fn table_unmapped_twice() {
    let d = DmaDebug::new(Arena::iommu());
    let (mut t, plan) = table(&[(0x1_0000, 4096)]);
    d.map_sg(&mut t, &plan, FROM, none()).unwrap();
    let copy = t.clone();
    d.unmap_sg(&mut t, &plan, FROM, none()).unwrap();
    let mut again = copy;
    assert!(d.unmap_sg(&mut again, &plan, FROM, none()).is_err());
    assert_eq!(
        d.reports(),
        vec![DebugReport::DoubleUnmap {
            kind: MapKind::Sg,
            dma: DmaAddr::new(IOVA_BASE),
            len: 4096,
            mapped_kind: MapKind::Sg,
            mapped_len: 4096,
        }]
    );
}

/// Two live tables whose first entries are the same page (mapped twice
/// without an IOMMU: one DMA address) but whose later entries differ. Each
/// unmap_sg undoes its own table: the first segment's perfect fits are
/// told apart by the plan, so neither unmap is compared with the other
/// table's plan (Linux compares no physical address on unmap_sg at all).
/// Found by the `dma_ops` fuzz target (tests/tests/fuzz_regressions.rs).
#[test]
fn two_tables_sharing_their_first_segment_unmap_cleanly_in_any_order() {
    for second_first in [true, false] {
        let d = DmaDebug::new(Arena::direct());
        let (mut a, plan_a) = table(&[(0x1_0000, 4096), (0x3_0000, 4096)]);
        let (mut b, plan_b) = table(&[(0x1_0000, 4096), (0x5_0000, 4096)]);
        assert_eq!(d.map_sg(&mut a, &plan_a, TO, none()).unwrap(), 2);
        assert_eq!(d.map_sg(&mut b, &plan_b, TO, none()).unwrap(), 2);
        let first = |t: &scatterlist::SgTable| t.dma_iter().next().unwrap().dma_address();
        assert_eq!(first(&a), first(&b), "one DMA address for the shared page");
        if second_first {
            d.unmap_sg(&mut b, &plan_b, TO, none()).unwrap();
            d.unmap_sg(&mut a, &plan_a, TO, none()).unwrap();
        } else {
            d.unmap_sg(&mut a, &plan_a, TO, none()).unwrap();
            d.unmap_sg(&mut b, &plan_b, TO, none()).unwrap();
        }
        assert_eq!(d.reports(), vec![], "unmapping b first: {second_first}");
        assert_eq!(d.active_count(), 0);
        assert_eq!(d.inner().live_count(), 0);
    }
}

/// A plan that fits neither of two tables sharing the first segment is
/// still compared with the first of them (Linux's first perfect fit).
#[test]
fn a_lying_plan_over_a_shared_first_segment_is_reported_against_the_first_table() {
    let d = DmaDebug::new(Arena::direct());
    let (mut a, plan_a) = table(&[(0x1_0000, 4096), (0x3_0000, 4096)]);
    let (mut b, plan_b) = table(&[(0x1_0000, 4096), (0x5_0000, 4096)]);
    d.map_sg(&mut a, &plan_a, TO, none()).unwrap();
    d.map_sg(&mut b, &plan_b, TO, none()).unwrap();
    let shared = a.dma_iter().next().unwrap().dma_address();
    let mut lie = plan_b.clone();
    lie[1].phys = dma_api::PhysAddr::new(0x7_0000);
    d.unmap_sg(&mut b, &lie, TO, none()).unwrap();
    assert_eq!(
        d.reports(),
        vec![DebugReport::UnmapPhysMismatch {
            dma: shared,
            mapped: plan_a[1].phys,
            unmapped: dma_api::PhysAddr::new(0x7_0000),
        }]
    );
}

/// Three live tables start with the same segment; two of them have the
/// same plan (every entry the same page) and differ only in the length of
/// their last entry. An unmap told tables apart by plan alone, so the
/// second took the first's entries, which then took the third's, whose
/// own unmap was compared with another plan. Tables are told apart by plan,
/// CPU lengths and DMA segments: every unmap order is clean. Found by the
/// `dma_ops` fuzz target.
#[test]
fn tables_with_one_plan_and_other_lengths_each_unmap_their_own_entries() {
    let shapes: [&[(u64, u64)]; 3] = [
        &[(0x1_0000, 0x800), (0x1_0000, 1), (0x5_0000, 1)],
        &[(0x1_0000, 0x800), (0x1_0000, 0x800), (0x1_0000, 0x800)],
        &[(0x1_0000, 0x800), (0x1_0000, 0x800), (0x1_0000, 0x400)],
    ];
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for order in orders {
        let d = DmaDebug::new(Arena::direct());
        let mut tables: Vec<_> = shapes.iter().map(|s| table(s)).collect();
        for (t, plan) in &mut tables {
            assert_eq!(d.map_sg(t, plan, TO, none()).unwrap(), 3);
        }
        for i in order {
            let (t, plan) = &mut tables[i];
            d.unmap_sg(t, plan, TO, none()).unwrap();
        }
        assert_eq!(d.reports(), vec![], "unmap order {order:?}");
        assert_eq!(d.active_count(), 0);
    }
}
