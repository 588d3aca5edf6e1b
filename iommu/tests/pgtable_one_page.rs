//! The one-page fast path of `map` and `unmap` (a call for one page whose
//! leaf table the walk cache holds) answers exactly as the general paths do
//! at every edge it steps aside for: a slot holding an empty table, a
//! contiguous group, a hole, an occupied slot, bad permissions and output
//! addresses. Each case first warms the cache with a neighbouring page, so
//! the call under test starts in the cached table; the outcome is checked
//! with the hardware walker reading the simulated RAM.

use dma_iommu::pgtable::{
    AmdV1, ArmLpae, ArmStage, Granule, PageTable, Prot, PtError, PtFormat, VtdSs,
};
use dma_iommu::walker::walk;
use dma_iommu::{Iova, PhysAddr};

const RW: Prot = Prot::READ.union(Prot::WRITE);
const K4: u64 = 4096;
const M2: u64 = 2 << 20;
const VA: u64 = 0x40_0000_0000;
const PA: u64 = 0x1000_0000;

fn hw<F: PtFormat>(pt: &PageTable<F>, iova: u64) -> Option<u64> {
    let m = pt.mem().read().unwrap();
    walk(&pt.hw_regs(), &*m, Iova::new(iova))
        .ok()
        .map(|w| w.pa.raw())
}

fn map<F: PtFormat>(pt: &mut PageTable<F>, va: u64, pa: u64, size: u64) -> Result<(), PtError> {
    pt.map(Iova::new(va), PhysAddr::new(pa), size, RW)
}

fn unmap<F: PtFormat>(pt: &mut PageTable<F>, va: u64, size: u64) -> u64 {
    let (n, g) = pt.unmap(Iova::new(va), size);
    pt.release(g);
    n
}

/// The cases, written once for every format.
fn run_all<F: PtFormat>(pt: &mut PageTable<F>) {
    let name = pt.format().name();
    // Per-page maps fill a leaf table from the cache.
    for i in 0..4 {
        map(pt, VA + i * K4, PA + i * K4, K4).unwrap();
    }
    assert_eq!(hw(pt, VA + 3 * K4 + 8), Some(PA + 3 * K4 + 8), "{name}");
    // An occupied slot: refused, nothing changed.
    assert_eq!(
        map(pt, VA + 2 * K4, 0x7000_0000, K4),
        Err(PtError::AddressInUse {
            iova: Iova::new(VA + 2 * K4)
        }),
        "{name}"
    );
    assert_eq!(hw(pt, VA + 2 * K4), Some(PA + 2 * K4), "{name}");
    // No permission, output address past the table's: refused, the
    // empty slot stays empty.
    assert_eq!(
        pt.map(Iova::new(VA + 4 * K4), PhysAddr::new(PA), K4, Prot::CACHE),
        Err(PtError::NoAccess {
            iova: Iova::new(VA + 4 * K4)
        }),
        "{name}"
    );
    let far = 1u64 << 60;
    assert!(
        matches!(
            map(pt, VA + 4 * K4, far, K4),
            Err(PtError::PhysOutOfRange { .. })
        ),
        "{name}"
    );
    // A physical address not aligned to the page: refused.
    assert!(
        matches!(
            map(pt, VA + 4 * K4, PA + 8, K4),
            Err(PtError::Misaligned { .. })
        ),
        "{name}"
    );
    assert_eq!(hw(pt, VA + 4 * K4), None, "{name}");
    // A hole in the cached table: nothing unmapped.
    assert_eq!(unmap(pt, VA + 5 * K4, K4), 0, "{name}");
    // Per-page unmaps from the cache.
    for i in 0..4 {
        assert_eq!(unmap(pt, VA + i * K4, K4), K4, "{name}");
        assert_eq!(hw(pt, VA + i * K4), None, "{name}");
    }
    assert_eq!(pt.leaf_count(), 0, "{name}");

    // A 2 MiB map warms the cache at the 2 MiB level; the next 2 MiB
    // slot holds an empty 4 KiB table, which the map replaces (deferred).
    let b = VA + 4 * M2;
    map(pt, b, PA, M2).unwrap();
    map(pt, b + M2 + K4, PA, K4).unwrap();
    assert_eq!(unmap(pt, b + M2 + K4, K4), K4, "{name}");
    assert_eq!(
        map(pt, b, 0x2000_0000, M2),
        Err(PtError::AddressInUse { iova: Iova::new(b) }),
        "{name}"
    );
    map(pt, b + 2 * M2, PA + M2, M2).unwrap(); // cache: the 2 MiB table
    map(pt, b + M2, 0x2000_0000, M2).unwrap();
    let g = pt.take_deferred().expect("the replaced 4 KiB table");
    assert_eq!(g.freed_tables().len(), 1, "{name}");
    pt.release(g);
    assert_eq!(hw(pt, b + M2 + K4), Some(0x2000_0000 + K4), "{name}");
    // A 2 MiB unmap whose slot holds a table of 4 KiB leaves: the whole
    // table's worth is unmapped and the table detached.
    let c = VA + 8 * M2;
    map(pt, c, PA, M2).unwrap();
    for i in 0..M2 / K4 {
        map(pt, c + M2 + i * K4, PA + i * K4, K4).unwrap();
    }
    assert_eq!(unmap(pt, c, M2), M2, "{name}");
    let (n, g) = pt.unmap(Iova::new(c + M2), M2);
    assert_eq!(n, M2, "{name}");
    assert_eq!(g.freed_tables().len(), 1, "{name}");
    pt.release(g);
    assert_eq!(hw(pt, c + M2 + 5 * K4), None, "{name}");
}

#[test]
fn one_page_calls_answer_as_the_general_paths_on_every_format() {
    run_all(&mut PageTable::new(VtdSs::new(4).unwrap()).unwrap());
    run_all(&mut PageTable::new(AmdV1::new(4).unwrap()).unwrap());
    let arm = ArmLpae::new(ArmStage::S1, Granule::G4K, 48, 48).unwrap();
    run_all(&mut PageTable::new(arm).unwrap());
}

/// AMD v1 maps 8 KiB as a contiguous pair of 4 KiB entries: a 4 KiB unmap at
/// the pair's start, from the cached table, removes both and says so
/// (generic_pt); one inside it removes nothing.
#[test]
fn a_one_page_unmap_of_a_contiguous_group_removes_the_group() {
    let mut pt = PageTable::new(AmdV1::new(4).unwrap()).unwrap();
    map(&mut pt, VA, PA, K4).unwrap();
    map(&mut pt, VA + 2 * K4, PA + 2 * K4, 2 * K4).unwrap();
    assert_eq!(pt.leaf_entry(Iova::new(VA + 3 * K4)).unwrap().0, 0);
    assert_eq!(unmap(&mut pt, VA, K4), K4);
    assert_eq!(unmap(&mut pt, VA + 3 * K4, K4), 0);
    assert_eq!(hw(&pt, VA + 3 * K4), Some(PA + 3 * K4));
    assert_eq!(unmap(&mut pt, VA + 2 * K4, K4), 2 * K4);
    assert_eq!(hw(&pt, VA + 3 * K4), None);
    assert_eq!(pt.leaf_count(), 0);
}

/// A zero-size call, with an empty or a warm cache, is refused as without
/// the fast path (`ZeroSize` for a map, nothing for an unmap); an empty
/// cache's "no page size" never matches size 0.
#[test]
fn zero_sizes_are_refused_with_an_empty_or_a_warm_cache() {
    let mut pt = PageTable::new(VtdSs::new(4).unwrap()).unwrap();
    assert_eq!(unmap(&mut pt, VA, 0), 0);
    assert_eq!(
        map(&mut pt, VA, PA, 0),
        Err(PtError::ZeroSize {
            iova: Iova::new(VA)
        })
    );
    map(&mut pt, VA, PA, K4).unwrap();
    assert_eq!(
        map(&mut pt, VA + K4, PA, 0),
        Err(PtError::ZeroSize {
            iova: Iova::new(VA + K4)
        })
    );
    assert_eq!(unmap(&mut pt, VA, 0), 0);
    assert_eq!(hw(&pt, VA), Some(PA));
}
