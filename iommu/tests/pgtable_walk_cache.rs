//! The engine's walk cache (the last table a map or unmap used) never
//! outlives the table: after a table is detached by an unmap or replaced by a
//! large leaf, the next per-page call in the same span walks from the root
//! again. Checked with the hardware walker reading the simulated RAM.

use dma_iommu::pgtable::{PageTable, Prot, PtError, VtdSs};
use dma_iommu::walker::walk;
use dma_iommu::{Iova, PhysAddr};

const RW: Prot = Prot::READ.union(Prot::WRITE);
const K4: u64 = 4096;
const M2: u64 = 2 << 20;
const VA: u64 = 0x40_0000_0000;

fn hw(pt: &PageTable<VtdSs>, iova: u64) -> Option<u64> {
    let m = pt.mem().read().unwrap();
    walk(&pt.hw_regs(), &*m, Iova::new(iova))
        .ok()
        .map(|w| w.pa.raw())
}

#[test]
fn map_after_the_cached_table_was_detached_lands_in_the_live_tree() {
    let mut pt = PageTable::new(VtdSs::new(4).unwrap()).unwrap();
    for i in 0..M2 / K4 {
        pt.map(
            Iova::new(VA + i * K4),
            PhysAddr::new(0x1000_0000 + i * K4),
            K4,
            RW,
        )
        .unwrap();
    }
    // The whole 2 MiB span: its level-0 table is detached and freed.
    let (n, g) = pt.unmap(Iova::new(VA), M2);
    assert_eq!(n, M2);
    assert_eq!(g.freed_tables().len(), 1);
    pt.release(g);
    pt.map(Iova::new(VA + K4), PhysAddr::new(0x2000_0000), K4, RW)
        .unwrap();
    assert_eq!(hw(&pt, VA + K4), Some(0x2000_0000));
    assert_eq!(
        pt.iova_to_phys(Iova::new(VA + K4)),
        Some(PhysAddr::new(0x2000_0000))
    );
}

#[test]
fn map_after_the_cached_table_was_replaced_by_a_large_leaf_is_refused() {
    let mut pt = PageTable::new(VtdSs::new(4).unwrap()).unwrap();
    pt.map(Iova::new(VA), PhysAddr::new(0x1000_0000), K4, RW)
        .unwrap();
    let (_, g) = pt.unmap(Iova::new(VA), K4);
    pt.release(g);
    // The empty level-0 table is replaced by a 2 MiB leaf and released.
    pt.map(Iova::new(VA), PhysAddr::new(0x4000_0000), M2, RW)
        .unwrap();
    let g = pt.take_deferred().expect("the replaced table");
    pt.release(g);
    assert_eq!(
        pt.map(Iova::new(VA + K4), PhysAddr::new(0x2000_0000), K4, RW),
        Err(PtError::AddressInUse {
            iova: Iova::new(VA + K4)
        })
    );
    assert_eq!(hw(&pt, VA + K4), Some(0x4000_0000 + K4));
    // A per-page unmap inside the large leaf removes all of it.
    let (n, g) = pt.unmap(Iova::new(VA + K4), K4);
    pt.release(g);
    assert_eq!(n, 0, "an unmap starting inside a large leaf unmaps nothing");
    let (n, g) = pt.unmap(Iova::new(VA), K4);
    pt.release(g);
    assert_eq!(n, M2);
    assert_eq!(hw(&pt, VA), None);
}
