//! Scatterlist mapping through the IOMMU backend: one IOVA allocation per
//! table, boundary padding, concatenation, per-segment MMIO and bus-address
//! segments with their own lengths.

#[path = "iommu_common/mod.rs"]
mod dma_common;

use dma_api::port::{DmaBackend, SegPlan, SegTarget};
use dma_api::{BusAddr, Direction, DmaAddr, DmaAttrs, DmaError, PhysAddr};
use dma_common::*;
use dma_iommu::pgtable::Pte;
use dma_iommu::{DomainType, Iova, Prot};
use dma_sim::fabric::RcFaultReason;
use proptest::prelude::*;
use scatterlist::{DmaFlags, ProviderId, SegKind, SgTable};

/// One CPU entry of a test table.
#[derive(Clone, Copy, Debug)]
struct Seg {
    phys: u64,
    len: u64,
    target: SegTarget,
}

fn ram(phys: u64, len: u64) -> Seg {
    Seg {
        phys,
        len,
        target: SegTarget::Ram,
    }
}

fn hb(phys: u64, len: u64) -> Seg {
    Seg {
        phys,
        len,
        target: SegTarget::PeerHostBridge,
    }
}

fn bus(phys: u64, len: u64, bus: u64) -> Seg {
    Seg {
        phys,
        len,
        target: SegTarget::PeerBus(BusAddr::new(bus)),
    }
}

/// A table with exactly one entry per segment (chained single-range tables,
/// so touching ranges are not merged by the builder) and its plan.
fn table(segs: &[Seg]) -> (SgTable, Vec<SegPlan>) {
    let mut t = SgTable::new();
    for s in segs {
        let kind = match s.target {
            SegTarget::Ram => SegKind::Ram,
            _ => SegKind::PeerBar(ProviderId::new(1)),
        };
        let one = SgTable::from_ranges(&[(PhysAddr::new(s.phys), s.len)], kind, 1 << 31).unwrap();
        assert_eq!(one.orig_nents(), 1);
        t = t.chain(one).unwrap();
    }
    let plan = segs
        .iter()
        .map(|s| SegPlan {
            phys: PhysAddr::new(s.phys),
            target: s.target,
        })
        .collect();
    (t, plan)
}

fn dma_segs(t: &SgTable) -> Vec<(u64, u64, DmaFlags)> {
    t.dma_iter()
        .map(|e| (e.dma_address().raw(), u64::from(e.dma_len()), e.dma_flags()))
        .collect()
}

fn leaf_prot(r: &Rig, iova: u64) -> Prot {
    let io = r.iommu.lock().unwrap();
    match io.page_table(r.d).unwrap().leaf_entry(Iova::new(iova)) {
        Some((_, _, Pte::Leaf { prot, .. })) => prot,
        other => panic!("no leaf at {iova:#x}: {other:?}"),
    }
}

#[test]
fn mixed_table_ram_host_bridge_and_bus_segments() {
    let r = rig(DomainType::Dma, arm_s1(), |_| {});
    let segs = [
        ram(0x1_0000_0200, 0x1e00), // A: unaligned start, ends on a granule
        ram(0x1_0010_0000, 0x3000), // B: concatenates with A
        hb(0x2_0000_0000, 0x2000),  // C: host-bridge peer, MMIO
        bus(0x3_0000_0000, 0x1000, 0x9000_0000), // D: bus address, 4 KiB
        bus(0x3_0010_0000, 0x3000, 0x9010_0000), // E: bus address, 12 KiB
        ram(0x1_0020_0000, 0x800),  // F: RAM after the bus segments
    ];
    let (mut t, plan) = table(&segs);
    let n = r
        .dev
        .map_sg(&mut t, &plan, Direction::Bidirectional, DmaAttrs::empty())
        .unwrap();
    assert_eq!(n, 5);
    assert_eq!(t.nents(), 5);
    let got = dma_segs(&t);
    // One IOVA allocation for the whole table (8 granules: A 2, B 3, C 2, F 1).
    assert_eq!(r.dev.stats().iova_allocs, 1);
    assert_eq!(r.dom.iovad().with_domain(|d| d.allocated_count()), 1);
    let base = got[0].0 - 0x200;
    assert_eq!(base & 0xfff, 0);
    assert_eq!(got[0], (base + 0x200, 0x4e00, DmaFlags::EMPTY)); // A+B
    assert_eq!(got[1], (base + 0x5000, 0x2000, DmaFlags::MMIO)); // C
                                                                 // The bus-address segments keep their own addresses AND lengths.
    assert_eq!(got[2], (0x9000_0000, 0x1000, DmaFlags::BUS_ADDRESS));
    assert_eq!(got[3], (0x9010_0000, 0x3000, DmaFlags::BUS_ADDRESS));
    assert_eq!(got[4], (base + 0x7000, 0x800, DmaFlags::EMPTY)); // F
                                                                 // Page-table leaves: RAM cacheable, peer MMIO, nothing for bus segments.
    assert_eq!(leaf_prot(&r, base), Prot::READ | Prot::WRITE | Prot::CACHE);
    assert_eq!(
        leaf_prot(&r, base + 0x2000),
        Prot::READ | Prot::WRITE | Prot::CACHE
    );
    assert_eq!(
        leaf_prot(&r, base + 0x5000),
        Prot::READ | Prot::WRITE | Prot::MMIO
    );
    assert_eq!(
        leaf_prot(&r, base + 0x6000),
        Prot::READ | Prot::WRITE | Prot::MMIO
    );
    assert_eq!(
        leaf_prot(&r, base + 0x7000),
        Prot::READ | Prot::WRITE | Prot::CACHE
    );
    assert_eq!(
        r.iommu
            .lock()
            .unwrap()
            .page_table(r.d)
            .unwrap()
            .leaf_count(),
        8
    );
    // Byte-exact translation of every IOVA-mapped CPU byte.
    let expect = [
        (base + 0x200, 0x1_0000_0200u64, 0x1e00u64),
        (base + 0x2000, 0x1_0010_0000, 0x3000),
        (base + 0x5000, 0x2_0000_0000, 0x2000),
        (base + 0x7000, 0x1_0020_0000, 0x800),
    ];
    for (dma, phys, len) in expect {
        for off in [0, 1, len / 2, len - 1] {
            assert_eq!(
                r.translate(DmaAddr::new(dma + off), true).unwrap(),
                Some(PhysAddr::new(phys + off))
            );
        }
        let pat = pattern(len as usize, phys as u8);
        r.cpu_write(PhysAddr::new(phys), &pat);
        assert_eq!(r.dev_read(DmaAddr::new(dma), len).unwrap(), pat);
    }
    // Unmap: everything faults, the one allocation is released once, and the
    // bus marks are gone.
    r.dev
        .unmap_sg(&mut t, &plan, Direction::Bidirectional, DmaAttrs::empty())
        .unwrap();
    for (dma, _, _) in expect {
        assert_eq!(
            r.translate(DmaAddr::new(dma), false).unwrap_err().reason,
            RcFaultReason::NotPresent
        );
    }
    assert_eq!(r.released(), vec![(Iova::new(base), 0x8000)]);
    assert!(!t.is_dma_mapped());
    assert!(t.iter().all(|e| e.dma_flags() == DmaFlags::EMPTY));
    assert_eq!(
        r.iommu
            .lock()
            .unwrap()
            .page_table(r.d)
            .unwrap()
            .leaf_count(),
        0
    );
}

#[test]
fn all_bus_address_table_takes_no_iova() {
    let r = rig(DomainType::Dma, vtd(), |_| {});
    let segs = [
        bus(0x3_0000_0000, 0x1000, 0x9000_0000),
        bus(0x3_0000_1000, 0x2000, 0x9000_1000),
    ];
    let (mut t, plan) = table(&segs);
    let n = r
        .dev
        .map_sg(&mut t, &plan, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(r.dev.stats().iova_allocs, 0);
    assert_eq!(
        dma_segs(&t),
        vec![
            (0x9000_0000, 0x1000, DmaFlags::BUS_ADDRESS),
            (0x9000_1000, 0x2000, DmaFlags::BUS_ADDRESS)
        ]
    );
    r.dev
        .unmap_sg(&mut t, &plan, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert!(r.released().is_empty());
}

#[test]
fn segment_boundary_padding() {
    let r = rig(DomainType::Dma, vtd(), |d| {
        d.seg_boundary_mask = 0xffff;
        d.max_seg_size = 1 << 20;
    });
    let segs = [
        ram(0x1_0000_0000, 0xc000),
        ram(0x1_0010_0000, 0xc000),
        ram(0x1_0020_0000, 0x2000),
        ram(0x1_0030_0000, 0x2000),
    ];
    let (mut t, plan) = table(&segs);
    let n = r
        .dev
        .map_sg(&mut t, &plan, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    let got = dma_segs(&t);
    let base = got[0].0;
    // Layout: 0..0xc000, pad to 0x10000, 0x10000..0x1c000, then 0x1c000..
    // 0x1e000 fits before 0x20000 and concatenates, 0x1e000..0x20000 too.
    assert_eq!(
        got,
        vec![
            (base, 0xc000, DmaFlags::EMPTY),
            (base + 0x10000, 0x10000, DmaFlags::EMPTY),
        ]
    );
    assert_eq!(n, 2);
    for (a, l, _) in &got {
        assert_eq!(
            a >> 16,
            (a + l - 1) >> 16,
            "segment {a:#x}+{l:#x} crosses 64 KiB"
        );
    }
    // The padding is not mapped.
    assert_eq!(
        r.translate(DmaAddr::new(base + 0xc000), false)
            .unwrap_err()
            .reason,
        RcFaultReason::NotPresent
    );
    assert_eq!(
        r.translate(DmaAddr::new(base + 0x1_0000), true).unwrap(),
        Some(PhysAddr::new(0x1_0010_0000))
    );
    r.dev
        .unmap_sg(&mut t, &plan, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(r.released(), vec![(Iova::new(base), 0x20000)]);
    assert_eq!(
        r.iommu
            .lock()
            .unwrap()
            .page_table(r.d)
            .unwrap()
            .leaf_count(),
        0
    );
}

#[test]
fn concatenation_stops_at_max_seg_size() {
    let r = rig(DomainType::Dma, vtd(), |_| {});
    // 20 discontiguous 16 KiB pieces: 64 KiB (the default) per DMA segment.
    let segs: Vec<Seg> = (0..20)
        .map(|i| ram(0x1_0000_0000 + i * 0x10_0000, 0x4000))
        .collect();
    let (mut t, plan) = table(&segs);
    let n = r
        .dev
        .map_sg(&mut t, &plan, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(n, 5);
    let got = dma_segs(&t);
    for (i, (a, l, _)) in got.iter().enumerate() {
        assert_eq!(*l, 0x10000);
        assert_eq!(*a, got[0].0 + i as u64 * 0x10000);
    }
    assert_eq!(r.dev.stats().iova_allocs, 1);
}

#[test]
fn failed_map_sg_undoes_everything() {
    let r = rig(DomainType::Dma, vtd(), |_| {});
    // The second segment is beyond the table's output address size.
    let segs = [ram(0x1_0000_0000, 0x2000), ram(1 << 60, 0x1000)];
    let (mut t, plan) = table(&segs);
    let e = r
        .dev
        .map_sg(&mut t, &plan, Direction::ToDevice, DmaAttrs::empty())
        .unwrap_err();
    assert!(matches!(e, DmaError::NotTranslatable { .. }), "{e}");
    assert!(!t.is_dma_mapped());
    assert!(t.iter().all(|e| e.dma_len() == 0));
    let io = r.iommu.lock().unwrap();
    assert_eq!(io.page_table(r.d).unwrap().leaf_count(), 0);
    // The allocation went back through the flush.
    assert_eq!(io.released_iovas(r.d).len(), 1);
    assert_eq!(io.released_iovas(r.d)[0].1, 0x3000);
}

#[test]
fn plan_length_must_match() {
    let r = rig(DomainType::Dma, vtd(), |_| {});
    let (mut t, plan) = table(&[ram(0x1_0000_0000, 0x1000), ram(0x1_0001_0000, 0x1000)]);
    let e = r
        .dev
        .map_sg(&mut t, &plan[..1], Direction::ToDevice, DmaAttrs::empty())
        .unwrap_err();
    assert_eq!(e.kind(), dma_api::ErrorKind::Invalid);
    assert_eq!(r.dev.stats().iova_allocs, 0);
}

#[test]
fn lazy_unmap_sg_releases_after_timeout() {
    let r = rig(DomainType::DmaFq, vtd(), |_| {});
    let (mut t, plan) = table(&[ram(0x1_0000_0000, 0x1000), ram(0x1_0001_0000, 0x1000)]);
    r.dev
        .map_sg(&mut t, &plan, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    let dma = t.dma_iter().next().unwrap().dma_address();
    assert!(r.translate(dma, false).unwrap().is_some());
    r.dev
        .unmap_sg(&mut t, &plan, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert!(r.translate(dma, false).unwrap().is_some());
    assert!(r.released().is_empty());
    r.clock.advance(dma_iommu::domain::PER_CPU_FQ_TIMEOUT);
    assert_eq!(r.poll(), 1);
    assert!(r.translate(dma, false).is_err());
    assert_eq!(r.released(), vec![(dma.as_iova(), 0x2000)]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random tables: no DMA segment crosses the boundary, none exceeds the
    /// max segment size, the DMA view covers exactly the CPU bytes in order,
    /// and every CPU byte translates to itself.
    #[test]
    fn random_tables_respect_device_limits(
        lens in proptest::collection::vec((0u64..0x40, 1u64..0x6000, 0u8..4), 1..24),
        mask_bits in 14u32..20,
        max_kib in 8u64..96,
    ) {
        let mask = (1u64 << mask_bits) - 1;
        let max_seg = max_kib * 1024;
        let r = rig(DomainType::Dma, vtd(), |d| {
            d.seg_boundary_mask = mask;
            d.max_seg_size = max_seg;
        });
        let segs: Vec<Seg> = lens
            .iter()
            .enumerate()
            .map(|(i, &(off, len, kind))| {
                let phys = 0x1_0000_0000 + (i as u64) * 0x10_0000 + off * 0x40;
                // Keep segments no larger than the boundary (what Linux
                // assumes) and end on a granule or not, at random.
                let len = len.min(mask + 1 - (phys & 0xfff));
                match kind {
                    0 => bus(phys, len, 0x9000_0000 + (i as u64) * 0x10_0000),
                    1 => hb(phys, len),
                    _ => ram(phys, len),
                }
            })
            .collect();
        let (mut t, plan) = table(&segs);
        r.dev.map_sg(&mut t, &plan, Direction::Bidirectional, DmaAttrs::empty()).unwrap();
        let got = dma_segs(&t);
        let total: u64 = got.iter().map(|s| s.1).sum();
        prop_assert_eq!(total, segs.iter().map(|s| s.len).sum::<u64>());
        prop_assert!(r.dev.stats().iova_allocs <= 1);
        for (a, l, f) in &got {
            if !f.contains(DmaFlags::BUS_ADDRESS) {
                prop_assert_eq!(a & !mask, (a + l - 1) & !mask);
                prop_assert!(*l <= max_seg.max(0x6000));
            }
        }
        // Walk the DMA view and the CPU view together.
        let mut cpu = segs.iter();
        let mut cur = cpu.next().copied();
        let mut used = 0u64;
        for (a, l, f) in &got {
            let mut done = 0;
            while done < *l {
                let s = cur.unwrap();
                let take = (s.len - used).min(l - done);
                let dma = a + done;
                if f.contains(DmaFlags::BUS_ADDRESS) {
                    match s.target {
                        SegTarget::PeerBus(b) => prop_assert_eq!(dma, b.raw() + used),
                        _ => prop_assert!(false, "bus segment for a non-bus entry"),
                    }
                } else {
                    for o in [0, take - 1] {
                        prop_assert_eq!(
                            r.translate(DmaAddr::new(dma + o), true).unwrap(),
                            Some(PhysAddr::new(s.phys + used + o))
                        );
                    }
                }
                done += take;
                used += take;
                if used == s.len {
                    cur = cpu.next().copied();
                    used = 0;
                }
            }
        }
        r.dev.unmap_sg(&mut t, &plan, Direction::Bidirectional, DmaAttrs::empty()).unwrap();
        prop_assert_eq!(r.iommu.lock().unwrap().page_table(r.d).unwrap().leaf_count(), 0);
    }
}

#[test]
fn entries_larger_than_max_seg_size_stay_whole_and_never_merge() {
    let r = rig(DomainType::Dma, vtd(), |d| d.max_seg_size = 0x1000);
    let segs = [
        ram(0x1_0000_0000, 0x3000),
        ram(0x1_0010_0000, 0x1000),
        ram(0x1_0020_0000, 0x1000),
    ];
    let (mut t, plan) = table(&segs);
    let n = r
        .dev
        .map_sg(&mut t, &plan, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    let got = dma_segs(&t);
    let base = got[0].0;
    assert_eq!(n, 3);
    assert_eq!(
        got,
        vec![
            (base, 0x3000, DmaFlags::EMPTY),
            (base + 0x3000, 0x1000, DmaFlags::EMPTY),
            (base + 0x4000, 0x1000, DmaFlags::EMPTY),
        ]
    );
}
