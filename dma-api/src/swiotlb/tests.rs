use super::*;
use crate::attrs::DmaAttrs;
use crate::direction::Direction;
use crate::error::{DmaError, ErrorKind};
use crate::mem::CpuMemory;
use crate::test_support::TestMem;
use crate::types::{PhysAddr, PAGE_SIZE};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

const POOL: u64 = 0x10_0000;

fn pool(slots: u64) -> (Arc<TestMem>, Swiotlb) {
    let mem: Arc<TestMem> = Arc::new(TestMem::default());
    let s = Swiotlb::new(
        mem.clone() as crate::mem::CpuMem,
        PhysAddr::new(POOL),
        slots * IO_TLB_SIZE,
    )
    .unwrap();
    (mem, s)
}

fn fill(mem: &Arc<TestMem>, at: u64, data: &[u8]) {
    mem.write(PhysAddr::new(at), data).unwrap();
}

fn read(mem: &Arc<TestMem>, at: u64, n: usize) -> Vec<u8> {
    let mut b = vec![0; n];
    mem.read(PhysAddr::new(at), &mut b).unwrap();
    b
}

#[test]
fn max_mapping_size_rounds_the_mask_up_to_a_slot() {
    assert_eq!(max_mapping_size(0), 256 * 1024);
    assert_eq!(max_mapping_size(0xfff), 256 * 1024 - 4096);
    assert_eq!(max_mapping_size(0x7ff), 256 * 1024 - 2048);
    assert_eq!(max_mapping_size(1), 256 * 1024 - 2048);
}

#[test]
fn map_copies_every_direction_and_keeps_the_alignment_bits() {
    let (mem, s) = pool(64);
    let orig = 0x5_1234u64;
    let data: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    fill(&mem, orig, &data);
    for dir in [
        Direction::ToDevice,
        Direction::FromDevice,
        Direction::Bidirectional,
    ] {
        let tlb = s
            .map(PhysAddr::new(orig), 3000, dir, DmaAttrs::empty(), 0xfff)
            .unwrap();
        assert_eq!(tlb.raw() & 0xfff, orig & 0xfff, "{dir}");
        assert!(s.contains(tlb));
        // Linux copies original -> bounce on map for every direction.
        assert_eq!(read(&mem, tlb.raw(), 3000), data, "{dir}");
        assert_eq!(s.orig_of(tlb), Some(PhysAddr::new(orig)));
        s.unmap(tlb, 3000, dir, DmaAttrs::SKIP_CPU_SYNC).unwrap();
    }
    assert_eq!(s.used_slots(), 0);
}

#[test]
fn syncs_and_unmap_copy_by_direction_with_sub_ranges() {
    let (mem, s) = pool(64);
    let orig = 0x8_0000u64;
    fill(&mem, orig, &[1u8; 8192]);
    let tlb = s
        .map(
            PhysAddr::new(orig),
            8192,
            Direction::FromDevice,
            DmaAttrs::empty(),
            0,
        )
        .unwrap();
    // The "device" writes 16 bytes in the middle of the bounce buffer.
    fill(&mem, tlb.raw() + 3000, &[9u8; 16]);
    // sync_for_device on FromDevice does not copy (would clobber it).
    s.sync_for_device(tlb, 8192, Direction::FromDevice).unwrap();
    assert_eq!(read(&mem, tlb.raw() + 3000, 16), vec![9u8; 16]);
    // Partial sync_for_cpu copies exactly that sub-range back.
    s.sync_for_cpu(PhysAddr::new(tlb.raw() + 3000), 8, Direction::FromDevice)
        .unwrap();
    let back = read(&mem, orig + 2990, 30);
    assert_eq!(&back[..10], &[1u8; 10]);
    assert_eq!(&back[10..18], &[9u8; 8]);
    assert_eq!(&back[18..], &[1u8; 12]);
    // Unmap copies the whole mapping back.
    s.unmap(tlb, 8192, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(read(&mem, orig + 3000, 16), vec![9u8; 16]);
    let st = s.stats();
    assert_eq!(st.bytes_to_bounce, 8192);
    assert_eq!(st.bytes_from_bounce, 8 + 8192);
}

#[test]
fn to_device_sync_for_device_recopies_and_unmap_does_not_copy_back() {
    let (mem, s) = pool(8);
    fill(&mem, 0x3000, &[5u8; 100]);
    let tlb = s
        .map(
            PhysAddr::new(0x3000),
            100,
            Direction::ToDevice,
            DmaAttrs::empty(),
            0,
        )
        .unwrap();
    fill(&mem, 0x3000, &[6u8; 100]);
    s.sync_for_device(tlb, 100, Direction::ToDevice).unwrap();
    assert_eq!(read(&mem, tlb.raw(), 100), vec![6u8; 100]);
    fill(&mem, tlb.raw(), &[7u8; 100]);
    s.sync_for_cpu(tlb, 100, Direction::ToDevice).unwrap();
    s.unmap(tlb, 100, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(read(&mem, 0x3000, 100), vec![6u8; 100]);
}

#[test]
fn full_pool_and_oversized_and_outside_are_typed() {
    let (_mem, s) = pool(4);
    let a = s
        .map(
            PhysAddr::new(0x1000),
            3 * IO_TLB_SIZE,
            Direction::ToDevice,
            DmaAttrs::empty(),
            0,
        )
        .unwrap();
    let e = s
        .map(
            PhysAddr::new(0x9000),
            2 * IO_TLB_SIZE,
            Direction::ToDevice,
            DmaAttrs::empty(),
            0,
        )
        .unwrap_err();
    assert_eq!(
        e,
        DmaError::SwiotlbFull {
            len: 2 * IO_TLB_SIZE,
            slots: 2
        }
    );
    assert_eq!(e.kind(), ErrorKind::NoResources);
    let big = s
        .map(
            PhysAddr::new(0),
            256 * 1024 + 1,
            Direction::ToDevice,
            DmaAttrs::empty(),
            0,
        )
        .unwrap_err();
    assert_eq!(big.kind(), ErrorKind::Invalid);
    // A sync past the end of the mapping is refused, not clipped.
    let e = s
        .sync_for_cpu(a, 3 * IO_TLB_SIZE + 1, Direction::FromDevice)
        .unwrap_err();
    assert!(matches!(e, DmaError::NotMapped { .. }));
    // Unmap with a wrong length is refused and leaves the mapping alive.
    assert!(s
        .unmap(a, 100, Direction::ToDevice, DmaAttrs::empty())
        .is_err());
    assert_eq!(s.live_mappings(), 1);
    s.unmap(a, 3 * IO_TLB_SIZE, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert!(s
        .unmap(a, 3 * IO_TLB_SIZE, Direction::ToDevice, DmaAttrs::empty())
        .is_err());
}

#[test]
fn a_mapping_never_crosses_a_segment() {
    let (_mem, s) = pool(256);
    // Take 100 slots, then ask for 100 more: they cannot start at slot 100
    // (would cross slot 128), so they start at 128.
    let a = s
        .map(
            PhysAddr::new(0x100_0000),
            100 * IO_TLB_SIZE,
            Direction::ToDevice,
            DmaAttrs::empty(),
            0,
        )
        .unwrap();
    assert_eq!(a.raw(), POOL);
    let b = s
        .map(
            PhysAddr::new(0x200_0000),
            100 * IO_TLB_SIZE,
            Direction::ToDevice,
            DmaAttrs::empty(),
            0,
        )
        .unwrap();
    assert_eq!(b.raw(), POOL + 128 * IO_TLB_SIZE);
    assert_eq!(s.used_slots(), 200);
    assert_eq!(s.stats().hiwater_slots, 200);
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Map { orig: u64, len: u64, mask_sel: u8 },
        Unmap(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u64..0x10_0000, 1u64..20_000, 0u8..3).prop_map(|(o, l, m)| Op::Map {
                orig: 0x4000_0000 + o,
                len: l,
                mask_sel: m
            }),
            (0usize..16).prop_map(Op::Unmap),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Live mappings never overlap, keep their alignment bits, hold the
        /// original bytes, never cross a segment, and the slot count adds up.
        #[test]
        fn random_map_unmap_keeps_invariants(ops in proptest::collection::vec(op(), 1..40)) {
            let (mem, s) = pool(256);
            let mut live: Vec<(PhysAddr, u64, u64)> = Vec::new();
            for o in ops {
                match o {
                    Op::Map { orig, len, mask_sel } => {
                        let mask = [0u64, 0x7ff, 0xfff][mask_sel as usize];
                        let data: Vec<u8> = (0..len).map(|i| (i ^ orig) as u8).collect();
                        fill(&mem, orig, &data);
                        match s.map(PhysAddr::new(orig), len, Direction::ToDevice, DmaAttrs::empty(), mask) {
                            Ok(tlb) => {
                                prop_assert_eq!(tlb.raw() & mask, orig & mask);
                                prop_assert_eq!(read(&mem, tlb.raw(), len as usize), data);
                                let first = (tlb.raw() - POOL) / IO_TLB_SIZE;
                                let last = (tlb.raw() + len - 1 - POOL) / IO_TLB_SIZE;
                                prop_assert_eq!(first / IO_TLB_SEGSIZE, last / IO_TLB_SEGSIZE);
                                for &(t, l, _) in &live {
                                    prop_assert!(tlb.raw() + len <= t.raw() || t.raw() + l <= tlb.raw());
                                }
                                live.push((tlb, len, orig));
                            }
                            Err(e) => prop_assert!(
                                matches!(e, DmaError::SwiotlbFull { .. } | DmaError::MappingTooLarge { .. }),
                                "{}", e
                            ),
                        }
                    }
                    Op::Unmap(i) if !live.is_empty() => {
                        let (tlb, len, _) = live.remove(i % live.len());
                        s.unmap(tlb, len, Direction::ToDevice, DmaAttrs::empty()).unwrap();
                    }
                    Op::Unmap(_) => {}
                }
                prop_assert_eq!(s.live_mappings(), live.len());
            }
            for (tlb, len, _) in live {
                s.unmap(tlb, len, Direction::ToDevice, DmaAttrs::empty()).unwrap();
            }
            prop_assert_eq!(s.used_slots(), 0);
        }
    }
}

/// Issue 11, bug 9: with no min-align mask, a bounce of a page or more is
/// page aligned (Linux `swiotlb_search_pool_area`), whatever the original's
/// page offset; the bytes still bounce exactly.
#[test]
fn bug09_page_sized_bounces_are_page_aligned_without_a_min_align_mask() {
    let (mem, s) = pool(256);
    let orig = 0x2000_0800u64;
    let data: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8 + 1).collect();
    fill(&mem, orig, &data);
    let tlb = s
        .map(
            PhysAddr::new(orig),
            4096,
            Direction::ToDevice,
            DmaAttrs::empty(),
            0,
        )
        .unwrap();
    assert_eq!(tlb.raw() & (PAGE_SIZE - 1), 0, "bounce at {tlb}");
    assert_eq!(read(&mem, tlb.raw(), 4096), data);
    // Below a page, and with a min-align mask, the original's bits are kept.
    let small = s
        .map(
            PhysAddr::new(orig + 0x10),
            0x100,
            Direction::ToDevice,
            DmaAttrs::empty(),
            0,
        )
        .unwrap();
    assert_eq!(read(&mem, small.raw(), 0x100), data[0x10..0x110]);
    let kept = s
        .map(
            PhysAddr::new(orig),
            4096,
            Direction::ToDevice,
            DmaAttrs::empty(),
            0xfff,
        )
        .unwrap();
    assert_eq!(kept.raw() & 0xfff, 0x800, "min_align_mask keeps the offset");
}

/// The boundary is counted in the device's DMA space from the pool's DMA
/// address (`swiotlb_search_pool_area`): with the pool at DMA 0x800 past a
/// 4 KiB boundary, two slots from slot 0 would span it, so the search moves
/// to slot 1; one slot fits anywhere, and a boundary below one slot still
/// lets single slots through, as in Linux (`get_max_slots` = 1).
#[test]
fn slots_never_span_the_segment_boundary_in_dma_space() {
    let (mem, s) = pool(16);
    let orig = PhysAddr::new(0x20_0000);
    fill(&mem, orig.raw(), &[7; 0x1000]);
    let b = SegBoundary {
        mask: 0xfff,
        pool_dma: crate::types::DmaAddr::new(0x8000_0800),
    };
    let dir = Direction::ToDevice;
    // 3 KiB: two slots, under a page (so no page alignment is asked).
    let a = s
        .map_bounded(orig, 0xc00, dir, DmaAttrs::empty(), 0, b)
        .unwrap();
    assert_eq!(a.raw(), POOL + IO_TLB_SIZE, "slot 1: DMA 0x8000_1000");
    assert_eq!(read(&mem, a.raw(), 0xc00), vec![7; 0xc00]);
    let one = s
        .map_bounded(orig, 0x800, dir, DmaAttrs::empty(), 0, b)
        .unwrap();
    assert_eq!(one.raw(), POOL + 3 * IO_TLB_SIZE, "one slot after the hint");
    // Without the boundary the same search takes slot 0.
    s.unmap(a, 0xc00, dir, DmaAttrs::empty()).unwrap();
    s.unmap(one, 0x800, dir, DmaAttrs::empty()).unwrap();
    let (_, s) = pool(16);
    let a = s.map(orig, 0xc00, dir, DmaAttrs::empty(), 0).unwrap();
    assert_eq!(a.raw(), POOL);
    // A boundary smaller than a slot: single slots still map.
    let (_, s) = pool(16);
    let tiny = SegBoundary {
        mask: 0xff,
        pool_dma: crate::types::DmaAddr::new(0),
    };
    assert!(s
        .map_bounded(orig, 0x100, dir, DmaAttrs::empty(), 0, tiny)
        .is_ok());
}
