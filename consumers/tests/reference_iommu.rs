//! A driver's-eye check of the split: the consumers crate gets an
//! IOMMU-backed `DmaDevice` from the simulator (a dev-dependency, no cycle),
//! maps a scatter-gather table the way a block driver would, and the
//! device's writes land in the right RAM through the IOMMU; after unmap the
//! same DMA addresses fault.

use dma_api::{Direction, DmaAttrs, PhysAddr, SegKind};
use dma_sim::machine::Machine;
use dma_sim::{Assembly, AssemblyOptions, IommuMode};
use scatterlist::{DmaFlags, SgTable};

fn reference(iommu: IommuMode) -> Assembly {
    let opts = AssemblyOptions {
        iommu,
        ..Default::default()
    };
    Assembly::build(Machine::reference().unwrap(), opts).unwrap()
}

#[test]
fn nvme_maps_a_table_through_the_iommu_and_the_device_writes_land() {
    let a = reference(IommuMode::Strict);
    let nvme = a.find("nvme0").expect("nvme0 on the reference server");
    assert!(a.iommu.is_some(), "the reference server has an IOMMU");
    let base = a.layout.scratch.0;
    // Three discontiguous 4 KiB-aligned buffers of different lengths.
    let bufs = [
        (base, 0x1000),
        (PhysAddr::new(base.raw() + 0x10_000), 0x2000),
        (PhysAddr::new(base.raw() + 0x40_000), 0x800),
    ];
    let mut t = SgTable::from_ranges(&bufs, SegKind::Ram, 0x10_0000).unwrap();
    let n = nvme
        .device
        .map_sgtable(&mut t, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    assert!(n >= 1);
    // The IOMMU backend packs the table into IOVA space: no DMA address is
    // a CPU address of the buffers, and none is a bus-address (P2P) segment.
    let segs: Vec<_> = t
        .dma_iter()
        .map(|e| (e.dma_address(), e.dma_len(), e.dma_flags()))
        .collect();
    for &(dma, _, flags) in &segs {
        assert!(!flags.contains(DmaFlags::BUS_ADDRESS));
        assert!(bufs.iter().all(|&(p, _)| p.raw() != dma.raw()));
    }
    assert_eq!(
        segs.iter().map(|s| u64::from(s.1)).sum::<u64>(),
        0x3800,
        "the DMA view covers every byte once"
    );

    // The device writes a pattern through its DMA view, segment by segment.
    let pattern: Vec<u8> = (0..0x3800u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut at = 0usize;
    for &(dma, len, _) in &segs {
        let len = len as usize;
        a.fabric
            .dma_write(nvme.bdf, dma, &pattern[at..at + len])
            .unwrap();
        at += len;
    }
    // ... and the CPU finds it in the three buffers, in order.
    let mut at = 0usize;
    for &(phys, len) in &bufs {
        let mut got = vec![0u8; len as usize];
        a.fabric.cpu_read(phys, &mut got).unwrap();
        assert_eq!(got, pattern[at..at + len as usize], "buffer at {phys}");
        at += len as usize;
    }

    nvme.device
        .unmap_sgtable(&mut t, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    // Strict IOMMU: the translation is gone the moment unmap returns.
    let (dma, _, _) = segs[0];
    assert!(a.fabric.dma_write(nvme.bdf, dma, &[0xff; 8]).is_err());
    let mut got = [0u8; 8];
    a.fabric.cpu_read(bufs[0].0, &mut got).unwrap();
    assert_eq!(got, pattern[..8], "the late write did not land");
}
