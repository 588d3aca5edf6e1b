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
    let mut t2 = d
        .table_from_ranges(&[(hdr, 0x1000), (high, 0x1000)], 1 << 20)
        .unwrap();
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
    assert_eq!(
        cpu_read(&a, high, 0x1000),
        data,
        "the bounce was copied back"
    );
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
    let mut t1 = d
        .table_from_ranges(&[(peer, 0x1000), (ra, 0x1000)], 1 << 20)
        .unwrap();
    let mut t2 = d
        .table_from_ranges(&[(peer, 0x1000), (rb, 0x1000)], 1 << 20)
        .unwrap();
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
    assert!(
        dev_read(&a, bdf(NVME1), ram2, 0x1000).is_ok(),
        "t2 still mapped"
    );
    d.unmap_sgtable(&mut t2, dir, DmaAttrs::empty()).unwrap();
    assert!(dev_read(&a, bdf(NVME1), ram2, 0x1000).is_err());
    assert_eq!(d.live_tables(), 0);
}

/// Bug 7: an IOMMU unmap with too long a length took the neighbouring
/// mapping (and pushed an oversized range into the IOVA cache). The backend
/// now refuses a length that does not match the mapping, and the neighbour
/// keeps working.
#[test]
fn bug07_a_too_long_unmap_is_refused_and_leaves_the_neighbour_mapped() {
    use dma_api::port::{MapRequest, SegTarget};
    use dma_api::{DmaError, ErrorKind};
    let a = reference_with(IommuMode::Strict);
    let d = a.device(bdf(NVME1)).unwrap();
    let be = d.raw_backend();
    let req = |phys: PhysAddr| MapRequest {
        phys,
        len: 0x1000,
        dir: Direction::Bidirectional,
        attrs: DmaAttrs::empty(),
        target: SegTarget::Ram,
    };
    let (pa, pb) = (scratch(&a, 0), scratch(&a, 1));
    let da = be.map(&req(pa)).unwrap();
    let db = be.map(&req(pb)).unwrap();
    // IOVAs are handed out top down: one of them sits right below the other.
    let (lower, lower_phys, upper) = if da.raw() < db.raw() {
        (da, pa, db)
    } else {
        (db, pb, da)
    };
    assert_eq!(lower.raw() + 0x1000, upper.raw(), "adjacent IOVAs");
    let too_long = MapRequest {
        len: 0x2000,
        ..req(lower_phys)
    };
    let e = be.unmap(lower, &too_long).unwrap_err();
    assert_eq!(
        e,
        DmaError::UnmapLengthMismatch {
            dma: lower,
            len: 0x2000,
            mapped: 0x1000
        }
    );
    assert_eq!(e.kind(), ErrorKind::Invalid);
    // Both mappings still work on the fabric.
    let data = pattern(0x1000, 23);
    dev_write(&a, bdf(NVME1), upper, &data).unwrap();
    dev_write(&a, bdf(NVME1), lower, &data).unwrap();
    be.unmap(lower, &req(lower_phys)).unwrap();
    let upper_phys = if lower_phys == pa { pb } else { pa };
    be.unmap(upper, &req(upper_phys)).unwrap();
    assert!(dev_write(&a, bdf(NVME1), upper, &data).is_err());
}
