use super::*;
use crate::arch_port::SyncOp;
use crate::mask::DmaMask;
use crate::mem::CpuMemory;
use crate::test_support::{TestMem, ARCH};
use crate::window::AddrWindow;
use alloc::vec::Vec;
use scatterlist::{ProviderId, SegKind};

pub(super) const POOL: u64 = 0x100_0000;

/// A backend for a device whose RAM appears at bus `0x8000_0000 + phys`,
/// with a 1 MiB swiotlb pool at [`POOL`].
pub(super) fn setup(mask: u32, coherent: bool, cfg: DirectConfig) -> (Arc<TestMem>, DirectBackend) {
    let mem: Arc<TestMem> = Arc::new(TestMem::default());
    let pool = Arc::new(
        Swiotlb::new(
            mem.clone() as crate::mem::CpuMem,
            PhysAddr::new(POOL),
            0x10_0000,
        )
        .unwrap(),
    );
    // RAM at CPU 0 appears at bus 0x8000_0000 (a dma-ranges offset).
    let dev = ArchDevice::from_windows(
        [AddrWindow {
            cpu_start: PhysAddr::new(0),
            bus_start: BusAddr::new(0x8000_0000),
            size: 0x40_0000_0000,
        }],
        coherent,
        DmaMask::new(mask).unwrap(),
    )
    .unwrap();
    let mmio = WindowMap::new([AddrWindow {
        cpu_start: PhysAddr::new(0xc000_0000),
        bus_start: BusAddr::new(0x4000_0000),
        size: 0x1000_0000,
    }])
    .unwrap();
    (
        mem.clone(),
        DirectBackend::new(&ARCH, dev, mmio, Some(pool), cfg),
    )
}

fn req(phys: u64, len: u64, dir: Direction, target: SegTarget) -> MapRequest {
    MapRequest {
        phys: PhysAddr::new(phys),
        len,
        dir,
        attrs: DmaAttrs::empty(),
        target,
    }
}

#[test]
fn ram_is_translated_through_dma_ranges_with_cache_programs() {
    let (_m, b) = setup(64, false, DirectConfig::default());
    let r = req(0x1000, 0x100, Direction::FromDevice, SegTarget::Ram);
    let dma = b.map(&r).unwrap();
    assert_eq!(dma.raw(), 0x8000_1000);
    b.unmap(dma, &r).unwrap();
    let log = b.cache_log();
    assert_eq!((log.for_device, log.for_cpu), (1, 1));
    assert_eq!(log.recent[0].op, SyncOp::Clean);
    assert_eq!(log.recent[1].op, SyncOp::Invalidate);
    assert_eq!(log.recent[0].program.ops().len(), 4);
    assert!(b.lower_recorded().unwrap() > 0);
    // SKIP_CPU_SYNC: no programs.
    let r2 = MapRequest {
        attrs: DmaAttrs::SKIP_CPU_SYNC,
        ..r
    };
    let d2 = b.map(&r2).unwrap();
    b.unmap(d2, &r2).unwrap();
    assert_eq!(b.cache_log().recent.len(), 2);
    assert!(b.need_sync(dma));
}

#[test]
fn mask_too_small_bounces_and_copies_back() {
    // 32-bit mask: RAM at 4 GiB maps to bus 0x1_8000_0000, out of reach.
    let (mem, b) = setup(32, true, DirectConfig::default());
    let orig = 0x1_0000_0010u64;
    mem.write(PhysAddr::new(orig), &[3u8; 64]).unwrap();
    let r = req(orig, 64, Direction::Bidirectional, SegTarget::Ram);
    let dma = b.map(&r).unwrap();
    let tlb = dma.raw() - 0x8000_0000;
    assert!(b.swiotlb().unwrap().contains(PhysAddr::new(tlb)));
    assert!(b.need_sync(dma));
    mem.write(PhysAddr::new(tlb), &[4u8; 64]).unwrap();
    b.unmap(dma, &r).unwrap();
    let mut back = [0u8; 64];
    mem.read(PhysAddr::new(orig), &mut back).unwrap();
    assert_eq!(back, [4u8; 64]);
    assert_eq!(b.stats().bounced, 1);
    assert_eq!(b.swiotlb().unwrap().live_mappings(), 0);
    assert_eq!(b.max_mapping_size(), 256 * 1024);
}

#[test]
fn forced_bounce_refuses_mmio_and_bounces_ram() {
    let cfg = DirectConfig {
        force_bounce: true,
        ..Default::default()
    };
    let (_m, b) = setup(64, true, cfg);
    let dma = b
        .map(&req(0x2000, 0x10, Direction::ToDevice, SegTarget::Ram))
        .unwrap();
    assert_eq!(dma.raw(), 0x8000_0000 + POOL);
    let e = b
        .map(&req(
            0xc000_1000,
            0x10,
            Direction::ToDevice,
            SegTarget::PeerHostBridge,
        ))
        .unwrap_err();
    assert_eq!(
        e,
        DmaError::MmioNotBounceable {
            phys: PhysAddr::new(0xc000_1000),
            len: 0x10
        }
    );
}

#[test]
fn mmio_uses_host_bridge_windows_and_bus_entries_keep_their_length() {
    let (_m, b) = setup(64, false, DirectConfig::default());
    let dma = b
        .map(&req(
            0xc000_1000,
            0x10,
            Direction::ToDevice,
            SegTarget::PeerHostBridge,
        ))
        .unwrap();
    assert_eq!(dma.raw(), 0x4000_1000);
    assert_eq!(
        b.cache_log().recent.len(),
        0,
        "MMIO is never cache-maintained"
    );
    let peer = SegKind::PeerBar(ProviderId::new(3));
    let mut t =
        SgTable::from_ranges(&[(PhysAddr::new(0x1000), 0x3000)], SegKind::Ram, 0x1000).unwrap();
    let t2 = SgTable::from_ranges(&[(PhysAddr::new(0xc000_0000), 0x1800)], peer, 0x1000).unwrap();
    t = t.chain(t2).unwrap();
    let mut plan: Vec<SegPlan> = t
        .iter()
        .map(|e| SegPlan {
            phys: e.phys(),
            target: SegTarget::Ram,
        })
        .collect();
    plan[3].target = SegTarget::PeerBus(BusAddr::new(0x4000_0000));
    plan[4].target = SegTarget::PeerBus(BusAddr::new(0x4000_1000));
    let n = b
        .map_sg(&mut t, &plan, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(n, 5);
    let dma: Vec<_> = t
        .dma_iter()
        .map(|e| (e.dma_address().raw(), e.dma_len(), e.dma_flags()))
        .collect();
    assert_eq!(dma[3], (0x4000_0000, 0x1000, DmaFlags::BUS_ADDRESS));
    assert_eq!(dma[4], (0x4000_1000, 0x800, DmaFlags::BUS_ADDRESS));
    assert_eq!(dma[0], (0x8000_1000, 0x1000, DmaFlags::EMPTY));
    b.unmap_sg(&mut t, &plan, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert!(!t.is_dma_mapped());
    assert_eq!(b.stats().unmaps, 3);
}

#[test]
fn map_sg_error_unmaps_what_was_done() {
    let (_m, b) = setup(32, true, DirectConfig::default());
    // Entry 0 bounces (above 4 GiB), entry 1 is too big for the pool run.
    let mut t = SgTable::from_ranges(
        &[
            (PhysAddr::new(0x1_0000_0000), 0x1000),
            (PhysAddr::new(0x2_0000_0000), 0x80_0000),
        ],
        SegKind::Ram,
        u64::MAX,
    )
    .unwrap();
    let plan: Vec<SegPlan> = t
        .iter()
        .map(|e| SegPlan {
            phys: e.phys(),
            target: SegTarget::Ram,
        })
        .collect();
    let e = b
        .map_sg(&mut t, &plan, Direction::ToDevice, DmaAttrs::empty())
        .unwrap_err();
    // The error names the entry that failed (the second: the first mapped
    // and was undone).
    assert!(
        matches!(&e, DmaError::TableEntry { index: 1, cause, .. }
            if matches!(**cause, DmaError::MappingTooLarge { .. })),
        "{e}"
    );
    assert_eq!(b.swiotlb().unwrap().live_mappings(), 0);
    assert!(!t.is_dma_mapped());
    assert_eq!(
        b.map_sg(&mut t, &plan[..1], Direction::ToDevice, DmaAttrs::empty()),
        Err(DmaError::PlanMismatch { plan: 1, nents: 2 })
    );
}
