//! Regression tests for the reliability issue's bugs in the DMA API layer,
//! each named after its bug and moving bytes on the fabric.

use dma_api::{Direction, DmaAttrs, PhysAddr};
use dma_sim::assembly::{AssemblyOptions, IommuMode};
use unidma_tests::*;

const NVME1: &str = "04:00.0";
const NVME2: &str = "07:00.0";
const APU_BAR: u64 = 0xc200_0000; // registered p2pmem, through the host bridge
const RDMA0_BAR: u64 = 0x40_0400_0000; // registered p2pmem, same switch as nvme1

/// Bug 1, direct backend: t1 = [low header, peer BAR through the host
/// bridge], t2 = [same header, RAM above 4 GiB, bounced] on a 32-bit device.
/// Keyed by their first entry, t1's unmap took t2's plan: both returned Ok,
/// a swiotlb slot stayed live and the device's write never reached RAM.
#[test]
fn bug01_two_live_tables_with_the_same_first_entry_keep_their_own_plans_direct() {
    let a = variant(
        |t| {
            edit_once(
                t,
                "bars = [{ index = 0, addr = 0xc000_8000, size = \"16K\", mem64 = true }]",
                "bars = [{ index = 0, addr = 0xc000_8000, size = \"16K\", mem64 = true }]\ndma_mask = 32",
            )
        },
        AssemblyOptions {
            iommu: IommuMode::Off,
            ..AssemblyOptions::default()
        },
    );
    let d = a.device(bdf(NVME2)).unwrap();
    let hdr = scratch(&a, 0);
    let high = PhysAddr::new(0x2_0000_0000);
    let mut t1 = d
        .table_from_ranges(&[(hdr, 0x1000), (PhysAddr::new(APU_BAR), 0x1000)], 1 << 20)
        .unwrap();
    let mut t2 = d.table_from_ranges(&[(hdr, 0x1000), (high, 0x1000)], 1 << 20).unwrap();
    let dir = Direction::FromDevice;
    d.map_sgtable(&mut t1, dir, DmaAttrs::empty()).unwrap();
    d.map_sgtable(&mut t2, dir, DmaAttrs::empty()).unwrap();
    assert_eq!(a.swiotlb.live_mappings(), 1, "t2's high entry is bounced");
    let seg = dma_api::segments(&t2).nth(1).unwrap();
    let data = pattern(0x1000, 21);
    dev_write(&a, bdf(NVME2), seg.dma, &data).unwrap();
    d.unmap_sgtable(&mut t1, dir, DmaAttrs::empty()).unwrap();
    d.unmap_sgtable(&mut t2, dir, DmaAttrs::empty()).unwrap();
    assert_eq!(a.swiotlb.live_mappings(), 0);
    assert_eq!(cpu_read(&a, high, 0x1000), data, "the bounce was copied back");
    assert_eq!(d.live_tables(), 0);
}

/// Bug 1, IOMMU strict: two tables starting with the same peer page (a bus
/// address) and different RAM. Both unmaps failed, a retry said NotMapped,
/// and the device could still read t1's RAM.
#[test]
fn bug01_two_live_tables_with_the_same_first_entry_keep_their_own_plans_iommu() {
    let a = reference_with(IommuMode::Strict);
    let d = a.device(bdf(NVME1)).unwrap();
    let peer = PhysAddr::new(RDMA0_BAR);
    let (ra, rb) = (scratch(&a, 0), scratch(&a, 1));
    let mut t1 = d.table_from_ranges(&[(peer, 0x1000), (ra, 0x1000)], 1 << 20).unwrap();
    let mut t2 = d.table_from_ranges(&[(peer, 0x1000), (rb, 0x1000)], 1 << 20).unwrap();
    let dir = Direction::Bidirectional;
    d.map_sgtable(&mut t1, dir, DmaAttrs::empty()).unwrap();
    d.map_sgtable(&mut t2, dir, DmaAttrs::empty()).unwrap();
    let ram1 = dma_api::segments(&t1).nth(1).unwrap().dma;
    let ram2 = dma_api::segments(&t2).nth(1).unwrap().dma;
    let data = pattern(0x1000, 22);
    cpu_write(&a, ra, &data);
    assert_eq!(dev_read(&a, bdf(NVME1), ram1, 0x1000).unwrap(), data);
    d.unmap_sgtable(&mut t1, dir, DmaAttrs::empty()).unwrap();
    assert!(
        dev_read(&a, bdf(NVME1), ram1, 0x1000).is_err(),
        "t1's RAM is unreachable after its unmap"
    );
    assert!(dev_read(&a, bdf(NVME1), ram2, 0x1000).is_ok(), "t2 still mapped");
    d.unmap_sgtable(&mut t2, dir, DmaAttrs::empty()).unwrap();
    assert!(dev_read(&a, bdf(NVME1), ram2, 0x1000).is_err());
    assert_eq!(d.live_tables(), 0);
}
