//! Untrusted devices behind the IOMMU: sub-granule RAM is bounced through
//! swiotlb (drivers/iommu/dma-iommu.c `iommu_dma_map_swiotlb`), so the device
//! sees its buffer and zeros in the rest of the granule, never the bytes that
//! share the original's page. Every access goes through the root complex
//! (IOTLB + hardware walker reading the page tables).

#[path = "iommu_common/mod.rs"]
mod dma_common;

use std::sync::Arc;

use dma_api::port::{DmaBackend, MapRequest, SegPlan, SegTarget};
use dma_api::swiotlb::Swiotlb;
use dma_api::{Direction, DmaAddr, DmaAttrs, DmaError, PhysAddr};
use dma_common::*;
use dma_iommu::dma::IommuDmaBackend;
use dma_iommu::{DomainType, Iova};
use dma_sim::fabric::RcFaultReason;
use scatterlist::{DmaFlags, SegKind, SgTable};

const POOL: u64 = 0x1000_0000;
const POOL_LEN: u64 = 1 << 20;
const PAGE: u64 = 0x1_0000_0000;
const SECRET: u8 = 0x5e;
const STALE: u8 = 0xaa;
/// The buffer: 0x80 bytes at an odd offset inside `PAGE`.
const BUF: u64 = PAGE + 0x7c3;
const LEN: u64 = 0x80;

/// A rig whose device is untrusted (or trusted) and whose backend has a
/// swiotlb pool over the rig's memory, pre-filled with stale bytes.
fn setup(trusted: bool) -> (Rig, IommuDmaBackend, Arc<Swiotlb>) {
    let r = rig(DomainType::Dma, vtd(), |d| d.trusted = trusted);
    let pool = Arc::new(
        Swiotlb::new(
            dma_sim::SimRam(Arc::clone(&r.mem)).port(),
            PhysAddr::new(POOL),
            POOL_LEN,
        )
        .unwrap(),
    );
    r.cpu_write(PhysAddr::new(POOL), &vec![STALE; POOL_LEN as usize]);
    let dev = IommuDmaBackend::new(Arc::clone(&r.dom), r.dev.device())
        .unwrap()
        .with_swiotlb(Arc::clone(&pool));
    // The page holding the buffer is full of a secret.
    r.cpu_write(PhysAddr::new(PAGE), &[SECRET; 0x2000]);
    (r, dev, pool)
}

fn req(phys: u64, len: u64, dir: Direction) -> MapRequest {
    MapRequest {
        phys: PhysAddr::new(phys),
        len,
        dir,
        attrs: DmaAttrs::empty(),
        target: SegTarget::Ram,
    }
}

fn granule_of(dma: DmaAddr) -> DmaAddr {
    DmaAddr::new(dma.raw() & !0xfff)
}

/// Every byte of the two secret pages outside the `bufs` still holds the
/// secret.
fn secret_intact(r: &Rig, bufs: &[(u64, u64)]) {
    let all = r.cpu_read(PhysAddr::new(PAGE), 0x2000);
    for (i, &b) in all.iter().enumerate() {
        let a = PAGE + i as u64;
        if bufs.iter().any(|&(p, l)| a >= p && a < p + l) {
            continue;
        }
        assert_eq!(b, SECRET, "byte at {a:#x}");
    }
}

#[test]
fn untrusted_sub_granule_buffer_is_bounced_and_the_secret_never_reaches_the_device() {
    let (r, dev, pool) = setup(false);
    let pat = pattern(LEN as usize, 3);
    r.cpu_write(PhysAddr::new(BUF), &pat);
    let rq = req(BUF, LEN, Direction::Bidirectional);
    assert!(dev.bounces(rq.phys, rq.len));
    let dma = dev.map(&rq).unwrap();
    assert_eq!(dev.stats().bounced, 1);
    assert_eq!(pool.live_mappings(), 1);
    // The DMA address lands in the pool, not on the original.
    let tlb = r.translate(dma, false).unwrap().unwrap();
    assert!(pool.contains(tlb), "{tlb:?} not in the pool");
    assert!(dev.need_sync(dma));
    // The whole mapped granule: the buffer, then zeros (the stale pool bytes
    // of the padding were cleared); no secret byte anywhere.
    let g = granule_of(dma);
    let off = (dma.raw() - g.raw()) as usize;
    let seen = r.dev_read(g, 0x1000).unwrap();
    assert_eq!(&seen[off..off + LEN as usize], &pat[..]);
    assert!(seen[..off].iter().all(|&b| b == 0), "pre-padding");
    assert!(
        seen[off + LEN as usize..].iter().all(|&b| b == 0),
        "post-padding"
    );
    // The neighbouring granules are not mapped at all.
    let below = r
        .translate(DmaAddr::new(g.raw().wrapping_sub(1)), false)
        .unwrap_err();
    assert_eq!(below.reason, RcFaultReason::NotPresent);
    let above = r
        .translate(DmaAddr::new(g.raw() + 0x1000), false)
        .unwrap_err();
    assert_eq!(above.reason, RcFaultReason::NotPresent);

    // A device write lands in the bounce buffer; the original changes only
    // at sync_for_cpu.
    let w1 = pattern(LEN as usize, 77);
    r.dev_write(dma, &w1).unwrap();
    assert_eq!(r.cpu_read(PhysAddr::new(BUF), LEN as usize), pat);
    dev.sync_for_cpu(dma, LEN, Direction::Bidirectional)
        .unwrap();
    assert_eq!(r.cpu_read(PhysAddr::new(BUF), LEN as usize), w1);
    secret_intact(&r, &[(BUF, LEN)]);

    // ... or at unmap, which also frees the slots after the IOTLB flush.
    let w2 = pattern(LEN as usize, 150);
    r.dev_write(dma, &w2).unwrap();
    assert_eq!(r.cpu_read(PhysAddr::new(BUF), LEN as usize), w1);
    dev.unmap(dma, &rq).unwrap();
    assert_eq!(r.cpu_read(PhysAddr::new(BUF), LEN as usize), w2);
    secret_intact(&r, &[(BUF, LEN)]);
    assert_eq!(pool.live_mappings(), 0);
    assert_eq!(
        r.translate(dma, false).unwrap_err().reason,
        RcFaultReason::NotPresent
    );
    assert_eq!(dev.stats().strict_flushes, 1);
}

#[test]
fn to_device_sees_cpu_updates_only_after_sync_for_device() {
    let (r, dev, _pool) = setup(false);
    let pat = pattern(LEN as usize, 9);
    r.cpu_write(PhysAddr::new(BUF), &pat);
    let rq = req(BUF, LEN, Direction::ToDevice);
    let dma = dev.map(&rq).unwrap();
    assert_eq!(r.dev_read(dma, LEN).unwrap(), pat);
    // ToDevice: the device may not write.
    assert_eq!(
        r.translate(dma, true).unwrap_err().reason,
        RcFaultReason::Permission
    );
    let upd = pattern(LEN as usize, 200);
    r.cpu_write(PhysAddr::new(BUF), &upd);
    assert_eq!(r.dev_read(dma, LEN).unwrap(), pat);
    dev.sync_for_device(dma, LEN, Direction::ToDevice).unwrap();
    assert_eq!(r.dev_read(dma, LEN).unwrap(), upd);
    dev.unmap(dma, &rq).unwrap();
    // ToDevice unmap copies nothing back.
    assert_eq!(r.cpu_read(PhysAddr::new(BUF), LEN as usize), upd);
    secret_intact(&r, &[(BUF, LEN)]);
}

#[test]
fn partial_sync_for_cpu_copies_exactly_the_sub_range() {
    let (r, dev, _pool) = setup(false);
    let orig = pattern(LEN as usize, 1);
    r.cpu_write(PhysAddr::new(BUF), &orig);
    let rq = req(BUF, LEN, Direction::FromDevice);
    let dma = dev.map(&rq).unwrap();
    // FromDevice: the device may not read.
    assert_eq!(
        r.translate(dma, false).unwrap_err().reason,
        RcFaultReason::Permission
    );
    let w = pattern(LEN as usize, 61);
    r.dev_write(dma, &w).unwrap();
    dev.sync_for_cpu(DmaAddr::new(dma.raw() + 0x10), 0x20, Direction::FromDevice)
        .unwrap();
    let mut want = orig.clone();
    want[0x10..0x30].copy_from_slice(&w[0x10..0x30]);
    assert_eq!(r.cpu_read(PhysAddr::new(BUF), LEN as usize), want);
    // A sync that leaves the mapping is refused, naming the range.
    let e = dev
        .sync_for_cpu(DmaAddr::new(dma.raw() + 0x70), 0x20, Direction::FromDevice)
        .unwrap_err();
    assert!(matches!(e, DmaError::NotMapped { len: 0x20, .. }), "{e:?}");
    dev.unmap(dma, &rq).unwrap();
    assert_eq!(r.cpu_read(PhysAddr::new(BUF), LEN as usize), w);
    secret_intact(&r, &[(BUF, LEN)]);
}

#[test]
fn a_buffer_crossing_a_granule_is_bounced_into_whole_granules() {
    let (r, dev, pool) = setup(false);
    let phys = PAGE + 0xf80;
    let len = 0x100;
    let pat = pattern(len as usize, 33);
    r.cpu_write(PhysAddr::new(phys), &pat);
    let rq = req(phys, len, Direction::Bidirectional);
    let dma = dev.map(&rq).unwrap();
    let g = granule_of(dma);
    let off = (dma.raw() - g.raw()) as usize;
    let end = off + len as usize;
    let span = end.div_ceil(0x1000) * 0x1000;
    let seen = r.dev_read(g, span as u64).unwrap();
    assert_eq!(&seen[off..end], &pat[..]);
    assert!(seen[..off].iter().chain(&seen[end..]).all(|&b| b == 0));
    DmaBackend::unmap(&dev, dma, &rq).unwrap();
    assert_eq!(pool.live_mappings(), 0);
    secret_intact(&r, &[(phys, len)]);
}

#[test]
fn trusted_devices_are_not_bounced() {
    let (r, dev, pool) = setup(true);
    let rq = req(BUF, LEN, Direction::Bidirectional);
    assert!(!dev.bounces(rq.phys, rq.len));
    let dma = dev.map(&rq).unwrap();
    assert_eq!(
        r.translate(dma, false).unwrap(),
        Some(PhysAddr::new(BUF)),
        "mapped in place"
    );
    assert_eq!(dev.stats().bounced, 0);
    assert_eq!(pool.stats().maps, 0);
    // Whole-granule mapping: a trusted device can reach the neighbours.
    let seen = r.dev_read(granule_of(dma), 0x1000).unwrap();
    assert_eq!(seen[0], SECRET);
    // Coherent and not bounced: syncs do nothing.
    assert!(!dev.need_sync(dma));
    DmaBackend::unmap(&dev, dma, &rq).unwrap();
}

#[test]
fn aligned_buffers_of_untrusted_devices_are_not_bounced() {
    let (r, dev, pool) = setup(false);
    let rq = req(PAGE + 0x1000, 0x1000, Direction::Bidirectional);
    assert!(!dev.bounces(rq.phys, rq.len));
    let dma = dev.map(&rq).unwrap();
    assert_eq!(
        r.translate(dma, false).unwrap(),
        Some(PhysAddr::new(PAGE + 0x1000))
    );
    assert_eq!(dev.stats().bounced, 0);
    assert_eq!(pool.stats().maps, 0);
    DmaBackend::unmap(&dev, dma, &rq).unwrap();
}

#[test]
fn without_a_pool_untrusted_ram_is_mapped_in_whole_granules() {
    // Linux with CONFIG_SWIOTLB=n: `dev_use_swiotlb` is false.
    let r = rig(DomainType::Dma, vtd(), |d| d.trusted = false);
    let rq = req(BUF, LEN, Direction::Bidirectional);
    assert!(r.dev.needs_bounce(rq.phys, rq.len));
    assert!(!r.dev.bounces(rq.phys, rq.len));
    let dma = r.dev.map(&rq).unwrap();
    assert_eq!(r.translate(dma, false).unwrap(), Some(PhysAddr::new(BUF)));
    DmaBackend::unmap(&r.dev, dma, &rq).unwrap();
}

#[test]
fn mmio_and_require_coherent_are_never_bounced() {
    let (_r, dev, pool) = setup(false);
    let hb = MapRequest {
        target: SegTarget::PeerHostBridge,
        ..req(0x2_0000_0010, 0x40, Direction::ToDevice)
    };
    assert_eq!(
        dev.map(&hb).unwrap_err(),
        DmaError::MmioNotBounceable {
            phys: PhysAddr::new(0x2_0000_0010),
            len: 0x40
        }
    );
    let mmio_attr = MapRequest {
        attrs: DmaAttrs::MMIO,
        ..req(0x2_0000_0010, 0x40, Direction::ToDevice)
    };
    assert!(matches!(
        dev.map(&mmio_attr).unwrap_err(),
        DmaError::MmioNotBounceable { .. }
    ));
    let coh = MapRequest {
        attrs: DmaAttrs::REQUIRE_COHERENT,
        ..req(BUF, LEN, Direction::ToDevice)
    };
    assert!(matches!(
        dev.map(&coh).unwrap_err(),
        DmaError::CoherenceRequired { .. }
    ));
    assert_eq!(pool.stats().maps, 0);
    assert_eq!(dev.stats().iova_allocs, 0);
    // Granule-aligned MMIO is mapped (no bounce needed).
    let ok = MapRequest {
        target: SegTarget::PeerHostBridge,
        ..req(0x2_0000_0000, 0x1000, Direction::ToDevice)
    };
    let dma = dev.map(&ok).unwrap();
    DmaBackend::unmap(&dev, dma, &ok).unwrap();
}

#[test]
fn bounce_slots_own_whole_granules() {
    let (r, dev, pool) = setup(false);
    let rq = req(BUF, LEN, Direction::Bidirectional);
    let dma = dev.map(&rq).unwrap();
    let tlb = r
        .iommu
        .lock()
        .unwrap()
        .page_table(r.d)
        .unwrap()
        .iova_to_phys(Iova::new(dma.raw()))
        .unwrap();
    assert_eq!(tlb.raw() & 0xfff, 0, "head slot on a granule");
    // 2 KiB slots: the whole 4 KiB granule is taken.
    assert_eq!(pool.used_slots(), 2);
    // Another (direct-style) bounce cannot land in that granule.
    let other = pool
        .map(
            PhysAddr::new(PAGE + 0x1800),
            0x40,
            Direction::ToDevice,
            DmaAttrs::empty(),
            0,
        )
        .unwrap();
    assert!(other.raw() >= tlb.raw() + 0x1000 || other.raw() < tlb.raw());
    DmaBackend::unmap(&dev, dma, &rq).unwrap();
    assert_eq!(pool.used_slots(), 1);
}

fn table(segs: &[(u64, u64)]) -> (SgTable, Vec<SegPlan>) {
    let mut t = SgTable::new();
    for &(p, l) in segs {
        let one = SgTable::from_ranges(&[(PhysAddr::new(p), l)], SegKind::Ram, 1 << 31).unwrap();
        t = t.chain(one).unwrap();
    }
    let plan = segs
        .iter()
        .map(|&(p, _)| SegPlan {
            phys: PhysAddr::new(p),
            target: SegTarget::Ram,
        })
        .collect();
    (t, plan)
}

#[test]
fn sg_table_is_mapped_entry_by_entry_marked_swiotlb_and_round_trips() {
    let (r, dev, pool) = setup(false);
    // Two sub-granule entries in the secret pages and one aligned page.
    let segs = [(BUF, LEN), (PAGE + 0x1404, 0x3c), (0x1_0000_4000, 0x1000)];
    for (i, &(p, l)) in segs.iter().enumerate() {
        r.cpu_write(PhysAddr::new(p), &pattern(l as usize, i as u8));
    }
    let (mut t, plan) = table(&segs);
    let n = dev
        .map_sg(&mut t, &plan, Direction::Bidirectional, DmaAttrs::empty())
        .unwrap();
    assert_eq!(n, 3, "no merging on the swiotlb path");
    let dmas: Vec<_> = t
        .dma_iter()
        .map(|e| (e.dma_address(), u64::from(e.dma_len()), e.dma_flags()))
        .collect();
    assert_eq!(dmas.len(), 3);
    assert!(dmas[0].2.contains(DmaFlags::SWIOTLB));
    assert!(!dmas[1].2.contains(DmaFlags::SWIOTLB));
    assert!(!dmas[2].2.contains(DmaFlags::SWIOTLB));
    for (k, &(dma, len, _)) in dmas.iter().enumerate() {
        assert_eq!(len, segs[k].1);
        // The device reads the entry's bytes.
        assert_eq!(
            r.dev_read(dma, len).unwrap(),
            pattern(len as usize, k as u8)
        );
        let pa = r.translate(dma, false).unwrap().unwrap();
        // Sub-granule entries are bounced; the aligned page is not.
        assert_eq!(pool.contains(pa), k < 2, "entry {k}");
        // The mapped granule holds the entry's bytes and zeros: no secret.
        let seen = r.dev_read(granule_of(dma), 0x1000).unwrap();
        let off = (dma.raw() & 0xfff) as usize;
        assert_eq!(
            &seen[off..off + len as usize],
            &pattern(len as usize, k as u8)[..]
        );
        assert!(
            seen[..off]
                .iter()
                .chain(&seen[off + len as usize..])
                .all(|&b| b == 0),
            "entry {k}"
        );
    }
    assert_eq!(pool.live_mappings(), 2);
    // Device writes; per-segment sync copies the bounced ones back.
    for (k, &(dma, len, _)) in dmas.iter().enumerate() {
        r.dev_write(dma, &pattern(len as usize, 100 + k as u8))
            .unwrap();
    }
    assert_eq!(
        r.cpu_read(PhysAddr::new(BUF), LEN as usize),
        pattern(LEN as usize, 0)
    );
    for &(dma, len, _) in &dmas {
        dev.sync_for_cpu(dma, len, Direction::Bidirectional)
            .unwrap();
    }
    for (k, &(p, l)) in segs.iter().enumerate() {
        assert_eq!(
            r.cpu_read(PhysAddr::new(p), l as usize),
            pattern(l as usize, 100 + k as u8)
        );
    }
    // Write again; unmap_sg (which sees the mark) copies back and frees.
    for (k, &(dma, len, _)) in dmas.iter().enumerate() {
        r.dev_write(dma, &pattern(len as usize, 200 + k as u8))
            .unwrap();
    }
    dev.unmap_sg(&mut t, &plan, Direction::Bidirectional, DmaAttrs::empty())
        .unwrap();
    for (k, &(p, l)) in segs.iter().enumerate() {
        assert_eq!(
            r.cpu_read(PhysAddr::new(p), l as usize),
            pattern(l as usize, 200 + k as u8)
        );
    }
    secret_intact(&r, &[(BUF, LEN), (PAGE + 0x1404, 0x3c)]);
    assert_eq!(pool.live_mappings(), 0);
    assert!(!t.is_dma_mapped());
    assert!(t
        .iter()
        .all(|e| e.dma_len() == 0 && e.dma_flags().is_empty()));
    for &(dma, _, _) in &dmas {
        assert!(r.translate(dma, false).is_err());
    }
}

#[test]
fn sg_failure_unmaps_what_was_mapped() {
    let (_r, dev, pool) = setup(false);
    let (mut t, mut plan) = table(&[(BUF, LEN), (0x2_0000_0010, 0x40)]);
    plan[1].target = SegTarget::PeerHostBridge;
    let e = dev
        .map_sg(&mut t, &plan, Direction::ToDevice, DmaAttrs::empty())
        .unwrap_err();
    // The error names the entry that failed.
    assert!(
        matches!(&e, DmaError::TableEntry { index: 1, cause, .. }
            if matches!(**cause, DmaError::MmioNotBounceable { .. })),
        "{e:?}"
    );
    assert_eq!(pool.live_mappings(), 0);
    assert!(!t.is_dma_mapped());
    assert!(t
        .iter()
        .all(|e| e.dma_len() == 0 && e.dma_flags().is_empty()));
}

#[test]
fn two_step_link_bounces_the_partial_head_and_tail_granules() {
    use dma_api::port::IovaOps;
    let (r, dev, pool) = setup(false);
    r.cpu_write(PhysAddr::new(PAGE + 0x2000), &[SECRET; 0x1000]);
    let phys = BUF; // PAGE + 0x7c3
    let size = 0x1900u64; // head 0x83d bytes, one whole page, tail 0xc3
    let pat = pattern(size as usize, 4);
    r.cpu_write(PhysAddr::new(phys), &pat);
    let st = dev.try_alloc(PhysAddr::new(phys), size).unwrap();
    dev.link(
        &st,
        PhysAddr::new(phys),
        0,
        size,
        Direction::Bidirectional,
        DmaAttrs::empty(),
    )
    .unwrap();
    dev.sync(&st, 0, size).unwrap();
    assert_eq!(pool.live_mappings(), 2, "head and tail bounced");
    let dma = DmaAddr::new(st.base.raw() + st.first_offset);
    assert_eq!(dma.raw() & 0xfff, 0x7c3);
    // The device sees the link's bytes and zeros around them.
    let seen = r.dev_read(DmaAddr::new(st.base.raw()), 0x3000).unwrap();
    assert!(seen[..0x7c3].iter().all(|&b| b == 0), "head pre-padding");
    assert_eq!(&seen[0x7c3..0x7c3 + size as usize], &pat[..]);
    assert!(
        seen[0x7c3 + size as usize..].iter().all(|&b| b == 0),
        "tail post-padding"
    );
    // The whole middle granule is mapped in place; the ends are bounced.
    let pa = |o: u64| {
        r.translate(DmaAddr::new(st.base.raw() + o), false)
            .unwrap()
            .unwrap()
    };
    assert_eq!(pa(0x1000), PhysAddr::new(PAGE + 0x1000));
    assert!(pool.contains(pa(0x7c3)));
    assert!(pool.contains(pa(0x2000)));
    // Device writes reach the original at sync_for_cpu (both bounces and
    // the in-place page), never the neighbours.
    let w = pattern(size as usize, 123);
    r.dev_write(dma, &w).unwrap();
    dev.sync_for_cpu(dma, size, Direction::Bidirectional)
        .unwrap();
    assert_eq!(r.cpu_read(PhysAddr::new(phys), size as usize), w);
    let w2 = pattern(size as usize, 7);
    r.dev_write(dma, &w2).unwrap();
    dev.destroy(st, size, Direction::Bidirectional, DmaAttrs::empty())
        .unwrap();
    assert_eq!(r.cpu_read(PhysAddr::new(phys), size as usize), w2);
    assert_eq!(pool.live_mappings(), 0);
    let all = r.cpu_read(PhysAddr::new(PAGE), 0x3000);
    for (i, &b) in all.iter().enumerate() {
        let a = PAGE + i as u64;
        if a < phys || a >= phys + size {
            assert_eq!(b, SECRET, "byte at {a:#x}");
        }
    }
}

#[test]
fn two_step_unlink_of_a_small_link_copies_back_and_frees() {
    use dma_api::port::IovaOps;
    let (r, dev, pool) = setup(false);
    let st = dev.try_alloc(PhysAddr::new(BUF), LEN).unwrap();
    dev.link(
        &st,
        PhysAddr::new(BUF),
        0,
        LEN,
        Direction::FromDevice,
        DmaAttrs::empty(),
    )
    .unwrap();
    assert_eq!(pool.live_mappings(), 1);
    let dma = DmaAddr::new(st.base.raw() + st.first_offset);
    let w = pattern(LEN as usize, 42);
    r.dev_write(dma, &w).unwrap();
    dev.unlink(&st, 0, LEN, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(r.cpu_read(PhysAddr::new(BUF), LEN as usize), w);
    assert_eq!(pool.live_mappings(), 0);
    assert!(r.translate(dma, true).is_err());
    secret_intact(&r, &[(BUF, LEN)]);
    dev.destroy(st, 0, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
}

#[test]
fn pool_aligned_map_refuses_bad_masks_and_foreign_padding() {
    let (_r, _dev, pool) = setup(false);
    let e = pool
        .map_aligned(
            PhysAddr::new(BUF),
            LEN,
            Direction::ToDevice,
            DmaAttrs::empty(),
            0,
            0x1233,
        )
        .unwrap_err();
    assert_eq!(e, DmaError::InvalidMaskValue { value: 0x1233 });
    // A plain (slot-aligned, not granule-owning) mapping cannot have its
    // granule padding zeroed: the granule is not all its own.
    let tlb = pool
        .map(
            PhysAddr::new(BUF),
            LEN,
            Direction::ToDevice,
            DmaAttrs::empty(),
            0,
        )
        .unwrap();
    assert_eq!(pool.mapping_len(tlb), Some(LEN));
    let e = pool.zero_padding(tlb, LEN, 0x1000).unwrap_err();
    assert!(matches!(e, DmaError::NotMapped { .. }), "{e:?}");
    // A length that is not the mapping's is refused too.
    let e = pool.zero_padding(tlb, LEN - 1, 0x800).unwrap_err();
    assert!(matches!(e, DmaError::NotMapped { .. }), "{e:?}");
    pool.zero_padding(tlb, LEN, 0x800).unwrap();
    pool.unmap(tlb, LEN, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
}

/// Bug (two-step cost): `destroy` of a mostly unlinked reservation stepped
/// granule by granule under the IOMMU lock, twice for an untrusted device
/// (looking up every granule for a bounce slot, then unmapping). Counted, not
/// timed: a 64 GiB reservation with a bounced head and one 2 MiB link at the
/// far end costs the entries of the tables holding them, twice (bounce
/// search, unmap), and no per-granule lookups.
#[test]
fn two_step_destroy_of_a_sparse_reservation_costs_what_is_mapped() {
    use dma_api::port::IovaOps;
    let (r, dev, pool) = setup(false);
    const MIB2: u64 = 2 << 20;
    let size = 64u64 << 30;
    let st = dev.try_alloc(PhysAddr::new(BUF), size).unwrap();
    let head = 0x1000 - (BUF & 0xfff);
    dev.link(
        &st,
        PhysAddr::new(BUF),
        0,
        head,
        Direction::ToDevice,
        DmaAttrs::empty(),
    )
    .unwrap();
    let far = size - MIB2 - st.first_offset;
    dev.link(
        &st,
        PhysAddr::new(0x2_0000_0000),
        far,
        MIB2,
        Direction::ToDevice,
        DmaAttrs::empty(),
    )
    .unwrap();
    dev.sync(&st, 0, far + MIB2).unwrap();
    assert_eq!(pool.live_mappings(), 1, "the head is bounced");
    let last = DmaAddr::new(st.base.raw() + size - 1);
    assert_eq!(
        r.translate(last, false).unwrap(),
        Some(PhysAddr::new(0x2_001f_ffff))
    );
    let stats = || r.iommu.lock().unwrap().page_table(r.d).unwrap().stats();
    let before = stats();
    dev.destroy(st, far + MIB2, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    let after = stats();
    let visited = after.entries_visited - before.entries_visited;
    let lookups = after.lookups - before.lookups;
    let calls = after.unmap_calls - before.unmap_calls;
    // Per walk: 64 level-2 entries, the two level-1 tables and the head's
    // level-0 table.
    assert!(
        visited <= 2 * (64 + 3 * 512 + 8) && lookups <= 2 && calls <= 2,
        "destroy of 64 GiB with a bounced head and 2 MiB linked: {visited} entries, \
         {calls} unmaps, {lookups} lookups"
    );
    assert_eq!(pool.live_mappings(), 0, "the head's bounce slot is freed");
    assert!(r.translate(last, false).is_err());
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
