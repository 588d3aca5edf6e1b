//! The typed layer (ownership phases, unmap on drop) and map-or-fallback.

#[path = "device_common/mod.rs"]
mod common;

use common::*;
use dma_api::device::{CpuBuffer, FromDevice, MappedSgTable, ToDevice};
use dma_api::direct::DirectConfig;
use dma_api::fallback::map_or_fallback;
use dma_api::{Direction, DmaAttrs, DmaError, PhysAddr, SegKind};
use dma_sim::SimRam;
use scatterlist::SgTable;
use std::sync::Arc;

#[test]
fn mapping_phases_sync_and_unmap_on_drop() {
    let s = setup(&machine(&[]), &COHERENT);
    let (d, b) = s.direct("03:00.0", Some(32), DirectConfig::default());
    let orig = 0x2_0000_0000u64; // bounced: above the 32-bit mask
    s.write(orig, &[1u8; 256]);
    let buf = CpuBuffer::new(PhysAddr::new(orig), 256).unwrap();
    let m = buf.map::<FromDevice>(&d, DmaAttrs::empty()).unwrap();
    let tlb = m.dma_addr().raw();
    assert_eq!(d.live_singles(), 1);
    // The device writes, the CPU takes the buffer back and sees it.
    s.write(tlb, &[2u8; 256]);
    let view = m.sync_for_cpu().unwrap();
    let mut got = [0u8; 4];
    view.read(252, &mut got).unwrap();
    assert_eq!(got, [2; 4]);
    assert!(view.read(253, &mut got).is_err(), "past the end");
    // Back to the device, then dropped: unmapped, slots freed.
    let m = view.sync_for_device().unwrap();
    drop(m);
    assert_eq!(d.live_singles(), 0);
    assert_eq!(s.pool.live_mappings(), 0);
    assert_eq!(b.stats().unmaps, 1);
    // Explicit unmap returns the buffer.
    let m = buf.map::<ToDevice>(&d, DmaAttrs::empty()).unwrap();
    assert_eq!(m.unmap().unwrap(), buf);
    assert_eq!(d.live_singles(), 0);
    // A failed map gives the buffer back.
    let bad = CpuBuffer::new(PhysAddr::new(0xf000_0000_0000), 16).unwrap();
    let (back, e) = bad.map::<ToDevice>(&d, DmaAttrs::empty()).unwrap_err();
    assert_eq!(back, bad);
    assert!(matches!(e, DmaError::UnknownMemory { .. }));
}

#[test]
fn mapped_table_exposes_dma_side_and_unmaps_on_drop() {
    let s = setup(&machine(&[]), &COHERENT);
    let (d, _b) = s.direct("03:00.0", Some(32), DirectConfig::default());
    let t = SgTable::from_ranges(
        &[(PhysAddr::new(0x3_0000_0000), 0x3000)],
        SegKind::Ram,
        0x1000,
    )
    .unwrap();
    let m = MappedSgTable::<ToDevice>::map(&d, t, DmaAttrs::empty()).unwrap();
    assert_eq!(m.nents(), 3);
    assert!(m
        .dma_iter()
        .all(|e| (SWIOTLB_BASE..SWIOTLB_BASE + SWIOTLB_SIZE).contains(&e.dma_address().raw())));
    m.sync_for_device().unwrap();
    assert_eq!(s.pool.live_mappings(), 3);
    drop(m);
    assert_eq!(s.pool.live_mappings(), 0);
    assert_eq!(d.live_tables(), 0);
    let t = SgTable::from_ranges(
        &[(PhysAddr::new(0x2000_0000), 0x1000)],
        SegKind::Ram,
        0x1000,
    )
    .unwrap();
    let m = MappedSgTable::<FromDevice>::map(&d, t, DmaAttrs::empty()).unwrap();
    let t = m.unmap().unwrap();
    assert!(!t.is_dma_mapped());
}

#[test]
fn map_or_fallback_stages_unreachable_peer_memory_through_ram_and_says_why() {
    let s = setup(&machine(&[]), &COHERENT);
    let (d, _b) = s.direct("03:00.0", None, DirectConfig::default());
    let gpu_bar = 0x50_0000_0000u64;
    let pattern: Vec<u8> = (0..4096u32).map(|i| (i * 13) as u8).collect();
    s.write(gpu_bar, &pattern);
    let peer = Arc::new(SimRam(s.mem.clone()));
    // nvme0 reading gpu0's BAR: the root complex does not forward P2P reads.
    let f = map_or_fallback(
        &d,
        PhysAddr::new(gpu_bar),
        4096,
        Direction::ToDevice,
        DmaAttrs::empty(),
        peer.clone(),
    )
    .unwrap();
    let why = f.fell_back().expect("fell back");
    assert!(matches!(why, DmaError::P2pUnreachable { .. }));
    assert!(why.to_string().contains("reads"));
    let bounce = f.bounce_buffer().unwrap();
    assert!((RAM_POOL.0..RAM_POOL.0 + RAM_POOL.1).contains(&bounce.raw()));
    assert_eq!(f.dma_addr().raw(), bounce.raw());
    assert_eq!(s.read(bounce.raw(), 4096), pattern);
    f.complete().unwrap();
    assert_eq!(s.ctx.ram_in_use(), 0);
    assert_eq!(d.live_singles(), 0);

    // Writing is possible directly: no fallback.
    let f = map_or_fallback(
        &d,
        PhysAddr::new(gpu_bar),
        4096,
        Direction::FromDevice,
        DmaAttrs::empty(),
        peer.clone(),
    )
    .unwrap();
    assert!(f.fell_back().is_none());
    f.complete().unwrap();

    // Refused by the provider: the device's writes land in RAM, then are
    // copied back to the BAR on completion.
    let gpu = s.ctx.provider_of(bdf("06:00.0")).unwrap();
    struct No;
    impl dma_api::port::ProviderPolicy for No {
        fn decide(
            &self,
            _: dma_api::Bdf,
            _: PhysAddr,
            _: u64,
            _: SegKind,
            _: Direction,
        ) -> dma_api::port::PolicyDecision {
            dma_api::port::PolicyDecision::Refuse("busy".into())
        }
    }
    s.ctx.set_policy(gpu, Arc::new(No));
    let f = map_or_fallback(
        &d,
        PhysAddr::new(gpu_bar),
        4096,
        Direction::FromDevice,
        DmaAttrs::empty(),
        peer.clone(),
    )
    .unwrap();
    assert!(matches!(
        f.fell_back(),
        Some(DmaError::ProviderRefused { .. })
    ));
    s.write(f.dma_addr().raw(), &[0xee; 4096]);
    f.complete().unwrap();
    assert_eq!(s.read(gpu_bar, 4096), vec![0xee; 4096]);

    // Non-fallback errors pass through untouched.
    let e = map_or_fallback(
        &d,
        PhysAddr::new(0xf000_0000_0000),
        16,
        Direction::ToDevice,
        DmaAttrs::empty(),
        peer,
    )
    .unwrap_err();
    assert!(matches!(e, DmaError::UnknownMemory { .. }));
}

#[test]
fn one_device_is_shared_by_threads() {
    let s = setup(&machine(&[]), &COHERENT);
    let (d, b) = s.direct("03:00.0", Some(32), DirectConfig::default());
    // nvme1's BAR0 is below 4 GiB: reachable by a 32-bit mask. It is peer
    // memory only once its owner registers it (at run time, here).
    let nvme1 = s.ctx.provider_of(bdf("04:00.0")).unwrap();
    let _p2pmem = s.ctx.add_p2pmem(bdf("04:00.0"), 0, 0, 0, None).unwrap();
    std::thread::scope(|sc| {
        for t in 0..4u64 {
            let d = d.clone();
            sc.spawn(move || {
                for i in 0..50u64 {
                    let orig = 0x1_0000_0000 + (t * 50 + i) * 0x1000;
                    let m = CpuBuffer::new(PhysAddr::new(orig), 0x800)
                        .unwrap()
                        .map::<ToDevice>(&d, DmaAttrs::empty())
                        .unwrap();
                    let peer = SgTable::from_ranges(
                        &[(PhysAddr::new(0xc000_4000 + t * 0x1000), 0x1000)],
                        SegKind::PeerBar(nvme1),
                        0x1000,
                    )
                    .unwrap();
                    let mt = MappedSgTable::<FromDevice>::map(&d, peer, DmaAttrs::empty()).unwrap();
                    assert_eq!(mt.nents(), 1);
                    drop(mt);
                    drop(m);
                }
            });
        }
    });
    assert_eq!((d.live_singles(), d.live_tables()), (0, 0));
    assert_eq!(s.pool.live_mappings(), 0);
    assert_eq!(b.stats().bounced, 200);
    assert_eq!(b.stats().bus, 200);
}
