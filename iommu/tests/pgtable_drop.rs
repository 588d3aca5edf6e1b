//! Dropping a page table frees every table frame it holds: the root, the
//! tables linked below it, and the detached tables still waiting for a flush
//! (`take_deferred`). The drop finds linked tables by reading entries only
//! until it has found `linked_tables()` of them, so that count must be exact
//! after any sequence of maps and unmaps; here it is checked against a walk
//! of the raw table memory, and the frame pool of the simulated RAM must be
//! back to its starting count after the drop, on every format.

mod common;

use common::{all_formats, on_every_format};
use std::cell::Cell;
use std::rc::Rc;

use dma_api::mem::MemError;
use dma_iommu::pgtable::{
    AnyFormat, BTreeMem, FrameStore, PageTable, Prot, PtFormat, Pte, SharedTableMem, VtdSs, WalkMem,
};
use dma_iommu::{Iova, PhysAddr};
use proptest::prelude::*;

const RW: Prot = Prot::READ.union(Prot::WRITE);

/// Tables linked below the root, counted by reading every entry of every
/// table in the RAM (independently of the engine's count).
fn linked_in_ram(pt: &PageTable<AnyFormat>) -> usize {
    let f = pt.format();
    let m = pt.mem().read().unwrap();
    let mut n = 0;
    let mut stack = vec![(pt.root().raw(), f.top_level())];
    while let Some((t, level)) = stack.pop() {
        if level == 0 {
            continue;
        }
        for i in 0..(1u64 << f.index_bits(level)) {
            if let Pte::Table(c) = f.decode(level, m.read_u64(PhysAddr::new(t + i * 8))) {
                n += 1;
                stack.push((c.raw(), level - 1));
            }
        }
    }
    n
}

/// A table in its own RAM, and that RAM.
fn table(fmt: AnyFormat) -> (PageTable<AnyFormat>, SharedTableMem) {
    let ram = SharedTableMem::fresh();
    (PageTable::with_mem(fmt, ram.clone()).unwrap(), ram)
}

/// Frame blocks live in `ram`.
fn live(ram: &SharedTableMem) -> usize {
    ram.read().unwrap().live_frame_blocks()
}

/// The page sizes of `fmt` below 1 GiB, smallest first (at most three).
fn sizes(fmt: &AnyFormat) -> Vec<u64> {
    let bm = fmt.pgsize_bitmap() & ((1 << 31) - 1);
    (0..31)
        .map(|b| 1u64 << b)
        .filter(|s| bm & s != 0)
        .take(3)
        .collect()
}

#[test]
fn an_empty_table_frees_its_root() {
    for fmt in all_formats() {
        let (pt, ram) = table(fmt);
        assert_eq!(live(&ram), 1, "{}", fmt.name());
        assert_eq!(pt.linked_tables(), 0);
        drop(pt);
        assert_eq!(live(&ram), 0, "{}", fmt.name());
    }
}

/// Maps, partial unmaps, large leaves replacing tables (left deferred), a
/// rolled-back map, `map_pages` failing part way, `unmap_sparse`: after each
/// step the count matches the RAM, and the drop frees everything.
#[test]
fn drop_frees_every_frame_after_every_kind_of_change() {
    for fmt in all_formats() {
        let name = fmt.name();
        let s = sizes(&fmt);
        let (g, big) = (s[0], *s.last().unwrap());
        let top = 1u64 << fmt.ias().min(63);
        let (mut pt, ram) = table(fmt);
        let check = |pt: &PageTable<AnyFormat>, step: &str| {
            assert_eq!(pt.linked_tables(), linked_in_ram(pt), "{name}: {step}");
        };
        // Granule pages in two big slots, and one near the top.
        for i in 0..4 {
            pt.map(Iova::new(i * g), PhysAddr::new(i * g), g, RW)
                .unwrap();
            pt.map(Iova::new(big + i * g), PhysAddr::new(i * g), g, RW)
                .unwrap();
        }
        pt.map(Iova::new(top - g), PhysAddr::new(0), g, RW).unwrap();
        check(&pt, "maps");
        // A partial unmap, then one that empties a slot's leaves.
        let (_, gth) = pt.unmap(Iova::new(g), g);
        pt.release(gth);
        let (_, gth) = pt.unmap(Iova::new(big), 4 * g);
        pt.release(gth);
        check(&pt, "partial unmaps");
        if big > g {
            // The slot's table is empty now: a big page replaces it and it
            // waits, detached, for a flush that never comes before the drop.
            pt.map(Iova::new(big), PhysAddr::new(0), big, RW).unwrap();
            check(&pt, "large leaf over an empty table");
            // A map that fails part way rolls back what it did.
            let e = pt.map(Iova::new(2 * big - g), PhysAddr::new(0), 2 * g, RW);
            assert!(e.is_err(), "{name}");
            check(&pt, "rolled back");
            // map_pages that stops at the mapped page keeps its pages.
            pt.map(Iova::new(3 * big), PhysAddr::new(0), g, RW).unwrap();
            let mut mapped = 0;
            let at = 3 * big - 2 * g;
            let r = pt.map_pages(Iova::new(at), PhysAddr::new(0), g, 4, RW, &mut mapped);
            assert!(r.is_err(), "{name}");
            assert_eq!(mapped, 2 * g, "{name}");
            check(&pt, "map_pages part way");
        }
        // unmap_sparse over everything below the top slot detaches tables.
        let (_, gth) = pt.unmap_sparse(Iova::new(0), 4 * big);
        pt.release(gth);
        check(&pt, "unmap_sparse");
        pt.map(Iova::new(5 * g), PhysAddr::new(0), g, RW).unwrap();
        check(&pt, "map again");
        assert!(live(&ram) > 1 || fmt.top_level() == 0, "{name}");
        drop(pt);
        assert_eq!(live(&ram), 0, "{name}: frames left after the drop");
    }
}

#[derive(Debug, Clone)]
enum Op {
    Map { size: u8, slot: u16 },
    MapPages { size: u8, slot: u16, count: u8 },
    Unmap { size: u8, slot: u16, count: u8 },
    Sparse { slot: u16, count: u8 },
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<u8>(), any::<u16>()).prop_map(|(size, slot)| Op::Map { size, slot }),
        2 => (any::<u8>(), any::<u16>(), 1u8..8)
            .prop_map(|(size, slot, count)| Op::MapPages { size, slot, count }),
        3 => (any::<u8>(), any::<u16>(), 1u8..8)
            .prop_map(|(size, slot, count)| Op::Unmap { size, slot, count }),
        1 => (any::<u16>(), 1u8..8).prop_map(|(slot, count)| Op::Sparse { slot, count }),
        1 => Just(Op::Flush),
    ]
}

/// One case on one format: the ops, the count checked after each, then the
/// drop (gathers are released at once; replaced tables stay deferred until
/// a `Flush`).
fn drop_case(fmt: AnyFormat, ops: &[Op]) -> Result<(), TestCaseError> {
    let s = sizes(&fmt);
    let big = *s.last().unwrap();
    let window = (big * 4).min(1u64 << fmt.ias().min(63));
    let (mut pt, ram) = table(fmt);
    for op in ops {
        let at = |size: u64, slot: u16| ((u64::from(slot) * s[0]) % window) & !(size - 1);
        match *op {
            Op::Map { size, slot } => {
                let size = s[size as usize % s.len()];
                let va = at(size, slot);
                let _ = pt.map(Iova::new(va), PhysAddr::new(va), size, RW);
            }
            Op::MapPages { size, slot, count } => {
                let size = s[size as usize % s.len()];
                let va = at(size, slot);
                let count = u64::from(count).min((window - va) / size).max(1);
                let mut mapped = 0;
                let _ = pt.map_pages(
                    Iova::new(va),
                    PhysAddr::new(va),
                    size,
                    count,
                    RW,
                    &mut mapped,
                );
            }
            Op::Unmap { size, slot, count } => {
                let size = s[size as usize % s.len()];
                let va = at(size, slot);
                let (_, g) = pt.unmap_pages(Iova::new(va), size, u64::from(count));
                pt.release(g);
            }
            Op::Sparse { slot, count } => {
                let va = at(s[0], slot);
                let (_, g) = pt.unmap_sparse(Iova::new(va), u64::from(count) * big);
                pt.release(g);
            }
            Op::Flush => common::drain(&mut pt),
        }
        prop_assert_eq!(pt.linked_tables(), linked_in_ram(&pt), "after {:?}", op);
    }
    drop(pt);
    prop_assert_eq!(live(&ram), 0, "frames left after the drop");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    /// Any sequence of maps and unmaps keeps the linked-table count exact,
    /// and the drop leaves no frame behind, on every format.
    #[test]
    fn drop_frees_every_frame_after_any_ops(ops in prop::collection::vec(op(), 1..40)) {
        on_every_format(|fmt| drop_case(fmt, &ops))?;
    }
}

/// A [`BTreeMem`] that counts entry loads.
struct Counting(BTreeMem, Rc<Cell<u64>>);

impl WalkMem for Counting {
    fn read_u64(&self, addr: PhysAddr) -> u64 {
        self.1.set(self.1.get() + 1);
        self.0.read_u64(addr)
    }
}

impl FrameStore for Counting {
    fn write_u64(&mut self, addr: PhysAddr, val: u64) {
        self.0.write_u64(addr, val);
    }
    fn alloc_frames(&mut self, bytes: u64) -> Result<PhysAddr, MemError> {
        self.0.alloc_frames(bytes)
    }
    fn free_frames(&mut self, addr: PhysAddr) -> Result<(), MemError> {
        self.0.free_frames(addr)
    }
}

/// The drop reads no entry of a table that never linked one, and stops
/// reading once it has found every linked table: one 4 KiB page in a
/// 4-level VT-d table costs the three entries on its path, not 3 × 512.
#[test]
fn drop_reads_only_until_every_linked_table_is_found() {
    let reads = Rc::new(Cell::new(0));
    let fmt = VtdSs::new(4).unwrap();
    let pt = PageTable::with_mem(fmt, Counting(BTreeMem::new(), Rc::clone(&reads))).unwrap();
    reads.set(0);
    drop(pt);
    assert_eq!(reads.get(), 0, "an empty table");

    let mut pt = PageTable::with_mem(fmt, Counting(BTreeMem::new(), Rc::clone(&reads))).unwrap();
    pt.map(Iova::new(0), PhysAddr::new(0), 4096, RW).unwrap();
    assert_eq!(pt.linked_tables(), 3);
    reads.set(0);
    drop(pt);
    assert_eq!(reads.get(), 3, "the first entry of each table on the path");
}
