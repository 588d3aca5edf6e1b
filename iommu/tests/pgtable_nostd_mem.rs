//! The page-table engine on its `no_std` memory ([`BTreeMem`], owned or
//! behind a spin lock) writes exactly the bytes it writes on the std
//! simulated RAM, for the same operations: same table frames at the same
//! addresses, same entries, same results, same walker translations.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::on_every_format;
use dma_iommu::pgtable::{
    AnyFormat, ArmLpae, ArmStage, BTreeMem, Granule, PageTable, Prot, PtError, PtFormat, Pte,
    TableMem, VtdSs, WalkMem,
};
use dma_iommu::walker::{self, Access, Fault};
use dma_iommu::{Iova, PhysAddr};
use proptest::prelude::*;

type Spin = Arc<spin::Mutex<BTreeMem>>;

/// Every table reachable from the root: address -> (level, entries).
fn tables<F: PtFormat, M: TableMem>(pt: &PageTable<F, M>) -> BTreeMap<u64, (u32, Vec<u64>)> {
    let fmt = pt.format();
    pt.mem().with_store(|m| {
        let mut out = BTreeMap::new();
        let mut stack = vec![(pt.root(), fmt.top_level())];
        while let Some((t, level)) = stack.pop() {
            let n = fmt.table_bytes(level) / 8;
            let entries: Vec<u64> = (0..n)
                .map(|i| m.read_u64(PhysAddr::new(t.raw() + i * 8)))
                .collect();
            for &e in &entries {
                if let (Pte::Table(next), true) = (fmt.decode(level, e), level > 0) {
                    stack.push((next, level - 1));
                }
            }
            assert!(
                out.insert(t.raw(), (level, entries)).is_none(),
                "table {t} reached twice"
            );
        }
        out
    })
}

fn walk_all<F: PtFormat, M: TableMem>(
    pt: &PageTable<F, M>,
    probes: &[u64],
) -> Vec<Result<(PhysAddr, bool), Fault>> {
    let regs = pt.hw_regs();
    pt.mem().with_store(|m| {
        probes
            .iter()
            .map(|&p| walker::walk(&regs, m, Iova::new(p)).map(|w| (w.pa, w.allows(Access::Write))))
            .collect()
    })
}

/// The three tables of one format: std RAM, owned BTreeMem, shared BTreeMem.
struct Trio {
    std: PageTable<AnyFormat>,
    owned: PageTable<AnyFormat, BTreeMem>,
    shared: PageTable<AnyFormat, Spin>,
}

impl Trio {
    fn new(fmt: AnyFormat) -> Self {
        Self {
            std: PageTable::new(fmt).unwrap(),
            owned: PageTable::with_mem(fmt, BTreeMem::new()).unwrap(),
            shared: PageTable::with_mem(fmt, Arc::new(spin::Mutex::new(BTreeMem::new()))).unwrap(),
        }
    }

    fn map(&mut self, iova: u64, pa: u64, size: u64, prot: Prot) -> Result<(), PtError> {
        let (i, p) = (Iova::new(iova), PhysAddr::new(pa));
        let a = self.std.map(i, p, size, prot);
        assert_eq!(self.owned.map(i, p, size, prot), a);
        assert_eq!(self.shared.map(i, p, size, prot), a);
        a
    }

    /// Unmaps on all three, compares the gathers and releases them.
    fn unmap(&mut self, iova: u64, size: u64) -> u64 {
        let i = Iova::new(iova);
        let (n, g) = self.std.unmap(i, size);
        let (n1, g1) = self.owned.unmap(i, size);
        let (n2, g2) = self.shared.unmap(i, size);
        assert_eq!((n1, &g1), (n, &g));
        assert_eq!((n2, &g2), (n, &g));
        self.std.release(g);
        self.owned.release(g1);
        self.shared.release(g2);
        n
    }

    fn drain(&mut self) {
        let d = self.std.take_deferred();
        let d1 = self.owned.take_deferred();
        let d2 = self.shared.take_deferred();
        assert_eq!(d1, d);
        assert_eq!(d2, d);
        for (g, g1, g2) in d.into_iter().zip(d1).zip(d2).map(|((a, b), c)| (a, b, c)) {
            self.std.release(g);
            self.owned.release(g1);
            self.shared.release(g2);
        }
    }

    /// Same tables, byte for byte; same lookups and walks at `probes`.
    fn check(&self, probes: &[u64]) {
        assert_eq!(self.owned.root(), self.std.root());
        assert_eq!(self.shared.root(), self.std.root());
        let t = tables(&self.std);
        assert_eq!(tables(&self.owned), t);
        assert_eq!(tables(&self.shared), t);
        assert_eq!(self.owned.table_frames(), self.std.table_frames());
        assert_eq!(self.shared.table_frames(), self.std.table_frames());
        let live = self.std.mem().read().unwrap().live_frame_blocks();
        assert_eq!(self.owned.mem().live_frame_blocks(), live);
        assert_eq!(self.shared.mem().lock().live_frame_blocks(), live);
        assert_eq!(self.owned.leaf_sizes(), self.std.leaf_sizes());
        for &p in probes {
            let i = Iova::new(p);
            let sw = self.std.iova_to_phys(i);
            assert_eq!(self.owned.iova_to_phys(i), sw);
            assert_eq!(self.shared.iova_to_phys(i), sw);
            assert_eq!(self.owned.leaf_entry(i), self.std.leaf_entry(i));
        }
        let w = walk_all(&self.std, probes);
        assert_eq!(walk_all(&self.owned, probes), w);
        assert_eq!(walk_all(&self.shared, probes), w);
    }
}

/// A scripted life of a table with known outcomes: 4K pages, a 2M block
/// replacing an emptied table, overmap refusal with rollback, a partial
/// unmap of a block, table release through the gather.
fn scripted(fmt: AnyFormat) {
    const M2: u64 = 0x20_0000;
    let rw = Prot::READ | Prot::WRITE;
    let mut t = Trio::new(fmt);
    let probes = [
        0x0, 0x1234, 0x5000, 0x20_0000, 0x20_0abc, 0x3f_f008, 0x40_0000,
    ];

    t.map(0x1000, 0x8000_1000, 0x1000, rw).unwrap();
    t.map(0x5000, 0x9000_0000, 0x2000, Prot::READ).unwrap();
    t.check(&probes);
    assert_eq!(
        t.std.iova_to_phys(Iova::new(0x1234)),
        Some(PhysAddr::new(0x8000_1234))
    );
    assert_eq!(
        walk_all(&t.owned, &[0x1234, 0x5008, 0x0]),
        vec![
            Ok((PhysAddr::new(0x8000_1234), true)),
            Ok((PhysAddr::new(0x9000_0008), false)),
            Err(Fault::NotPresent {
                iova: Iova::new(0),
                level: 0
            }),
        ]
    );

    // A 2 MiB block over a range holding a 4K page: refused, nothing mapped.
    assert_eq!(
        t.map(0, 0xa000_0000, M2, rw),
        Err(PtError::AddressInUse { iova: Iova::new(0) })
    );
    // Multi-chunk map that collides half-way rolls back its first chunk.
    t.map(M2 + 0x1000, 0xb000_1000, 0x1000, rw).unwrap();
    assert!(t.map(M2, 0xc000_0000, 0x2000, rw).is_err());
    assert_eq!(t.std.iova_to_phys(Iova::new(M2)), None);
    t.check(&probes);

    // Emptying the 4K tables, then a 2 MiB block over them: the empty level-0
    // table is detached into the deferred gather and released.
    assert_eq!(t.unmap(0x1000, 0x1000), 0x1000);
    assert_eq!(t.unmap(0x5000, 0x2000), 0x2000);
    assert_eq!(t.unmap(M2 + 0x1000, 0x1000), 0x1000);
    let before = t.std.table_frames();
    t.map(M2, 0xc000_0000, M2, rw).unwrap();
    t.check(&probes);
    t.drain();
    assert_eq!(t.std.table_frames(), before - 1);
    assert_eq!(
        t.owned.leaf_entry(Iova::new(M2 + 0xabc)).map(|(l, _, _)| l),
        Some(1)
    );
    assert_eq!(
        walk_all(&t.owned, &[M2 + 0xabc]),
        vec![Ok((PhysAddr::new(0xc000_0abc), true))]
    );
    t.check(&probes);

    // Unmapping 4K inside the block removes the whole block (generic_pt).
    assert_eq!(t.unmap(M2, 0x1000), M2);
    t.check(&probes);
    assert_eq!(t.owned.leaf_count(), 0);

    // Two level-0 tables detached by one unmap go back to the free list and
    // are reused (LIFO) by the next maps: same addresses on every store.
    let g = 1u64 << 30;
    // A physical address aligned to 4K only forces 4K pages: 1024 of them
    // in two level-0 tables.
    t.map(g, 0x8000_1000, 2 * M2, rw).unwrap();
    assert_eq!(t.owned.leaf_sizes(), BTreeMap::from([(12, 1024)]));
    let frames = t.std.table_frames();
    assert_eq!(t.unmap(g, 2 * M2), 2 * M2);
    assert_eq!(t.std.table_frames(), frames - 2);
    t.map(0x3000, 0x8000_3000, 0x1000, rw).unwrap();
    t.map(2 * M2, 0x8000_4000, 0x1000, rw).unwrap();
    t.check(&[0x3000, 2 * M2, g + 0x1000]);
}

#[test]
fn vtd_tables_are_byte_identical_on_btree_mem() {
    for levels in 3..=5 {
        scripted(AnyFormat::VtdSs(VtdSs::new(levels).unwrap()));
    }
}

#[test]
fn arm_lpae_tables_are_byte_identical_on_btree_mem() {
    for stage in [ArmStage::S1, ArmStage::S2] {
        for (ias, oas) in [(32, 32), (48, 48)] {
            scripted(AnyFormat::ArmLpae(
                ArmLpae::new(stage, Granule::G4K, ias, oas).unwrap(),
            ));
        }
    }
}

#[test]
fn dropping_a_table_frees_every_frame_of_the_store() {
    let fmt = AnyFormat::VtdSs(VtdSs::new(4).unwrap());
    let mem: Spin = Arc::new(spin::Mutex::new(BTreeMem::new()));
    {
        let mut pt = PageTable::with_mem(fmt, Arc::clone(&mem)).unwrap();
        pt.map(
            Iova::new(0x40_0000),
            PhysAddr::new(0x1000),
            0x3000,
            Prot::READ,
        )
        .unwrap();
        assert_eq!(mem.lock().live_frame_blocks(), 4);
        assert_eq!(pt.table_frames(), 4);
    }
    assert_eq!(mem.lock().live_frame_blocks(), 0);
    assert_eq!(mem.lock().resident_pages(), 0);
}

#[derive(Debug, Clone)]
enum Op {
    Map {
        size: u8,
        slot: u16,
        pa: u32,
        ro: bool,
    },
    Unmap {
        size: u8,
        slot: u16,
        pages: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<u8>(), any::<u16>(), any::<u32>(), any::<bool>())
            .prop_map(|(size, slot, pa, ro)| Op::Map { size, slot, pa, ro }),
        2 => (any::<u8>(), any::<u16>(), 1u8..8)
            .prop_map(|(size, slot, pages)| Op::Unmap { size, slot, pages }),
    ]
}

/// One property case on one format: random maps/unmaps on the three
/// memories, compared after every step and checked at the end.
fn random_ops_on(fmt: AnyFormat, ops: &[Op]) {
    let mut t = Trio::new(fmt);
    let bm = t.std.pgsize_bitmap() & ((1u64 << 31) - 1);
    let sizes: Vec<u64> = (0..31)
        .filter(|b| bm & (1 << b) != 0)
        .map(|b| 1u64 << b)
        .collect();
    let granule = sizes[0];
    let mut probes = Vec::new();
    for o in ops {
        match *o {
            Op::Map { size, slot, pa, ro } => {
                let s = sizes[size as usize % sizes.len()];
                let iova = u64::from(slot % 64) * s;
                let pa = (u64::from(pa) * s) & ((1u64 << fmt.oas().min(40)) - 1) & !(s - 1);
                let prot = if ro {
                    Prot::READ
                } else {
                    Prot::READ | Prot::WRITE
                };
                let _ = t.map(iova, pa, s, prot);
                probes.push(iova + granule / 2);
            }
            Op::Unmap { size, slot, pages } => {
                let s = sizes[size as usize % sizes.len()];
                let iova = u64::from(slot % 64) * s;
                t.unmap(iova, u64::from(pages) * granule);
                probes.push(iova);
            }
        }
        if probes.len() % 5 == 0 {
            t.drain();
        }
    }
    t.check(&probes);
}

proptest! {
    // Every case runs every format (34), so the case count is per format.
    #![proptest_config(ProptestConfig::with_cases(8))]

    /// Random maps/unmaps on every format: the three memories stay identical.
    #[test]
    fn random_ops_match_std_memory_on_every_format(ops in prop::collection::vec(op(), 1..24)) {
        on_every_format(|fmt| {
            random_ops_on(fmt, &ops);
            Ok(())
        })?;
    }
}
