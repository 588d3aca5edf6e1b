//! dma-debug: sync checks (kernel/dma/debug.c `check_sync`) and the
//! overlapping cache-line check (`active_cacheline_*`, `add_dma_entry`).

mod common;

use common::{ram, table, Arena, OFFSET};
use dma_api::debug::{DebugConfig, DebugReport, DmaDebug, SyncCall};
use dma_api::port::{DmaBackend, MapRequest, SegTarget};
use dma_api::{Direction, DmaAddr, DmaAttrs, PhysAddr};

const FROM: Direction = Direction::FromDevice;
const TO: Direction = Direction::ToDevice;
const BIDI: Direction = Direction::Bidirectional;

fn dbg() -> DmaDebug<Arena> {
    DmaDebug::new(Arena::direct())
}

fn at(off: u64) -> DmaAddr {
    DmaAddr::new(OFFSET + off)
}

// ---- sync ----

#[test]
fn sync_of_memory_not_mapped() {
    let d = dbg();
    let _ = d.sync_for_cpu(at(0x4000), 64, FROM);
    let r = ram(0x4000, 64, FROM);
    let dma = d.map(&r).unwrap();
    d.unmap(dma, &r).unwrap();
    let _ = d.sync_for_device(at(0x4000), 64, FROM);
    assert_eq!(
        d.reports(),
        vec![
            DebugReport::SyncNotMapped {
                op: SyncCall::ForCpu,
                dma: at(0x4000),
                len: 64
            },
            DebugReport::SyncNotMapped {
                op: SyncCall::ForDevice,
                dma: at(0x4000),
                len: 64
            },
        ]
    );
}

#[test]
fn sub_range_syncs_are_fine_overruns_are_not() {
    let d = dbg();
    let dma = d.map(&ram(0x4000, 4096, FROM)).unwrap();
    d.sync_for_cpu(at(0x4000), 4096, FROM).unwrap();
    d.sync_for_cpu(at(0x4ff0), 16, FROM).unwrap();
    d.sync_for_device(at(0x4800), 0x100, FROM).unwrap();
    assert_eq!(d.reports(), vec![]);
    let _ = d.sync_for_cpu(at(0x4f00), 0x200, FROM);
    assert_eq!(
        d.reports(),
        vec![DebugReport::SyncOutsideRange {
            op: SyncCall::ForCpu,
            mapping: dma,
            mapped_len: 4096,
            dma: at(0x4f00),
            len: 0x200,
        }]
    );
    // One byte past the end is not inside any mapping.
    d.take_reports();
    let _ = d.sync_for_cpu(at(0x5000), 1, FROM);
    assert_eq!(
        d.reports(),
        vec![DebugReport::SyncNotMapped {
            op: SyncCall::ForCpu,
            dma: at(0x5000),
            len: 1
        }]
    );
}

#[test]
fn sync_direction_rules_match_linux() {
    let d = dbg();
    let to = d.map(&ram(0x10_000, 4096, TO)).unwrap();
    let from = d.map(&ram(0x20_000, 4096, FROM)).unwrap();
    let bidi = d.map(&ram(0x30_000, 4096, BIDI)).unwrap();

    // Allowed: same direction either way (Linux lets a FROM_DEVICE mapping be
    // synced for the device and a TO_DEVICE one for the CPU), anything on a
    // bidirectional mapping.
    d.sync_for_device(from, 64, FROM).unwrap();
    d.sync_for_cpu(to, 64, TO).unwrap();
    for dir in [TO, FROM, BIDI] {
        d.sync_for_cpu(bidi, 64, dir).unwrap();
        d.sync_for_device(bidi, 64, dir).unwrap();
    }
    assert_eq!(d.reports(), vec![]);

    // Mismatches.
    d.sync_for_cpu(to, 64, FROM).unwrap();
    assert_eq!(
        d.take_reports(),
        vec![
            DebugReport::SyncDirectionMismatch {
                op: SyncCall::ForCpu,
                mapping: to,
                mapped: TO,
                synced: FROM
            },
            DebugReport::SyncReadOnlyForCpu {
                mapping: to,
                mapped: TO,
                synced: FROM
            },
        ]
    );
    d.sync_for_device(from, 64, TO).unwrap();
    assert_eq!(
        d.take_reports(),
        vec![
            DebugReport::SyncDirectionMismatch {
                op: SyncCall::ForDevice,
                mapping: from,
                mapped: FROM,
                synced: TO
            },
            DebugReport::SyncWriteOnlyForDevice {
                mapping: from,
                mapped: FROM,
                synced: TO
            },
        ]
    );
    // A mismatch that is neither: sync_for_cpu of FROM_DEVICE memory with
    // TO_DEVICE only differs in direction.
    d.sync_for_cpu(from, 64, TO).unwrap();
    assert_eq!(
        d.take_reports(),
        vec![DebugReport::SyncDirectionMismatch {
            op: SyncCall::ForCpu,
            mapping: from,
            mapped: FROM,
            synced: TO
        }]
    );
}

#[test]
fn sync_inside_a_large_mapping_among_many() {
    let d = DmaDebug::new(Arena::iommu());
    let big = d.map(&ram(0x100_000, 1 << 20, FROM)).unwrap();
    let small: Vec<DmaAddr> = (0..50)
        .map(|i| d.map(&ram(0x1000_0000 + i * 0x1000, 64, FROM)).unwrap())
        .collect();
    d.sync_for_cpu(big.checked_add(0xf_0000).unwrap(), 0x1000, FROM)
        .unwrap();
    d.sync_for_cpu(small[49], 64, FROM).unwrap();
    assert_eq!(d.reports(), vec![]);
}

// ---- cache lines ----

fn with_attrs(r: MapRequest, attrs: DmaAttrs) -> MapRequest {
    MapRequest { attrs, ..r }
}

#[test]
fn two_device_written_buffers_in_one_line() {
    let d = dbg();
    let a = d.map(&ram(0x1000, 32, FROM)).unwrap();
    let b = d.map(&ram(0x1020, 32, BIDI)).unwrap();
    assert_eq!(
        d.reports(),
        vec![DebugReport::CachelineOverlap {
            line: PhysAddr::new(0x1000),
            dma: b,
            dir: BIDI,
            other: a,
            other_dir: FROM,
        }]
    );
}

#[test]
fn shared_tail_line_is_found() {
    // Linux tracks only the first line of each mapping and misses this.
    let d = dbg();
    let a = d.map(&ram(0x1000, 100, FROM)).unwrap();
    let b = d.map(&ram(0x1064, 28, FROM)).unwrap();
    assert_eq!(
        d.reports(),
        vec![DebugReport::CachelineOverlap {
            line: PhysAddr::new(0x1040),
            dma: b,
            dir: FROM,
            other: a,
            other_dir: FROM,
        }]
    );
    // And a small buffer inside a big one's interior.
    d.take_reports();
    let c = d.map(&ram(0x10_0000, 0x10_0000, FROM)).unwrap();
    let e = d.map(&ram(0x15_0040, 8, FROM)).unwrap();
    assert_eq!(
        d.reports(),
        vec![DebugReport::CachelineOverlap {
            line: PhysAddr::new(0x15_0040),
            dma: e,
            dir: FROM,
            other: c,
            other_dir: FROM,
        }]
    );
}

#[test]
fn adjacent_lines_and_to_device_are_fine() {
    let d = dbg();
    d.map(&ram(0x1000, 64, FROM)).unwrap();
    d.map(&ram(0x1040, 64, FROM)).unwrap();
    // The device only reads TO_DEVICE memory: no stale-line hazard.
    d.map(&ram(0x1000, 64, TO)).unwrap();
    d.map(&ram(0x2000, 16, TO)).unwrap();
    d.map(&ram(0x2010, 16, FROM)).unwrap();
    d.map(&ram(0x2020, 16, TO)).unwrap();
    assert_eq!(d.reports(), vec![]);
}

#[test]
fn line_is_free_again_after_unmap() {
    let d = dbg();
    let r = ram(0x1000, 32, FROM);
    let a = d.map(&r).unwrap();
    d.unmap(a, &r).unwrap();
    d.map(&ram(0x1020, 32, FROM)).unwrap();
    assert_eq!(d.reports(), vec![]);
}

#[test]
fn ignore_cachelines_needs_both_sides_skip_cpu_sync_excuses_the_new_one() {
    let clean = DmaAttrs::DEBUGGING_IGNORE_CACHELINES;
    let d = dbg();
    d.map(&with_attrs(ram(0x1000, 32, FROM), clean)).unwrap();
    d.map(&with_attrs(ram(0x1020, 32, FROM), clean)).unwrap();
    d.map(&with_attrs(
        ram(0x1010, 8, FROM),
        DmaAttrs::REQUIRE_COHERENT,
    ))
    .unwrap();
    d.map(&with_attrs(ram(0x1030, 8, FROM), DmaAttrs::SKIP_CPU_SYNC))
        .unwrap();
    assert_eq!(d.reports(), vec![]);

    let d = dbg();
    let a = d.map(&ram(0x1000, 32, FROM)).unwrap();
    let b = d.map(&with_attrs(ram(0x1020, 32, FROM), clean)).unwrap();
    assert_eq!(
        d.reports(),
        vec![DebugReport::CachelineOverlap {
            line: PhysAddr::new(0x1000),
            dma: b,
            dir: FROM,
            other: a,
            other_dir: FROM,
        }]
    );
}

#[test]
fn line_size_is_configurable() {
    let cfg = DebugConfig {
        cacheline_shift: 7,
        ..DebugConfig::default()
    };
    let d = DmaDebug::with_config(Arena::direct(), cfg);
    let a = d.map(&ram(0x1000, 64, FROM)).unwrap();
    let b = d.map(&ram(0x1040, 64, FROM)).unwrap();
    assert_eq!(
        d.reports(),
        vec![DebugReport::CachelineOverlap {
            line: PhysAddr::new(0x1000),
            dma: b,
            dir: FROM,
            other: a,
            other_dir: FROM,
        }]
    );
}

#[test]
fn mmio_is_never_cache_tracked() {
    let d = dbg();
    let bar = MapRequest {
        phys: PhysAddr::new(0xf000_0000),
        len: 32,
        dir: FROM,
        attrs: DmaAttrs::MMIO,
        target: SegTarget::PeerHostBridge,
    };
    d.map(&bar).unwrap();
    d.map(&MapRequest {
        phys: PhysAddr::new(0xf000_0020),
        ..bar
    })
    .unwrap();
    assert_eq!(d.reports(), vec![]);
}

#[test]
fn table_entries_overlapping_a_single_mapping() {
    let d = dbg();
    let a = d.map(&ram(0x2_0000, 16, FROM)).unwrap();
    let (mut t, plan) = table(&[(0x1_0000, 4096), (0x2_0020, 32)]);
    d.map_sg(&mut t, &plan, BIDI, DmaAttrs::empty()).unwrap();
    let first = t.dma_iter().next().unwrap().dma_address();
    assert_eq!(
        d.reports(),
        vec![DebugReport::CachelineOverlap {
            line: PhysAddr::new(0x2_0000),
            dma: first,
            dir: BIDI,
            other: a,
            other_dir: FROM,
        }]
    );
    // Unmapping the table frees its lines.
    d.take_reports();
    d.unmap_sg(&mut t, &plan, BIDI, DmaAttrs::empty()).unwrap();
    d.map(&ram(0x1_0000, 8, FROM)).unwrap();
    assert_eq!(d.reports(), vec![]);
}
