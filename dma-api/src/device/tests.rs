//! `DmaDevice` without the simulator, `no_std` included: a two-function
//! topology built by hand, the direct backend with swiotlb over the
//! in-memory test RAM. A 32-bit device maps a table with one entry above
//! 4 GiB (bounced) and one below (direct); the "device" writes through the
//! DMA addresses it was given and the bytes arrive in the original RAM on
//! unmap. A coherent allocation under forced bouncing is shared by CPU and
//! "device" with no sync, and frees on drop.

use super::{DmaContext, DmaDevice};
use crate::attrs::DmaAttrs;
use crate::direct::DirectConfig;
use crate::direction::Direction;
use crate::error::DmaError;
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

pub(super) const SWIOTLB: (u64, u64) = (0x800_0000, 0x40_0000);
pub(super) const POOL: (u64, u64) = (0x1000_0000, 0x10_0000);

fn bdf(s: &str) -> Bdf {
    s.parse().unwrap()
}

pub(super) fn device(mem: &Arc<TestMem>) -> (Arc<DmaDevice>, Arc<Swiotlb>) {
    device_with(mem, DirectConfig::default())
}

pub(super) fn device_with(mem: &Arc<TestMem>, cfg: DirectConfig) -> (Arc<DmaDevice>, Arc<Swiotlb>) {
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
        .direct_backend(bdf("01:00.0"), Some(tlb.clone()), cfg)
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

#[test]
fn coherent_buffer_is_shared_under_forced_bouncing_and_freed_on_drop() {
    let mem = Arc::new(TestMem::default());
    let cfg = DirectConfig {
        force_bounce: true,
        ..DirectConfig::default()
    };
    let (dev, tlb) = device_with(&mem, cfg);
    let before = dev.context().ram_in_use();
    let buf = dev.alloc_coherent_buf(0x1800).unwrap();
    assert_eq!(buf.len(), 0x1800);
    assert!((POOL.0..POOL.0 + POOL.1).contains(&buf.phys().raw()));
    // Identity dma-ranges: the device's address is the memory itself, not a
    // swiotlb slot.
    assert_eq!(buf.dma_handle().raw(), buf.phys().raw());
    assert_eq!(tlb.live_mappings(), 0);
    assert_eq!(dev.context().ram_in_use(), before + 0x2000);

    // CPU -> device, no sync.
    buf.write(0x10, &[0xc3; 0x20]).unwrap();
    let mut seen = [0u8; 0x20];
    mem.read(PhysAddr::new(buf.dma_handle().raw() + 0x10), &mut seen)
        .unwrap();
    assert_eq!(seen, [0xc3; 0x20]);
    // Device -> CPU, no sync.
    mem.write(
        PhysAddr::new(buf.dma_handle().raw() + 0x17f0),
        &[0x3c; 0x10],
    )
    .unwrap();
    let mut got = [0u8; 0x10];
    buf.read(0x17f0, &mut got).unwrap();
    assert_eq!(got, [0x3c; 0x10]);

    // Out of bounds: typed, naming offset, length and size.
    assert_eq!(
        buf.read(0x17f8, &mut got),
        Err(DmaError::OutOfBounds {
            offset: 0x17f8,
            len: 0x10,
            size: 0x1800
        })
    );
    assert_eq!(
        buf.write(u64::MAX, &[1]),
        Err(DmaError::OutOfBounds {
            offset: u64::MAX,
            len: 1,
            size: 0x1800
        })
    );
    assert_eq!(buf.write(0x1800, &[]), Ok(()));

    drop(buf);
    assert_eq!(dev.context().ram_in_use(), before);
    assert_eq!(dev.live_coherent(), 0);
    assert_eq!(
        dev.alloc_coherent_buf(0).unwrap_err(),
        DmaError::ZeroLength {
            phys: PhysAddr::ZERO
        }
    );
}
