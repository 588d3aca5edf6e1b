//! An untrusted (external-facing) endpoint on the reference server with the
//! IOMMU on: its sub-granule buffers are bounced through the machine's
//! swiotlb pool (drivers/iommu/dma-iommu.c `iommu_dma_map_swiotlb`), so a
//! device write through the fabric never touches the bytes sharing the
//! buffer's page, and lands in the buffer only at sync or unmap. A trusted
//! endpoint mapping the same kind of buffer is mapped in place, in whole
//! granules, and can clobber its neighbours — the exposure the bounce closes.

use dma_api::{Direction, DmaAddr, DmaAttrs, PhysAddr};
use dma_sim::assembly::{AssemblyOptions, Concrete, IommuMode};
use unidma_tests::*;

const UNTRUSTED: &str = "04:00.0"; // nvme1
const TRUSTED: &str = "03:00.0"; // nvme0
const SECRET: u8 = 0x5e;
const LEN: u64 = 0x80;

fn machine() -> dma_sim::assembly::Assembly {
    variant(
        |t| {
            edit_once(
                t,
                "name = \"nvme1\"\n",
                "name = \"nvme1\"\nuntrusted = true\n",
            )
        },
        AssemblyOptions {
            iommu: IommuMode::Strict,
            ..AssemblyOptions::default()
        },
    )
}

/// Fills the page at `page` with the secret and returns a buffer at an odd
/// offset inside it, holding `pattern(LEN, seed)`.
fn secret_page_buffer(a: &dma_sim::assembly::Assembly, page: PhysAddr, seed: u8) -> PhysAddr {
    cpu_write(a, page, &[SECRET; 0x1000]);
    let buf = PhysAddr::new(page.raw() + 0x7c3);
    cpu_write(a, buf, &pattern(LEN as usize, seed));
    buf
}

/// Every byte of the page outside `[buf, buf + LEN)` still holds the secret.
fn neighbours_intact(a: &dma_sim::assembly::Assembly, page: PhysAddr, buf: PhysAddr) {
    let all = cpu_read(a, page, 0x1000);
    let off = (buf.raw() - page.raw()) as usize;
    for (i, &b) in all.iter().enumerate() {
        if i < off || i >= off + LEN as usize {
            assert_eq!(b, SECRET, "byte {i:#x} of the page");
        }
    }
}

#[test]
fn untrusted_endpoint_gets_the_pool_and_trusted_does_not() {
    let a = machine();
    match &a.endpoint(bdf(UNTRUSTED)).unwrap().concrete {
        Concrete::Iommu(b) => {
            assert!(!b.device().trusted);
            let pool = b.swiotlb().expect("untrusted device has the pool");
            assert_eq!(pool.start(), a.swiotlb.start());
        }
        Concrete::Direct(_) => panic!("IOMMU on: expected the iommu backend"),
    }
    match &a.endpoint(bdf(TRUSTED)).unwrap().concrete {
        Concrete::Iommu(b) => assert!(b.swiotlb().is_none()),
        Concrete::Direct(_) => panic!("IOMMU on: expected the iommu backend"),
    }
}

#[test]
fn device_write_through_the_fabric_spares_the_neighbours_and_lands_after_sync() {
    let a = machine();
    let who = bdf(UNTRUSTED);
    let d = a.device(who).unwrap();
    let page = scratch(&a, 0);
    let buf = secret_page_buffer(&a, page, 1);
    let dma = d
        .map_phys(buf, LEN, Direction::Bidirectional, DmaAttrs::empty())
        .unwrap();
    // The device sees its bytes and zeros in the rest of the granule.
    let g = DmaAddr::new(dma.raw() & !0xfff);
    let off = (dma.raw() - g.raw()) as usize;
    let seen = dev_read(&a, who, g, 0x1000).unwrap();
    assert_eq!(
        &seen[off..off + LEN as usize],
        &pattern(LEN as usize, 1)[..]
    );
    assert!(seen[..off]
        .iter()
        .chain(&seen[off + LEN as usize..])
        .all(|&b| b == 0));

    // The device writes its buffer and scribbles over the whole granule.
    let w = pattern(LEN as usize, 90);
    dev_write(&a, who, g, &[0xee; 0x1000]).unwrap();
    dev_write(&a, who, dma, &w).unwrap();
    // Nothing reached the original yet; its neighbours are untouched.
    assert_eq!(cpu_read(&a, buf, LEN as usize), pattern(LEN as usize, 1));
    neighbours_intact(&a, page, buf);
    d.sync_single_for_cpu(dma, LEN, Direction::Bidirectional)
        .unwrap();
    assert_eq!(cpu_read(&a, buf, LEN as usize), w);
    neighbours_intact(&a, page, buf);

    // Another write lands at unmap; after it the device has no access.
    let w2 = pattern(LEN as usize, 170);
    dev_write(&a, who, dma, &w2).unwrap();
    d.unmap_phys(dma, LEN, Direction::Bidirectional, DmaAttrs::empty())
        .unwrap();
    assert_eq!(cpu_read(&a, buf, LEN as usize), w2);
    neighbours_intact(&a, page, buf);
    assert!(dev_write(&a, who, dma, &w).is_err());
    assert_eq!(a.swiotlb.live_mappings(), 0);
}

#[test]
fn a_trusted_endpoint_maps_in_place_and_can_reach_the_neighbours() {
    let a = machine();
    let who = bdf(TRUSTED);
    let d = a.device(who).unwrap();
    let page = scratch(&a, 1);
    let buf = secret_page_buffer(&a, page, 2);
    let dma = d
        .map_phys(buf, LEN, Direction::Bidirectional, DmaAttrs::empty())
        .unwrap();
    assert_eq!(dma.raw() & 0xfff, buf.raw() & 0xfff);
    let g = DmaAddr::new(dma.raw() & !0xfff);
    // Whole-granule mapping of the original: the secret is visible and a
    // stray write lands on it at once.
    assert_eq!(dev_read(&a, who, g, 1).unwrap(), vec![SECRET]);
    dev_write(&a, who, g, &[0xee]).unwrap();
    assert_eq!(cpu_read(&a, page, 1), vec![0xee]);
    d.unmap_phys(dma, LEN, Direction::Bidirectional, DmaAttrs::empty())
        .unwrap();
    assert_eq!(a.swiotlb.stats().maps, 0);
}

#[test]
fn sg_table_of_the_untrusted_endpoint_is_bounced_entry_by_entry() {
    use dma_api::SegKind;
    use scatterlist::{DmaFlags, SgTable};
    let a = machine();
    let who = bdf(UNTRUSTED);
    let d = a.device(who).unwrap();
    let page = scratch(&a, 2);
    let buf = secret_page_buffer(&a, page, 3);
    let whole = scratch(&a, 3);
    cpu_write(&a, whole, &pattern(0x1000, 4));
    let mut t = SgTable::new();
    for (p, l) in [(buf, LEN), (whole, 0x1000)] {
        let one = SgTable::from_ranges(&[(p, l)], SegKind::Ram, 1 << 31).unwrap();
        t = t.chain(one).unwrap();
    }
    let n = d
        .map_sgtable(&mut t, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(n, 2);
    let segs: Vec<_> = t
        .dma_iter()
        .map(|e| (e.dma_address(), u64::from(e.dma_len()), e.dma_flags()))
        .collect();
    assert!(segs[0].2.contains(DmaFlags::SWIOTLB));
    assert_eq!(segs[0].1, LEN);
    assert_eq!(segs[1].1, 0x1000);
    assert_eq!(a.swiotlb.live_mappings(), 1, "only the sub-granule entry");
    // Scribble over the bounced granule, write the aligned page.
    dev_write(
        &a,
        who,
        DmaAddr::new(segs[0].0.raw() & !0xfff),
        &[0xee; 0x1000],
    )
    .unwrap();
    let w = pattern(LEN as usize, 55);
    dev_write(&a, who, segs[0].0, &w).unwrap();
    let w1 = pattern(0x1000, 66);
    dev_write(&a, who, segs[1].0, &w1).unwrap();
    assert_eq!(cpu_read(&a, buf, LEN as usize), pattern(LEN as usize, 3));
    d.sync_sgtable_for_cpu(&t, Direction::FromDevice).unwrap();
    assert_eq!(cpu_read(&a, buf, LEN as usize), w);
    assert_eq!(cpu_read(&a, whole, 0x1000), w1);
    neighbours_intact(&a, page, buf);
    d.unmap_sgtable(&mut t, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(a.swiotlb.live_mappings(), 0);
    neighbours_intact(&a, page, buf);
}
