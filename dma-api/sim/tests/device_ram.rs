//! RAM through the direct backend: dma-ranges, swiotlb bounce (mask, forced),
//! cache maintenance for non-coherent devices, coherent allocations.

#[path = "device_common/mod.rs"]
mod common;

use common::*;
use dma_api::arch_port::{SyncOp, SyncPoint};
use dma_api::direct::DirectConfig;
use dma_api::{Direction, DmaAttrs, DmaError, ErrorKind, PhysAddr};

const DMA_RANGES: (&str, &str) = (
    "p2p_write = true\n",
    "p2p_write = true\ndma_ranges = [{ cpu = 0x0, bus = 0x100_0000_0000, size = 0x100_0000_0000 }]\n",
);

#[test]
fn ram_goes_through_dma_ranges_offset() {
    let s = setup(&machine(&[DMA_RANGES]), &COHERENT);
    let (d, b) = s.direct("03:00.0", None, DirectConfig::default());
    let dma = d
        .map_phys(
            PhysAddr::new(0x1_2345_6000),
            0x3000,
            Direction::ToDevice,
            DmaAttrs::empty(),
        )
        .unwrap();
    assert_eq!(dma.raw(), 0x100_0000_0000 + 0x1_2345_6000);
    assert!(!d.need_sync(dma), "coherent, not bounced");
    d.unmap_phys(dma, 0x3000, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(b.stats().direct, 1);
    assert_eq!(d.max_mapping_size(), u64::MAX);
    assert_eq!(d.merge_boundary(), 0);
    assert!(!d.has_iova_api());
    assert_eq!(
        d.iova_try_alloc(PhysAddr::new(0x1_2345_6000), 0x3000),
        Ok(None)
    );
    // Unmapping again is a typed error naming the address.
    assert_eq!(
        d.unmap_phys(dma, 0x3000, Direction::ToDevice, DmaAttrs::empty()),
        Err(DmaError::NotMapped { dma, len: 0x3000 })
    );
}

#[test]
fn small_mask_bounces_byte_exact_per_direction_keeping_alignment() {
    let s = setup(&machine(&[]), &COHERENT);
    let cfg = DirectConfig {
        min_align_mask: 0xfff,
        ..Default::default()
    };
    let (d, b) = s.direct("03:00.0", Some(32), cfg);
    // 256 KiB of slots minus the 4 KiB alignment.
    assert_eq!(d.max_mapping_size(), 256 * 1024 - 4096);
    let orig = 0x1_0000_0123u64; // above 4 GiB: out of a 32-bit mask
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();

    // Bidirectional: map copies in, sub-range sync copies exactly that back,
    // unmap copies everything back.
    s.write(orig, &data);
    let dma = d
        .map_phys(
            PhysAddr::new(orig),
            5000,
            Direction::Bidirectional,
            DmaAttrs::empty(),
        )
        .unwrap();
    let tlb = dma.raw();
    assert!((SWIOTLB_BASE..SWIOTLB_BASE + SWIOTLB_SIZE).contains(&tlb));
    assert_eq!(tlb & 0xfff, orig & 0xfff, "min-align bits preserved");
    assert_eq!(s.read(tlb, 5000), data);
    assert!(d.need_sync(dma));
    s.write(tlb + 100, &[0xaa; 50]);
    d.sync_single_for_cpu(
        dma_api::DmaAddr::new(tlb + 110),
        20,
        Direction::Bidirectional,
    )
    .unwrap();
    let got = s.read(orig + 100, 50);
    assert_eq!(&got[..10], &data[100..110]);
    assert_eq!(&got[10..30], &[0xaa; 20]);
    assert_eq!(&got[30..], &data[130..150]);
    d.unmap_phys(dma, 5000, Direction::Bidirectional, DmaAttrs::empty())
        .unwrap();
    assert_eq!(s.read(orig + 100, 50), vec![0xaa; 50]);

    // ToDevice: what the "device" scribbles in the bounce buffer never comes back.
    s.write(orig, &data);
    let dma = d
        .map_phys(
            PhysAddr::new(orig),
            5000,
            Direction::ToDevice,
            DmaAttrs::empty(),
        )
        .unwrap();
    s.write(dma.raw(), &[0x55; 64]);
    d.unmap_phys(dma, 5000, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(s.read(orig, 5000), data);

    // FromDevice: unmap copies back; SKIP_CPU_SYNC does not.
    let dma = d
        .map_phys(
            PhysAddr::new(orig),
            5000,
            Direction::FromDevice,
            DmaAttrs::empty(),
        )
        .unwrap();
    s.write(dma.raw(), &[0x77; 5000]);
    d.unmap_phys(dma, 5000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(s.read(orig, 5000), vec![0x77; 5000]);
    let dma = d
        .map_phys(
            PhysAddr::new(orig),
            5000,
            Direction::FromDevice,
            DmaAttrs::empty(),
        )
        .unwrap();
    s.write(dma.raw(), &[0x11; 5000]);
    d.unmap_phys(dma, 5000, Direction::FromDevice, DmaAttrs::SKIP_CPU_SYNC)
        .unwrap();
    assert_eq!(s.read(orig, 5000), vec![0x77; 5000]);

    assert_eq!(b.stats().bounced, 4);
    assert_eq!(s.pool.live_mappings(), 0);
    // Too big for 128 slots: a typed, permanent error.
    let e = d
        .map_phys(
            PhysAddr::new(orig),
            256 * 1024,
            Direction::ToDevice,
            DmaAttrs::empty(),
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
}

#[test]
fn forced_bounce_bounces_ram_refuses_host_bridge_mmio_keeps_bus_routes() {
    let s = setup(&machine(&[]), &COHERENT);
    let cfg = DirectConfig {
        force_bounce: true,
        ..Default::default()
    };
    let (d, _b) = s.direct("03:00.0", None, cfg);
    let dma = d
        .map_phys(
            PhysAddr::new(0x2000_0000),
            0x800,
            Direction::ToDevice,
            DmaAttrs::empty(),
        )
        .unwrap();
    assert!((SWIOTLB_BASE..SWIOTLB_BASE + SWIOTLB_SIZE).contains(&dma.raw()));
    assert_eq!(d.max_mapping_size(), 256 * 1024);
    // gpu0's BAR is reached through the host bridge: MMIO cannot be bounced.
    let e = d
        .map_phys(
            PhysAddr::new(0x50_0000_0000),
            0x1000,
            Direction::FromDevice,
            DmaAttrs::empty(),
        )
        .unwrap_err();
    assert_eq!(
        e,
        DmaError::MmioNotBounceable {
            phys: PhysAddr::new(0x50_0000_0000),
            len: 0x1000
        }
    );
    assert_eq!(e.kind(), ErrorKind::Fallback);
    // rdma0's BAR is behind the same switch: a bus address, no bounce needed.
    let bus = d
        .map_phys(
            PhysAddr::new(0x40_0400_0000),
            0x1000,
            Direction::ToDevice,
            DmaAttrs::empty(),
        )
        .unwrap();
    assert_eq!(bus.raw(), 0x40_0400_0000);
}

#[test]
fn non_coherent_device_gets_cache_programs_per_linux_direct_rules() {
    let m = machine(&[("name = \"nvme0\"\n", "name = \"nvme0\"\ncoherent = false\n")]);
    let s = setup(&m, &NONCOHERENT);
    let (d, b) = s.direct("03:00.0", None, DirectConfig::default());
    assert!(!b.is_coherent());
    let dma = d
        .map_phys(
            PhysAddr::new(0x2000_0010),
            0x100,
            Direction::FromDevice,
            DmaAttrs::empty(),
        )
        .unwrap();
    assert!(d.need_sync(dma));
    d.sync_single_for_cpu(dma, 0x40, Direction::FromDevice)
        .unwrap();
    d.unmap_phys(dma, 0x100, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    let log = b.cache_log();
    assert_eq!((log.for_device, log.for_cpu), (1, 2));
    let map = &log.recent[0];
    assert_eq!((map.point, map.op), (SyncPoint::ForDevice, SyncOp::Clean));
    // 0x2000_0010 + 0x100 touches 5 lines.
    assert_eq!(map.program.ops().len(), 5);
    let unmap = &log.recent[2];
    assert_eq!(
        (unmap.point, unmap.op),
        (SyncPoint::ForCpu, SyncOp::Invalidate)
    );
    let ops = unmap.program.ops();
    // Partial first/last lines are cleaned+invalidated, the rest invalidated.
    assert_eq!(ops[0].op, SyncOp::CleanInvalidate);
    assert_eq!(ops[1].op, SyncOp::Invalidate);
    assert_eq!(ops[4].op, SyncOp::CleanInvalidate);
    assert!(b.lower_recorded().unwrap() > 0);
    // SKIP_CPU_SYNC and peer memory: no maintenance.
    let dma = d
        .map_phys(
            PhysAddr::new(0x2000_0000),
            0x100,
            Direction::ToDevice,
            DmaAttrs::SKIP_CPU_SYNC,
        )
        .unwrap();
    d.unmap_phys(dma, 0x100, Direction::ToDevice, DmaAttrs::SKIP_CPU_SYNC)
        .unwrap();
    let peer = d
        .map_phys(
            PhysAddr::new(0x40_0400_0000),
            0x100,
            Direction::ToDevice,
            DmaAttrs::empty(),
        )
        .unwrap();
    assert!(!d.need_sync(peer));
    d.sync_single_for_device(peer, 0x100, Direction::ToDevice)
        .unwrap();
    d.unmap_phys(peer, 0x100, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(b.cache_log().recent.len(), 3);
    // REQUIRE_COHERENT on a non-coherent device is a fallback.
    let e = d
        .map_phys(
            PhysAddr::new(0x2000_0000),
            0x100,
            Direction::ToDevice,
            DmaAttrs::REQUIRE_COHERENT,
        )
        .unwrap_err();
    assert!(matches!(e, DmaError::RequireCoherent { .. }));
}

#[test]
fn coherent_allocations_come_from_the_pool_and_are_freed() {
    let s = setup(&machine(&[]), &COHERENT);
    let (d, _b) = s.direct("03:00.0", None, DirectConfig::default());
    let (phys, dma) = d.alloc_coherent(5000).unwrap();
    assert!((RAM_POOL.0..RAM_POOL.0 + RAM_POOL.1).contains(&phys.raw()));
    assert_eq!(dma.raw(), phys.raw());
    assert_eq!(s.ctx.ram_in_use(), 0x2000);
    assert_eq!(s.read(phys.raw(), 16), vec![0; 16]);
    assert!(d.free_coherent(phys, dma_api::DmaAddr::new(1)).is_err());
    d.free_coherent(phys, dma).unwrap();
    assert_eq!(s.ctx.ram_in_use(), 0);
    // A range the memory map does not know is refused by name.
    let e = d
        .map_phys(
            PhysAddr::new(0xf000_0000_0000),
            0x10,
            Direction::ToDevice,
            DmaAttrs::empty(),
        )
        .unwrap_err();
    assert_eq!(
        e,
        DmaError::UnknownMemory {
            phys: PhysAddr::new(0xf000_0000_0000),
            len: 0x10
        }
    );
}

#[test]
fn one_buffer_mapped_twice_through_identical_tables_unmaps_twice() {
    let s = setup(&machine(&[]), &COHERENT);
    let (d, b) = s.direct("03:00.0", None, DirectConfig::default());
    let t = scatterlist::SgTable::from_ranges(
        &[(PhysAddr::new(0x2000_0000), 0x2000)],
        dma_api::SegKind::Ram,
        0x1000,
    )
    .unwrap();
    let (mut a, mut c) = (t.clone(), t);
    d.map_sgtable(&mut a, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    d.map_sgtable(&mut c, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(d.live_tables(), 2);
    d.unmap_sgtable(&mut a, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    d.unmap_sgtable(&mut c, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(d.live_tables(), 0);
    assert_eq!(b.stats().unmaps, 4);
    // A third unmap finds nothing: typed error, not a panic.
    let mut again = a.clone();
    d.map_sgtable(&mut again, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    d.unmap_sgtable(&mut again, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    again.set_nents(again.orig_nents()).unwrap();
    assert!(matches!(
        d.unmap_sgtable(&mut again, Direction::ToDevice, DmaAttrs::empty()),
        Err(DmaError::NotMapped { .. })
    ));
}
