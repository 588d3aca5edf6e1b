//! `DmaDevice` without the simulator, `no_std` included: a two-function
//! topology built by hand, the direct backend with swiotlb over the
//! in-memory test RAM. A 32-bit device maps a table with one entry above
//! 4 GiB (bounced) and one below (direct); the "device" writes through the
//! DMA addresses it was given and the bytes arrive in the original RAM on
//! unmap.

use super::{DmaContext, DmaDevice};
use crate::attrs::DmaAttrs;
use crate::direct::DirectConfig;
use crate::direction::Direction;
use crate::mask::DmaMask;
use crate::mem::{CpuMem, CpuMemory};
use crate::memmap::{MemRange, MemoryMap, RangeKind};
use crate::swiotlb::Swiotlb;
use crate::test_support::{TestMem, ARCH};
use crate::topology::{CpuInfo, CpuVendor, DeviceRecord, HostBridgeRecord, PortType, Topology};
use crate::types::{PhysAddr, SegKind};
use crate::Bdf;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use scatterlist::SgTable;

const SWIOTLB: (u64, u64) = (0x800_0000, 0x40_0000);
const POOL: (u64, u64) = (0x1000_0000, 0x10_0000);

fn bdf(s: &str) -> Bdf {
    s.parse().unwrap()
}

fn device(mem: &Arc<TestMem>) -> (Arc<DmaDevice>, Arc<Swiotlb>) {
    let cpu = CpuInfo {
        vendor: CpuVendor::Intel,
        family: 6,
        x86: true,
    };
    let rp = DeviceRecord::new(bdf("00:01.0"), PortType::RootPort, None);
    let mut ep = DeviceRecord::new(bdf("01:00.0"), PortType::Endpoint, Some(bdf("00:01.0")));
    ep.dma_mask = DmaMask::BITS_32;
    let topo = Topology::build(cpu, [HostBridgeRecord::new("hb0", 0, 0)], [rp, ep]).unwrap();
    let mut memmap = MemoryMap::new();
    memmap
        .insert(MemRange {
            start: PhysAddr::new(0),
            size: 0x2_0000_0000,
            kind: RangeKind::Ram,
        })
        .unwrap();
    let port: CpuMem = mem.clone();
    let ctx = DmaContext::new(
        topo,
        memmap,
        &ARCH,
        port.clone(),
        (PhysAddr::new(POOL.0), POOL.1),
    )
    .unwrap();
    let tlb = Arc::new(Swiotlb::new(port, PhysAddr::new(SWIOTLB.0), SWIOTLB.1).unwrap());
    let backend = ctx
        .direct_backend(bdf("01:00.0"), Some(tlb.clone()), DirectConfig::default())
        .unwrap();
    let dev = DmaDevice::new(ctx, bdf("01:00.0"), Arc::new(backend)).unwrap();
    (Arc::new(dev), tlb)
}

#[test]
fn table_maps_bounces_and_unmaps_moving_the_device_bytes() {
    let mem = Arc::new(TestMem::default());
    let (dev, tlb) = device(&mem);
    let high = PhysAddr::new(0x1_0000_0100); // above the 32-bit mask
    let low = PhysAddr::new(0x2000_0000);
    let mut t =
        SgTable::from_ranges(&[(high, 0x1800), (low, 0x1000)], SegKind::Ram, 0x10_0000).unwrap();
    let n = dev
        .map_sgtable(&mut t, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(n, 2);
    let segs: Vec<(u64, u32)> = t
        .dma_iter()
        .map(|e| (e.dma_address().raw(), e.dma_len()))
        .collect();
    let (bounced, direct) = (segs[0], segs[1]);
    assert!(
        (SWIOTLB.0..SWIOTLB.0 + SWIOTLB.1).contains(&bounced.0),
        "the high entry is bounced into swiotlb: {bounced:x?}"
    );
    assert_eq!(direct, (low.raw(), 0x1000), "the low entry maps 1:1");
    assert_eq!(tlb.live_mappings(), 1);

    // The device writes through the addresses it was given (identity
    // dma-ranges: bus == CPU physical).
    let a = vec![0xa5u8; 0x1800];
    let b = vec![0x5au8; 0x1000];
    mem.write(PhysAddr::new(bounced.0), &a).unwrap();
    mem.write(PhysAddr::new(direct.0), &b).unwrap();
    let mut seen = vec![0u8; 0x1800];
    mem.read(high, &mut seen).unwrap();
    assert_ne!(seen, a, "nothing reaches the original before unmap");

    dev.unmap_sgtable(&mut t, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    mem.read(high, &mut seen).unwrap();
    assert_eq!(seen, a, "unmap copies the bounce slot back");
    let mut low_seen = vec![0u8; 0x1000];
    mem.read(low, &mut low_seen).unwrap();
    assert_eq!(low_seen, b);
    assert_eq!(tlb.live_mappings(), 0);
    assert_eq!(tlb.used_slots(), 0);
    assert_eq!(dev.live_tables(), 0);
    // A second unmap is a typed error, not a double free.
    assert!(dev
        .unmap_sgtable(&mut t, Direction::FromDevice, DmaAttrs::empty())
        .is_err());
}
