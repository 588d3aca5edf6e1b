//! A scatter-gather table mixing RAM, bus-address peer segments of different
//! lengths and a host-bridge peer segment, mapped through the IOMMU backend
//! of the assembled machine: every bus segment keeps its own DMA length, and
//! the device's writes through each DMA segment land byte-exact in the CPU
//! ranges of the table.

use dma_api::{Direction, DmaAttrs, PhysAddr, SegKind};
use dma_sim::assembly::IommuMode;
use scatterlist::{DmaFlags, SgTable};
use unidma_tests::*;

const NVME1: &str = "04:00.0";

fn table(a: &dma_sim::assembly::Assembly, segs: &[(u64, u64, Option<&str>)]) -> SgTable {
    let mut t = SgTable::new();
    for &(phys, len, owner) in segs {
        let kind = match owner {
            None => SegKind::Ram,
            Some(b) => SegKind::PeerBar(a.ctx.provider_of(bdf(b)).unwrap()),
        };
        let one = SgTable::from_ranges(&[(PhysAddr::new(phys), len)], kind, 1 << 31).unwrap();
        t = t.chain(one).unwrap();
    }
    t
}

#[test]
fn mixed_table_keeps_each_bus_segment_length_and_lands_byte_exact() {
    for mode in [IommuMode::Strict, IommuMode::Lazy] {
        let a = reference_with(mode);
        let r0 = scratch(&a, 4).raw();
        let r1 = scratch(&a, 5).raw() + 0x200;
        let segs: &[(u64, u64, Option<&str>)] = &[
            (r0, 0x3000, None),
            (0x40_0400_1000, 0x2000, Some("05:00.0")), // rdma0, bus
            (0x40_0000_3000, 0x5000, Some("03:00.0")), // nvme0 p2pmem, bus
            (r1, 0xe00, None),
            (0x40_0401_0000, 0x1800, Some("05:00.0")), // rdma0 again, bus
            (0x50_0000_2000, 0x3000, Some("06:00.0")), // gpu0: host bridge
            (0x40_0402_0000, 0x800, Some("05:00.0")),  // short bus tail
        ];
        let mut t = table(&a, segs);
        assert_eq!(t.orig_nents(), segs.len());
        let d = a.device(bdf(NVME1)).unwrap();
        let n = d
            .map_sgtable(&mut t, Direction::FromDevice, DmaAttrs::empty())
            .unwrap();
        let dma: Vec<(u64, u64, DmaFlags)> = t
            .dma_iter()
            .map(|e| (e.dma_address().raw(), u64::from(e.dma_len()), e.dma_flags()))
            .collect();
        assert_eq!(dma.len(), n);
        // Each bus segment is its own DMA segment at its bus address with
        // its own length (Linux would copy the first entry's length).
        for &(phys, len, owner) in segs {
            if owner.is_some() && phys < 0x50_0000_0000 {
                let hit: Vec<_> = dma.iter().filter(|s| s.0 == phys).collect();
                assert_eq!(hit.len(), 1, "{mode:?} {phys:#x}: {dma:x?}");
                assert_eq!(hit[0].1, len, "{mode:?} {phys:#x}");
                assert!(
                    hit[0].2.contains(DmaFlags::BUS_ADDRESS),
                    "{mode:?} {phys:#x}"
                );
            }
        }
        // The DMA side covers exactly the CPU bytes, in order.
        let total: u64 = segs.iter().map(|s| s.1).sum();
        assert_eq!(dma.iter().map(|s| s.1).sum::<u64>(), total);
        let data = pattern(total as usize, 0x3c);
        let mut off = 0usize;
        for &(addr, len, _) in &dma {
            let chunk = &data[off..off + len as usize];
            dev_write(&a, bdf(NVME1), dma_api::DmaAddr::new(addr), chunk).unwrap();
            off += len as usize;
        }
        d.sync_sgtable_for_cpu(&t, Direction::FromDevice).unwrap();
        let mut off = 0usize;
        for &(phys, len, _) in segs {
            assert_eq!(
                cpu_read(&a, PhysAddr::new(phys), len as usize),
                &data[off..off + len as usize],
                "{mode:?} {phys:#x}"
            );
            off += len as usize;
        }
        // Only the RAM segments reached RAM; the root complex saw those
        // (up) and the gpu0 segment (up and down), never the bus segments.
        assert_eq!(a.fabric.ram_bytes(), 0x3000 + 0xe00, "{mode:?}");
        assert_eq!(
            a.fabric.root_complex_bytes(),
            0x3000 + 0xe00 + 2 * 0x3000,
            "{mode:?}"
        );
        d.unmap_sgtable(&mut t, Direction::FromDevice, DmaAttrs::empty())
            .unwrap();
    }
}
