//! dma-debug: unmap checks (kernel/dma/debug.c `check_unmap`), the error
//! check, and leaks at detach. Every misuse is made on purpose and the exact
//! report asserted.

mod common;

use common::{ram, table, Arena, OFFSET};
use dma_api::debug::{
    ActiveMapping, DebugConfig, DebugReport, DmaDebug, ErrCheck, MapKind, DMA_MAPPING_ERROR,
};
use dma_api::port::{DmaBackend, MapRequest, SegTarget};
use dma_api::{BusAddr, Direction, DmaAddr, DmaAttrs, DmaError, PhysAddr};
use scatterlist::{DmaFlags, SgTable};
use std::sync::Arc;

const FROM: Direction = Direction::FromDevice;
const TO: Direction = Direction::ToDevice;
const BIDI: Direction = Direction::Bidirectional;

fn dbg() -> DmaDebug<Arena> {
    DmaDebug::new(Arena::direct())
}

#[test]
fn correct_usage_gives_no_reports_and_no_leaks() {
    let cfg = DebugConfig {
        panic_on_report: true,
        ..DebugConfig::default()
    };
    let d = DmaDebug::with_config(Arena::iommu(), cfg);
    let r1 = ram(0x10_0000, 4096, FROM);
    let a = d.map(&r1).unwrap();
    d.sync_for_cpu(a, 4096, FROM).unwrap();
    d.sync_for_device(a.checked_add(512).unwrap(), 100, FROM)
        .unwrap();
    let r2 = ram(0x10_0000, 4096, TO); // same memory, device only reads
    let b = d.map(&r2).unwrap();
    let (mut t, plan) = table(&[(0x20_0000, 4096), (0x30_0000, 8192)]);
    let n = d.map_sg(&mut t, &plan, BIDI, DmaAttrs::empty()).unwrap();
    assert_eq!(n, 1);
    assert_eq!(d.active_count(), 3);
    let seg = t.dma_iter().next().unwrap().dma_address();
    d.sync_for_cpu(seg.checked_add(4096).unwrap(), 8192, BIDI)
        .unwrap();
    d.unmap_sg(&mut t, &plan, BIDI, DmaAttrs::empty()).unwrap();
    d.unmap(b, &r2).unwrap();
    d.unmap(a, &r1).unwrap();
    assert_eq!(d.reports(), vec![]);
    assert_eq!(d.detach(), vec![]);
    assert_eq!(d.active_count(), 0);
    assert_eq!(d.inner().live_count(), 0);
    assert_eq!(d.name(), "debug(arena)");
}

#[test]
fn unmap_of_memory_never_mapped() {
    let d = dbg();
    let r = ram(0x5000, 256, BIDI);
    let dma = DmaAddr::new(OFFSET + 0x5000);
    // The real backend refuses too; dma-debug forwards and reports.
    assert!(matches!(
        d.unmap(dma, &r),
        Err(DmaError::IovaRangeInvalid { .. })
    ));
    assert_eq!(
        d.reports(),
        vec![DebugReport::UnmapNotMapped {
            kind: MapKind::Single,
            dma,
            len: 256
        }]
    );
}

#[test]
fn double_unmap_is_told_apart_from_unknown() {
    let d = DmaDebug::new(Arena::iommu());
    let r = ram(0x7000, 300, FROM);
    let dma = d.map(&r).unwrap();
    d.unmap(dma, &r).unwrap();
    assert_eq!(d.reports(), vec![]);
    assert!(d.unmap(dma, &r).is_err());
    assert_eq!(
        d.take_reports(),
        vec![DebugReport::DoubleUnmap {
            kind: MapKind::Single,
            dma,
            len: 300,
            mapped_kind: MapKind::Single,
            mapped_len: 300,
        }]
    );
    // Mapping the address again forgets the history.
    let dma2 = DmaDebug::new(Arena::direct());
    let r = ram(0x9000, 64, TO);
    let x = dma2.map(&r).unwrap();
    dma2.unmap(x, &r).unwrap();
    let y = dma2.map(&r).unwrap();
    assert_eq!(x, y);
    dma2.unmap(y, &r).unwrap();
    assert_eq!(dma2.reports(), vec![]);
}

#[test]
fn freed_history_zero_reports_double_unmap_as_unknown() {
    let cfg = DebugConfig {
        freed_history: 0,
        ..DebugConfig::default()
    };
    let d = DmaDebug::with_config(Arena::direct(), cfg);
    let r = ram(0x7000, 64, FROM);
    let dma = d.map(&r).unwrap();
    d.unmap(dma, &r).unwrap();
    let _ = d.unmap(dma, &r);
    assert_eq!(
        d.reports(),
        vec![DebugReport::UnmapNotMapped {
            kind: MapKind::Single,
            dma,
            len: 64
        }]
    );
}

#[test]
fn unmap_of_the_error_value() {
    let d = dbg();
    let _ = d.unmap(DMA_MAPPING_ERROR, &ram(0, 64, TO));
    assert_eq!(
        d.reports(),
        vec![DebugReport::UnmapInvalidAddress {
            kind: MapKind::Single
        }]
    );
}

#[test]
fn unmap_with_other_size() {
    let d = dbg();
    let r = ram(0x4000, 4096, FROM);
    let dma = d.map(&r).unwrap();
    let _ = d.unmap(dma, &MapRequest { len: 2048, ..r });
    assert_eq!(
        d.reports(),
        vec![DebugReport::UnmapSizeMismatch {
            dma,
            mapped_len: 4096,
            unmap_len: 2048
        }]
    );
    // The entry is gone after the checked unmap, like in Linux.
    assert_eq!(d.active_count(), 0);
}

#[test]
fn unmap_with_other_direction() {
    let d = dbg();
    let r = ram(0x4000, 4096, TO);
    let dma = d.map(&r).unwrap();
    d.unmap(dma, &MapRequest { dir: FROM, ..r }).unwrap();
    assert_eq!(
        d.reports(),
        vec![DebugReport::UnmapDirectionMismatch {
            dma,
            mapped: TO,
            unmapped: FROM
        }]
    );
}

#[test]
fn unmap_of_mmio_as_ram() {
    let d = dbg();
    let bar = MapRequest {
        phys: PhysAddr::new(0xf000_0000),
        len: 0x1000,
        dir: BIDI,
        attrs: DmaAttrs::MMIO,
        target: SegTarget::PeerHostBridge,
    };
    let dma = d.map(&bar).unwrap();
    d.unmap(
        dma,
        &MapRequest {
            target: SegTarget::Ram,
            ..bar
        },
    )
    .unwrap();
    assert_eq!(
        d.reports(),
        vec![DebugReport::UnmapTargetMismatch {
            dma,
            mapped: SegTarget::PeerHostBridge,
            unmapped: SegTarget::Ram,
        }]
    );
}

#[test]
fn unmap_with_other_phys() {
    let d = DmaDebug::new(Arena::iommu());
    let r = ram(0x4000, 512, FROM);
    let dma = d.map(&r).unwrap();
    let _ = d.unmap(
        dma,
        &MapRequest {
            phys: PhysAddr::new(0x8000),
            ..r
        },
    );
    assert_eq!(
        d.reports(),
        vec![DebugReport::UnmapPhysMismatch {
            dma,
            mapped: PhysAddr::new(0x4000),
            unmapped: PhysAddr::new(0x8000),
        }]
    );
}

#[test]
fn sg_segment_unmapped_as_single_and_single_as_sg() {
    let d = dbg();
    let (mut t, plan) = table(&[(0x20_0000, 4096)]);
    d.map_sg(&mut t, &plan, FROM, DmaAttrs::empty()).unwrap();
    let seg = t.dma_iter().next().unwrap().dma_address();
    d.unmap(seg, &ram(0x20_0000, 4096, FROM)).unwrap();
    assert_eq!(
        d.take_reports(),
        vec![DebugReport::UnmapKindMismatch {
            dma: seg,
            mapped: MapKind::Sg,
            unmapped: MapKind::Single,
        }]
    );

    let r = ram(0x40_0000, 4096, TO);
    let dma = d.map(&r).unwrap();
    let mut dma_only = SgTable::dma_only(&[(dma, 4096)], DmaFlags::EMPTY).unwrap();
    d.unmap_sg(&mut dma_only, &[], TO, DmaAttrs::empty())
        .unwrap();
    assert_eq!(
        d.take_reports(),
        vec![DebugReport::UnmapKindMismatch {
            dma,
            mapped: MapKind::Single,
            unmapped: MapKind::Sg,
        }]
    );
}

#[test]
fn map_error_check_is_required_on_raw_addresses() {
    let d = dbg();
    let r = ram(0x6000, 128, FROM);
    let dma = d.map_raw(&r);
    assert_eq!(d.active()[0].err, ErrCheck::NotChecked);
    d.unmap(dma, &r).unwrap();
    assert_eq!(
        d.take_reports(),
        vec![DebugReport::MapErrorNotChecked {
            dma,
            len: 128,
            kind: MapKind::Single
        }]
    );

    let dma = d.map_raw(&r);
    assert!(!d.mapping_error(dma));
    assert_eq!(d.active()[0].err, ErrCheck::Checked);
    d.unmap(dma, &r).unwrap();
    assert_eq!(d.reports(), vec![]);

    // A failed raw map gives the error value, records nothing, and the
    // check says so.
    let bad = d.map_raw(&ram(0x6000, 0, FROM));
    assert_eq!(bad, DMA_MAPPING_ERROR);
    assert!(d.mapping_error(bad));
    assert_eq!(d.active_count(), 0);
}

#[test]
fn error_check_through_a_type_erased_stack() {
    // The raw layer above only holds `Arc<dyn DmaBackend>`: it reports the
    // check through `note_mapping_error_check`.
    let cfg = DebugConfig {
        require_error_check: true,
        ..DebugConfig::default()
    };
    let d = Arc::new(DmaDebug::with_config(Arena::direct(), cfg));
    let dynb: Arc<dyn DmaBackend> = d.clone();
    let r = ram(0x6000, 128, FROM);
    let checked = dynb.map(&r).unwrap();
    dynb.note_mapping_error_check(checked);
    let r2 = ram(0x9000, 64, TO);
    let unchecked = dynb.map(&r2).unwrap();
    dynb.unmap(checked, &r).unwrap();
    dynb.unmap(unchecked, &r2).unwrap();
    assert_eq!(
        d.reports(),
        vec![DebugReport::MapErrorNotChecked {
            dma: unchecked,
            len: 64,
            kind: MapKind::Single
        }]
    );
}

#[test]
fn several_violations_in_one_unmap_in_linux_order() {
    let d = dbg();
    let r = ram(0x4000, 4096, TO);
    let dma = d.map_raw(&r);
    let _ = d.unmap(
        dma,
        &MapRequest {
            len: 100,
            dir: BIDI,
            ..r
        },
    );
    assert_eq!(
        d.reports(),
        vec![
            DebugReport::UnmapSizeMismatch {
                dma,
                mapped_len: 4096,
                unmap_len: 100
            },
            DebugReport::UnmapDirectionMismatch {
                dma,
                mapped: TO,
                unmapped: BIDI
            },
            DebugReport::MapErrorNotChecked {
                dma,
                len: 100,
                kind: MapKind::Single
            },
        ]
    );
}

#[test]
fn same_address_mapped_twice_best_fit() {
    // Without an IOMMU, mapping the same memory twice gives the same address;
    // the unmap must pick the entry that fits (Linux best-fit) and report
    // nothing.
    let d = dbg();
    let a = ram(0x4000, 4096, TO);
    let b = ram(0x4000, 256, TO);
    let x = d.map(&a).unwrap();
    let y = d.map(&b).unwrap();
    assert_eq!(x, y);
    d.unmap(y, &b).unwrap();
    d.unmap(x, &a).unwrap();
    assert_eq!(d.reports(), vec![]);
}

#[test]
fn leaks_at_detach_list_every_active_mapping() {
    let d = dbg();
    let r = ram(0x4000, 4096, FROM);
    let a = d.map(&r).unwrap();
    let bar = MapRequest {
        phys: PhysAddr::new(0xf000_0000),
        len: 0x2000,
        dir: TO,
        attrs: DmaAttrs::empty(),
        target: SegTarget::PeerBus(BusAddr::new(0xe000_0000)),
    };
    let b = d.map(&bar).unwrap();
    assert_eq!(b, DmaAddr::new(0xe000_0000));
    let (mut t, plan) = table(&[(0x20_0000, 4096), (0x30_0000, 4096)]);
    d.map_sg(&mut t, &plan, BIDI, DmaAttrs::empty()).unwrap();
    let s0 = DmaAddr::new(OFFSET + 0x20_0000);
    let s1 = DmaAddr::new(OFFSET + 0x30_0000);

    let expect = vec![
        DebugReport::Leak {
            kind: MapKind::Single,
            dma: a,
            len: 4096,
            dir: FROM,
            target: Some(SegTarget::Ram),
        },
        DebugReport::Leak {
            kind: MapKind::Sg,
            dma: s0,
            len: 4096,
            dir: BIDI,
            target: None,
        },
        DebugReport::Leak {
            kind: MapKind::Sg,
            dma: s1,
            len: 4096,
            dir: BIDI,
            target: None,
        },
        DebugReport::Leak {
            kind: MapKind::Single,
            dma: b,
            len: 0x2000,
            dir: TO,
            target: Some(SegTarget::PeerBus(BusAddr::new(0xe000_0000))),
        },
    ];
    let mut sorted = expect.clone();
    sorted.sort_by_key(|r| match r {
        DebugReport::Leak { dma, .. } => dma.raw(),
        _ => 0,
    });
    // check_leaks only lists; detach records.
    assert_eq!(d.check_leaks(), sorted);
    assert_eq!(d.reports(), vec![]);
    assert_eq!(d.detach(), sorted);
    assert_eq!(d.reports(), sorted);
    assert_eq!(
        d.active().into_iter().find(|m| m.dma == a).unwrap(),
        ActiveMapping {
            kind: MapKind::Single,
            dma: a,
            len: 4096,
            dir: FROM,
            target: Some(SegTarget::Ram),
            phys: Some(PhysAddr::new(0x4000)),
            err: ErrCheck::NotApplicable,
        }
    );
    let text = sorted[0].to_string();
    assert!(
        text.contains("pending DMA allocations while released from device"),
        "{text}"
    );
}

#[test]
#[should_panic(
    expected = "DMA-API: debug(arena): device driver tries to free DMA memory it has not allocated"
)]
fn panic_mode_panics_on_the_first_report() {
    let cfg = DebugConfig {
        panic_on_report: true,
        ..DebugConfig::default()
    };
    let d = DmaDebug::with_config(Arena::direct(), cfg);
    let _ = d.unmap(DmaAddr::new(0x1234), &ram(0x1234, 1, TO));
}

/// Issue 11, bug 12: an address freed, reused and freed again left an old
/// queue entry behind; evicting it removed the *newest* record, so a double
/// unmap read as "never mapped" long before the history was full.
#[test]
fn bug12_reused_address_keeps_its_freed_record_until_it_is_the_oldest() {
    let cfg = DebugConfig {
        freed_history: 4,
        ..DebugConfig::default()
    };
    let d = DmaDebug::with_config(Arena::direct(), cfg);
    let x = ram(0x9000, 64, TO);
    let a = d.map(&x).unwrap();
    d.unmap(a, &x).unwrap();
    let a2 = d.map(&x).unwrap(); // the same address again
    assert_eq!(a, a2);
    d.unmap(a2, &x).unwrap();
    // Three other addresses freed: four distinct freed addresses, within
    // the history's capacity.
    for p in [0xa000u64, 0xb000, 0xc000] {
        let r = ram(p, 64, TO);
        let m = d.map(&r).unwrap();
        d.unmap(m, &r).unwrap();
    }
    assert_eq!(d.take_reports(), vec![]);
    assert!(d.unmap(a, &x).is_err());
    assert_eq!(
        d.take_reports(),
        vec![DebugReport::DoubleUnmap {
            kind: MapKind::Single,
            dma: a,
            len: 64,
            mapped_kind: MapKind::Single,
            mapped_len: 64,
        }]
    );
}
