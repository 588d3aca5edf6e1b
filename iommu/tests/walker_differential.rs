//! Differential test: the independent hardware walker, reading raw table
//! memory, must agree with the writer's `iova_to_phys` after any sequence of
//! maps and unmaps, for every format.

mod common;

use common::{all_formats, drain, on_every_format};
use dma_iommu::pgtable::{AnyFormat, PageTable, Prot, PtError, PtFormat};
use dma_iommu::walker::{self, Access, Fault};
use dma_iommu::{Iova, PhysAddr};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Map {
        size_pick: u8,
        slot: u16,
        pa_slot: u32,
        ro: bool,
    },
    Unmap {
        size_pick: u8,
        slot: u16,
        len_pages: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<u8>(), any::<u16>(), any::<u32>(), any::<bool>())
            .prop_map(|(size_pick, slot, pa_slot, ro)| Op::Map { size_pick, slot, pa_slot, ro }),
        2 => (any::<u8>(), any::<u16>(), 1u8..8).prop_map(|(size_pick, slot, len_pages)| Op::Unmap { size_pick, slot, len_pages }),
    ]
}

/// Page sizes used for a format: at most three, all <= 1 GiB.
fn usable_sizes(pt: &PageTable<AnyFormat>) -> Vec<u64> {
    let bm = pt.pgsize_bitmap() & ((1u64 << 31) - 1);
    let all: Vec<u64> = (0..31)
        .filter(|b| bm & (1 << b) != 0)
        .map(|b| 1u64 << b)
        .collect();
    // smallest, a middle one (AMD contiguous) and the largest
    let mut v = vec![all[0]];
    if all.len() > 2 {
        v.push(all[all.len() / 2]);
    }
    if all.len() > 1 {
        v.push(all[all.len() - 1]);
    }
    v
}

fn check(pt: &PageTable<AnyFormat>, probes: &[u64]) -> Result<(), TestCaseError> {
    let regs = pt.hw_regs();
    let m = pt.mem().read().unwrap();
    for &p in probes {
        let sw = pt.iova_to_phys(Iova::new(p));
        let hw = walker::walk(&regs, &m, Iova::new(p));
        match (sw, hw) {
            (Some(a), Ok(w)) => {
                prop_assert_eq!(a, w.pa, "{} at {:#x}", pt.format().name(), p);
                let (_, _, dec) = pt.leaf_entry(Iova::new(p)).unwrap();
                if let dma_iommu::pgtable::Pte::Leaf { prot, size_lg2, .. } = dec {
                    prop_assert_eq!(w.read, prot.contains(Prot::READ));
                    prop_assert_eq!(w.write, prot.contains(Prot::WRITE));
                    prop_assert_eq!(w.page_lg2, size_lg2);
                }
            }
            (None, Err(Fault::NotPresent { .. })) => {}
            (sw, hw) => prop_assert!(
                false,
                "{} at {:#x}: writer {:?} walker {:?}",
                pt.format().name(),
                p,
                sw,
                hw
            ),
        }
    }
    Ok(())
}

fn run(fmt: AnyFormat, ops: &[Op], probe_seed: &[u32]) -> Result<(), TestCaseError> {
    let mut pt = PageTable::new(fmt).unwrap();
    let sizes = usable_sizes(&pt);
    let big = *sizes.last().unwrap();
    let window = (big * 4).min(1u64 << fmt.ias().min(63));
    let oa_lim = (1u64 << fmt.oas()).min(1 << 40);
    let mut probes: Vec<u64> = Vec::new();
    for op in ops {
        match *op {
            Op::Map {
                size_pick,
                slot,
                pa_slot,
                ro,
            } => {
                let size = sizes[size_pick as usize % sizes.len()];
                let va = (u64::from(slot) * size) % window;
                let pa = (u64::from(pa_slot) * size) % oa_lim;
                let prot = if ro {
                    Prot::READ
                } else {
                    Prot::READ | Prot::WRITE
                };
                match pt.map(Iova::new(va), PhysAddr::new(pa), size, prot) {
                    Ok(()) | Err(PtError::AddressInUse { .. }) => {}
                    Err(e) => {
                        prop_assert!(false, "{}: map {va:#x} {pa:#x} {size:#x}: {e}", fmt.name())
                    }
                }
                probes.extend([va, va + size / 2, va + size - 1]);
            }
            Op::Unmap {
                size_pick,
                slot,
                len_pages,
            } => {
                let size = sizes[size_pick as usize % sizes.len()];
                let va = (u64::from(slot) * size) % window;
                let len = (u64::from(len_pages) * sizes[0]).min(window - va);
                let (_, g) = pt.unmap(Iova::new(va), len);
                pt.release(g);
                probes.extend([va, va + len - 1]);
            }
        }
        drain(&mut pt);
    }
    probes.extend(
        probe_seed
            .iter()
            .map(|&s| (u64::from(s) * 0x1000 + u64::from(s % 0x1000)) % window),
    );
    check(&pt, &probes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn walker_matches_writer_every_format(
        ops in prop::collection::vec(op(), 1..40),
        probe_seed in prop::collection::vec(any::<u32>(), 32),
    ) {
        on_every_format(|fmt| run(fmt, &ops, &probe_seed))?;
    }
}

#[test]
fn walker_checks_permissions_and_address_size() {
    for fmt in all_formats() {
        let mut pt = PageTable::new(fmt).unwrap();
        let g = pt.pgsize_bitmap() & pt.pgsize_bitmap().wrapping_neg();
        pt.map(Iova::new(g), PhysAddr::new(g * 3), g, Prot::READ)
            .unwrap();
        let regs = pt.hw_regs();
        let m = pt.mem().read().unwrap();
        assert_eq!(
            walker::translate(&regs, &m, Iova::new(g + 8), Access::Read),
            Ok(PhysAddr::new(g * 3 + 8))
        );
        assert!(
            matches!(
                walker::translate(&regs, &m, Iova::new(g), Access::Write),
                Err(Fault::Permission {
                    level: 0,
                    access: Access::Write,
                    ..
                })
            ),
            "{}",
            fmt.name()
        );
        assert!(matches!(
            walker::translate(&regs, &m, Iova::new(0), Access::Read),
            Err(Fault::NotPresent { .. })
        ));
        if fmt.ias() < 64 {
            assert_eq!(
                walker::translate(&regs, &m, Iova::new(1u64 << fmt.ias()), Access::Read),
                Err(Fault::AddressSize {
                    iova: Iova::new(1u64 << fmt.ias()),
                    ias: fmt.ias()
                }),
                "{}",
                fmt.name()
            );
        }
    }
}

#[test]
fn amd_walker_follows_level_skipping_like_hardware() {
    use dma_iommu::HwRegs;
    use dma_iommu::PhysMem;
    // Hand-written mode-3 table: the root (level 3) entry 0 skips level 2 and
    // points straight at a level-1 table (NL = 1).
    let mut m = PhysMem::new();
    let root = PhysAddr::new(0x10_0000);
    let l1 = PhysAddr::new(0x20_0000);
    m.write_u64(root, 1 | (1 << 9) | l1.raw() | (3 << 61));
    m.write_u64(PhysAddr::new(l1.raw() + 5 * 8), 1 | 0xABC_D000 | (1 << 61));
    let regs = HwRegs::AmdV1 {
        pt_root: root,
        mode: 3,
    };
    let w = walker::walk(&regs, &m, Iova::new(0x5123)).unwrap();
    assert_eq!(
        (w.pa, w.read, w.write),
        (PhysAddr::new(0xABC_D123), true, false)
    );
    // The skipped level's index bits (20:12 of level 2 = IOVA bits 29:21) must be zero.
    assert!(matches!(
        walker::walk(&regs, &m, Iova::new(0x20_5123)),
        Err(Fault::NotPresent { .. })
    ));
    // A table entry pointing to its own level or above is malformed.
    m.write_u64(root, 1 | (3 << 9) | l1.raw() | (3 << 61));
    assert!(matches!(
        walker::walk(&regs, &m, Iova::new(0x5123)),
        Err(Fault::Malformed { level: 2, .. })
    ));
}

/// One case of the fast-path property on one format: the same ops on two
/// tables, one unmapped with the fast path, one with the full walk.
fn fast_path_case(fmt: AnyFormat, ops: &[Op], probe_seed: &[u32]) -> Result<(), TestCaseError> {
    let mut a = PageTable::new(fmt).unwrap();
    let mut b = PageTable::new(fmt).unwrap();
    let sizes = usable_sizes(&a);
    let big = *sizes.last().unwrap();
    let window = (big * 4).min(1u64 << fmt.ias().min(63));
    for op in ops {
        match *op {
            Op::Map {
                size_pick,
                slot,
                pa_slot,
                ..
            } => {
                let size = sizes[size_pick as usize % sizes.len()];
                let va = (u64::from(slot) * size) % window;
                let pa = (u64::from(pa_slot) * size) % (1u64 << 32);
                let ra = a.map(Iova::new(va), PhysAddr::new(pa), size, Prot::READ);
                let rb = b.map(Iova::new(va), PhysAddr::new(pa), size, Prot::READ);
                prop_assert_eq!(ra, rb);
            }
            Op::Unmap {
                size_pick,
                slot,
                len_pages,
            } => {
                let size = sizes[size_pick as usize % sizes.len()];
                let va = (u64::from(slot) * size) % window;
                let len = if len_pages % 2 == 0 {
                    size
                } else {
                    (u64::from(len_pages) * sizes[0]).min(window - va)
                };
                let (na, ga) = a.unmap(Iova::new(va), len);
                let (nb, gb) = b.unmap_full_walk(Iova::new(va), len);
                prop_assert_eq!(na, nb);
                prop_assert_eq!((ga.iova, ga.len), (gb.iova, gb.len));
                prop_assert_eq!(ga.freed_tables().len(), gb.freed_tables().len());
                a.release(ga);
                b.release(gb);
            }
        }
        drain(&mut a);
        drain(&mut b);
    }
    prop_assert_eq!(a.leaf_sizes(), b.leaf_sizes());
    for &s in probe_seed {
        let p = (u64::from(s) * 0x1000) % window;
        prop_assert_eq!(a.iova_to_phys(Iova::new(p)), b.iova_to_phys(Iova::new(p)));
    }
    Ok(())
}

proptest! {
    // Every case runs every format (34), so the case count is per format.
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    /// The single-leaf unmap fast path gives exactly the full walk's result,
    /// on every format.
    #[test]
    fn unmap_fast_path_equals_full_walk_on_every_format(
        ops in prop::collection::vec(op(), 1..40),
        probe_seed in prop::collection::vec(any::<u32>(), 32),
    ) {
        on_every_format(|fmt| fast_path_case(fmt, &ops, &probe_seed))?;
    }
}

#[test]
fn top_of_the_input_address_space_walks_correctly() {
    for fmt in all_formats() {
        let mut pt = PageTable::new(fmt).unwrap();
        let bm = pt.pgsize_bitmap();
        let top = if fmt.ias() >= 64 {
            u64::MAX
        } else {
            (1u64 << fmt.ias()) - 1
        };
        for size in [bm & bm.wrapping_neg(), 1u64 << (63 - bm.leading_zeros())] {
            if size > (1 << 40) {
                continue;
            }
            let iova = top - (size - 1);
            let pa = PhysAddr::new(size * 3);
            pt.map(Iova::new(iova), pa, size, Prot::READ | Prot::WRITE)
                .unwrap();
            let regs = pt.hw_regs();
            {
                let m = pt.mem().read().unwrap();
                let w = walker::walk(&regs, &m, Iova::new(top)).unwrap();
                assert_eq!(w.pa, PhysAddr::new(size * 4 - 1), "{}", fmt.name());
                assert_eq!(Some(w.pa), pt.iova_to_phys(Iova::new(top)));
                assert!(matches!(
                    walker::walk(&regs, &m, Iova::new(iova - 1)),
                    Err(Fault::NotPresent { .. })
                ));
            }
            let (n, g) = pt.unmap(Iova::new(iova), size);
            assert_eq!(n, size);
            pt.release(g);
        }
    }
}

/// The old way to unmap a range with holes: `unmap` stops at a hole or at a
/// start inside a leaf, so step a granule past it and go on.
fn unmap_stepping(pt: &mut PageTable<AnyFormat>, va: u64, len: u64) -> u64 {
    let g = pt.pgsize_bitmap() & pt.pgsize_bitmap().wrapping_neg();
    let (mut pos, end, mut done) = (va, va + len, 0);
    while pos < end {
        let (n, gather) = pt.unmap(Iova::new(pos), end - pos);
        pt.release(gather);
        done += n;
        pos += if n == 0 { g } else { n };
    }
    done
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]
    /// `unmap_sparse` (holes skipped by table level) removes exactly what
    /// stepping over the holes a granule at a time removes, on every format,
    /// and leaves a table the hardware walker agrees with.
    #[test]
    fn unmap_sparse_equals_stepping_over_holes_on_every_format(
        maps in prop::collection::vec((any::<u8>(), any::<u16>(), any::<u32>()), 1..24),
        unmaps in prop::collection::vec((any::<u16>(), 1u64..2048), 1..6),
        probe_seed in prop::collection::vec(any::<u32>(), 32),
    ) {
        on_every_format(|fmt| {
            let mut a = PageTable::new(fmt).unwrap();
            let mut b = PageTable::new(fmt).unwrap();
            let sizes = usable_sizes(&a);
            let g = sizes[0];
            // At most 4096 granules, so that the stepping reference stays cheap.
            let window = (sizes[sizes.len() / 2] * 4).min(g * 4096).min(1u64 << fmt.ias().min(63));
            for &(pick, slot, pa_slot) in &maps {
                let size = sizes[pick as usize % sizes.len()];
                let va = (u64::from(slot) * size) % window;
                let pa = (u64::from(pa_slot) * size) % (1u64 << 32);
                let ra = a.map(Iova::new(va), PhysAddr::new(pa), size, Prot::READ);
                let rb = b.map(Iova::new(va), PhysAddr::new(pa), size, Prot::READ);
                prop_assert_eq!(ra, rb);
            }
            drain(&mut a);
            drain(&mut b);
            for &(slot, pages) in &unmaps {
                let va = (u64::from(slot) * g) % window;
                let len = (pages * g).min(window - va);
                let (na, ga) = a.unmap_sparse(Iova::new(va), len);
                if na > 0 {
                    prop_assert!(ga.iova.raw() >= va && ga.len >= na, "{}: gather {:?}", fmt.name(), ga);
                }
                a.release(ga);
                let nb = unmap_stepping(&mut b, va, len);
                prop_assert_eq!(na, nb, "{}: unmap_sparse({:#x}, {:#x})", fmt.name(), va, len);
                prop_assert_eq!(a.leaf_sizes(), b.leaf_sizes(), "{}", fmt.name());
            }
            let probes: Vec<u64> = probe_seed.iter().map(|&s| (u64::from(s) * 0x1000) % window).collect();
            for &p in &probes {
                prop_assert_eq!(a.iova_to_phys(Iova::new(p)), b.iova_to_phys(Iova::new(p)), "{} at {:#x}", fmt.name(), p);
            }
            check(&a, &probes)
        })?;
    }
}
