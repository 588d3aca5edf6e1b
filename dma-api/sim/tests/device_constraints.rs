//! Device DMA constraints on the whole reference server, proven by moving
//! bytes on the fabric (the swiotlb pool sits at 0x7400_0000..0x7800_0000,
//! the coherent pool at 0x7000_0000..0x7400_0000; RAM continues above
//! 4 GiB):
//!
//! * a streaming mask that cannot reach the bounce pool, or a coherent mask
//!   that cannot reach the coherent pool, is refused on the direct path and
//!   the old mask stays;
//! * a 32-bit mask set at run time makes RAM above 4 GiB bounce on the
//!   direct path (the device's write lands in the original on unmap, its
//!   read sees the CPU's bytes), and keeps an IOMMU device's IOVAs below
//!   4 GiB; a 30-bit mask keeps them below 1 GiB, for tables and coherent
//!   allocations too;
//! * the IOMMU merges a table's DMA segments under the new max segment size;
//! * every decorator in the stack (dma-debug here) forwards the change, and
//!   dma-debug reports nothing.

use dma_api::{Bdf, Direction, DmaAttrs, DmaError, DmaMask, PhysAddr, SegKind};
use dma_sim::assembly::{Assembly, AssemblyOptions, Concrete, IommuMode};
use dma_sim::machine::Machine;
use scatterlist::SgTable;

const NVME0: &str = "nvme0";
/// RAM above 4 GiB.
const HIGH: u64 = 0x1_0010_0000;

fn assembly(iommu: IommuMode) -> Assembly {
    let opts = AssemblyOptions {
        iommu,
        debug: true,
        ..AssemblyOptions::default()
    };
    Assembly::build(Machine::reference().unwrap(), opts).unwrap()
}

fn mask(bits: u32) -> DmaMask {
    DmaMask::new(bits).unwrap()
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed))
        .collect()
}

fn cpu_read(a: &Assembly, phys: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0; len];
    a.fabric.cpu_read(PhysAddr::new(phys), &mut b).unwrap();
    b
}

fn quiet(a: &Assembly, name: &str) {
    let e = a.find(name).unwrap();
    assert_eq!(e.device.live_singles(), 0);
    assert_eq!(e.device.live_tables(), 0);
    let d = e.debug.as_ref().expect("assembled with dma-debug");
    assert!(d.reports().is_empty(), "{:?}", d.reports());
    assert_eq!(d.active_count(), 0);
}

fn bdf(a: &Assembly, name: &str) -> Bdf {
    a.find(name).unwrap().bdf
}

#[test]
fn a_mask_that_cannot_reach_the_bounce_pool_fails_and_keeps_the_old_one() {
    let a = assembly(IommuMode::Off);
    let e = a.find(NVME0).unwrap();
    let dev = &e.device;
    let (tlb, size) = a.layout.swiotlb;
    assert!(tlb.raw() + size - 1 > mask(30).value());
    let err = dev.set_dma_mask(mask(30)).unwrap_err();
    assert_eq!(
        err,
        DmaError::MaskNotSupported {
            device: e.bdf,
            mask: mask(30),
            coherent: false,
            needs: tlb.raw() + size - 1,
            what: "the swiotlb bounce pool",
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains("0000:03:00.0") && msg.contains("30-bit"),
        "{msg}"
    );
    assert_eq!(dev.constraints().dma_mask, DmaMask::BITS_64);
    let Concrete::Direct(b) = &e.concrete else {
        panic!("direct backend with the IOMMU off")
    };
    assert_eq!(b.device().mask, DmaMask::BITS_64, "the backend kept it too");
    // High RAM still maps in place.
    let dma = dev
        .map_phys(
            PhysAddr::new(HIGH),
            0x1000,
            Direction::ToDevice,
            DmaAttrs::empty(),
        )
        .unwrap();
    assert_eq!(dma.raw(), HIGH);
    dev.unmap_phys(dma, 0x1000, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    quiet(&a, NVME0);
}

#[test]
fn a_32_bit_mask_set_at_run_time_bounces_ram_above_4_gib_and_the_bytes_land() {
    let a = assembly(IommuMode::Off);
    let who = bdf(&a, NVME0);
    let dev = &a.find(NVME0).unwrap().device;
    let (tlb, size) = a.layout.swiotlb;
    let in_pool = |x: u64| (tlb.raw()..tlb.raw() + size).contains(&x);
    dev.set_dma_mask(DmaMask::BITS_32).unwrap();

    // The device writes (a read command): bounced, copied back on unmap.
    let data = pattern(0x3000, 7);
    let dma = dev
        .map_phys(
            PhysAddr::new(HIGH),
            0x3000,
            Direction::FromDevice,
            DmaAttrs::empty(),
        )
        .unwrap();
    assert!(in_pool(dma.raw()), "{dma} is a bounce slot");
    a.fabric.dma_write(who, dma, &data).unwrap();
    assert_ne!(cpu_read(&a, HIGH, 0x3000), data, "not before unmap");
    dev.unmap_phys(dma, 0x3000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(cpu_read(&a, HIGH, 0x3000), data);

    // The device reads (a write command): the bounce slot holds the CPU's
    // bytes.
    let out = pattern(0x1800, 99);
    a.fabric
        .cpu_write(PhysAddr::new(HIGH + 0x8000), &out)
        .unwrap();
    let dma = dev
        .map_phys(
            PhysAddr::new(HIGH + 0x8000),
            0x1800,
            Direction::ToDevice,
            DmaAttrs::empty(),
        )
        .unwrap();
    assert!(in_pool(dma.raw()));
    let mut got = vec![0; 0x1800];
    a.fabric.dma_read(who, dma, &mut got).unwrap();
    assert_eq!(got, out);
    dev.unmap_phys(dma, 0x1800, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    quiet(&a, NVME0);
}

#[test]
fn an_iommu_device_s_iovas_follow_its_mask() {
    let a = assembly(IommuMode::Strict);
    let e = a.find(NVME0).unwrap();
    let (who, dev) = (e.bdf, &e.device);
    let Concrete::Iommu(b) = &e.concrete else {
        panic!("IOMMU backend in strict mode")
    };

    dev.set_dma_mask(DmaMask::BITS_32).unwrap();
    assert_eq!(b.dma_limit().raw(), 0xffff_ffff);
    let data = pattern(0x2000, 3);
    let dma = dev
        .map_phys(
            PhysAddr::new(HIGH),
            0x2000,
            Direction::FromDevice,
            DmaAttrs::empty(),
        )
        .unwrap();
    assert!(dma.raw() + 0x1fff <= 0xffff_ffff, "{dma} below 4 GiB");
    a.fabric.dma_write(who, dma, &data).unwrap();
    dev.unmap_phys(dma, 0x2000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(cpu_read(&a, HIGH, 0x2000), data);

    // 30 bits: below 1 GiB, for a table too (the 32-bit-first policy alone
    // would have placed it just below 4 GiB).
    dev.set_dma_mask(mask(30)).unwrap();
    assert_eq!(b.dma_limit().raw(), 0x3fff_ffff);
    assert_eq!(b.device().dma_mask, mask(30));
    let bufs = [
        (PhysAddr::new(HIGH), 0x1000),
        (PhysAddr::new(HIGH + 0x10_0000), 0x3000),
        (PhysAddr::new(HIGH + 0x40_0000), 0x800),
    ];
    let mut t = SgTable::from_ranges(&bufs, SegKind::Ram, 0x10_0000).unwrap();
    dev.map_sgtable(&mut t, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    let data = pattern(0x4800, 5);
    let mut at = 0;
    for s in dma_api::segments(&t) {
        assert!(s.dma.raw() + s.len - 1 <= 0x3fff_ffff, "{s:?}");
        let n = s.len as usize;
        a.fabric.dma_write(who, s.dma, &data[at..at + n]).unwrap();
        at += n;
    }
    dev.unmap_sgtable(&mut t, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    let mut at = 0;
    for (p, l) in bufs {
        let l = l as usize;
        assert_eq!(cpu_read(&a, p.raw(), l), data[at..at + l]);
        at += l;
    }

    // The coherent mask caps coherent IOVAs; the pool itself (above 1 GiB)
    // is no obstacle behind the IOMMU.
    dev.set_coherent_mask(mask(30)).unwrap();
    let buf = dev.alloc_coherent_buf(0x1000).unwrap();
    assert!(buf.dma_handle().raw() <= 0x3fff_ffff);
    assert!(buf.phys().raw() > 0x3fff_ffff);
    buf.write(0, &[0x5a; 16]).unwrap();
    let mut got = [0u8; 16];
    a.fabric.dma_read(who, buf.dma_handle(), &mut got).unwrap();
    assert_eq!(got, [0x5a; 16]);
    drop(buf);

    // A mask that holds no IOVA granule is refused; the 30-bit one stays.
    assert!(matches!(
        dev.set_dma_mask(mask(12)),
        Err(DmaError::MaskNotSupported {
            what: "one IOVA granule",
            ..
        })
    ));
    assert_eq!(b.dma_limit().raw(), 0x3fff_ffff);
    quiet(&a, NVME0);
}

#[test]
fn a_coherent_mask_short_of_the_coherent_pool_fails_on_the_direct_path() {
    let a = assembly(IommuMode::Off);
    let e = a.find(NVME0).unwrap();
    let (pool, size) = a.ctx.ram_pool();
    assert_eq!((pool, size), a.layout.coherent);
    assert_eq!(
        e.device.set_coherent_mask(mask(30)),
        Err(DmaError::MaskNotSupported {
            device: e.bdf,
            mask: mask(30),
            coherent: true,
            needs: pool.raw() + size - 1,
            what: "the coherent pool",
        })
    );
    assert_eq!(e.device.constraints().coherent_mask, DmaMask::BITS_64);
    // 31 bits reach it.
    e.device.set_coherent_mask(mask(31)).unwrap();
    let buf = e.device.alloc_coherent_buf(0x1000).unwrap();
    assert_eq!(buf.dma_handle().raw(), buf.phys().raw());
    drop(buf);
    quiet(&a, NVME0);
}

#[test]
fn the_iommu_merges_dma_segments_under_the_new_max_segment_size() {
    let a = assembly(IommuMode::Strict);
    let dev = &a.find(NVME0).unwrap().device;
    // Eight page entries of one physically contiguous 32 KiB buffer.
    let build = || SgTable::from_ranges(&[(PhysAddr::new(HIGH), 0x8000)], SegKind::Ram, 0x1000);
    let lens = |t: &SgTable| dma_api::segments(t).map(|s| s.len).collect::<Vec<_>>();
    let mut t = build().unwrap();
    assert_eq!(t.orig_nents(), 8);
    dev.map_sgtable(&mut t, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(lens(&t), [0x8000], "64 KiB default: one DMA segment");
    dev.unmap_sgtable(&mut t, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();

    dev.set_max_seg_size(0x2000).unwrap();
    let mut t = build().unwrap();
    dev.map_sgtable(&mut t, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(lens(&t), [0x2000; 4]);
    dev.unmap_sgtable(&mut t, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    quiet(&a, NVME0);
}
