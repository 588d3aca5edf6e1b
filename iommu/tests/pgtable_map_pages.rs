//! The batched io-pgtable ops `map_pages` / `unmap_pages`
//! (drivers/iommu/io-pgtable-arm.c `arm_lpae_map_pages` /
//! `arm_lpae_unmap_pages`, generic_pt drivers/iommu/generic_pt/iommu_pt.h):
//! runs across leaf-table boundaries, the `mapped` out-parameter on success
//! and on `AddressInUse`, refusals that map nothing, partial unmaps, holes,
//! and equality with per-page `map` calls, checked through the hardware
//! walker reading the simulated RAM.

mod common;

use common::{all_formats, on_every_format};
use dma_iommu::pgtable::{AnyFormat, PageTable, Prot, PtError, PtFormat};
use dma_iommu::walker::walk;
use dma_iommu::{Iova, PhysAddr};
use proptest::prelude::*;

const RW: Prot = Prot::READ.union(Prot::WRITE);

/// What the hardware walker translates `iova` to, reading the RAM.
fn hw(pt: &PageTable<AnyFormat>, iova: u64) -> Option<u64> {
    let m = pt.mem().read().unwrap();
    walk(&pt.hw_regs(), &*m, Iova::new(iova))
        .ok()
        .map(|w| w.pa.raw())
}

/// Smallest page size, and the bytes one leaf table of it spans.
fn granule_and_span(fmt: &AnyFormat) -> (u64, u64) {
    let g = fmt.pgsize_bitmap() & fmt.pgsize_bitmap().wrapping_neg();
    let level = (0..=fmt.top_level())
        .find(|&l| fmt.item_lg2(l) == g.trailing_zeros())
        .unwrap();
    (g, 1u64 << (fmt.item_lg2(level) + fmt.index_bits(level)))
}

/// A base IOVA three granules before the end of a leaf table, inside the
/// format's input range.
fn near_boundary(fmt: &AnyFormat) -> (u64, u64) {
    let (g, span) = granule_and_span(fmt);
    let top = 1u64 << fmt.ias().min(63);
    let boundary = if span * 2 < top { span } else { span / 2 };
    (g, boundary.max(4 * g) - 3 * g)
}

#[test]
fn one_call_crosses_a_leaf_table_boundary() {
    for fmt in all_formats() {
        let (g, va) = near_boundary(&fmt);
        let pa = 0x10_0000 * g;
        if pa + 6 * g > 1u64 << fmt.oas() {
            continue;
        }
        let mut pt = PageTable::new(fmt).unwrap();
        let mut mapped = 0;
        pt.map_pages(Iova::new(va), PhysAddr::new(pa), g, 6, RW, &mut mapped)
            .unwrap_or_else(|e| panic!("{}: {e}", fmt.name()));
        assert_eq!(mapped, 6 * g, "{}", fmt.name());
        assert_eq!(pt.leaf_count(), 6, "{}", fmt.name());
        for i in 0..6 {
            assert_eq!(
                hw(&pt, va + i * g + 8),
                Some(pa + i * g + 8),
                "{}",
                fmt.name()
            );
        }
        assert_eq!(hw(&pt, va + 6 * g), None, "{}", fmt.name());
        let (n, gather) = pt.unmap_pages(Iova::new(va), g, 6);
        assert_eq!(n, 6 * g, "{}", fmt.name());
        pt.release(gather);
        assert_eq!(pt.leaf_count(), 0, "{}", fmt.name());
    }
}

#[test]
fn address_in_use_reports_what_was_mapped_and_keeps_it() {
    for fmt in all_formats() {
        let (g, va) = near_boundary(&fmt);
        let pa = 0x20_0000 * g;
        if pa + 8 * g > 1u64 << fmt.oas() {
            continue;
        }
        let mut pt = PageTable::new(fmt).unwrap();
        // Page 4 of the run (past the table boundary) is taken.
        pt.map(Iova::new(va + 4 * g), PhysAddr::new(0x1000 * g), g, RW)
            .unwrap();
        let mut mapped = 0;
        assert_eq!(
            pt.map_pages(Iova::new(va), PhysAddr::new(pa), g, 6, RW, &mut mapped),
            Err(PtError::AddressInUse {
                iova: Iova::new(va + 4 * g)
            }),
            "{}",
            fmt.name()
        );
        // Linux's contract: the pages before the collision stay mapped and
        // are reported, for the caller to unmap.
        assert_eq!(mapped, 4 * g, "{}", fmt.name());
        for i in 0..4 {
            assert_eq!(hw(&pt, va + i * g), Some(pa + i * g), "{}", fmt.name());
        }
        assert_eq!(hw(&pt, va + 4 * g), Some(0x1000 * g), "{}", fmt.name());
        assert_eq!(hw(&pt, va + 5 * g), None, "{}", fmt.name());
        let (n, gather) = pt.unmap_pages(Iova::new(va), g, mapped / g);
        assert_eq!(n, mapped, "{}", fmt.name());
        pt.release(gather);
        assert_eq!(pt.leaf_count(), 1, "{}", fmt.name());
    }
}

#[test]
fn refusals_map_nothing() {
    for fmt in all_formats() {
        let (g, _) = granule_and_span(&fmt);
        let bitmap = fmt.pgsize_bitmap();
        let mut pt = PageTable::new(fmt).unwrap();
        let mut mapped = 0;
        let va = Iova::new(16 * g);
        let pa = PhysAddr::new(32 * g);
        // A size the table does not have: the lowest bit above the granule
        // that is missing from the bitmap, or three granules.
        let missing = (g.trailing_zeros() + 1..fmt.ias().min(63))
            .map(|b| 1u64 << b)
            .find(|s| bitmap & s == 0)
            .unwrap_or(3 * g);
        assert_eq!(
            pt.map_pages(va, pa, missing, 1, RW, &mut mapped),
            Err(PtError::BadPageSize {
                iova: va,
                pgsize: missing,
                bitmap
            }),
            "{}",
            fmt.name()
        );
        assert_eq!(
            pt.map_pages(va, pa, 3 * g, 1, RW, &mut mapped),
            Err(PtError::BadPageSize {
                iova: va,
                pgsize: 3 * g,
                bitmap
            })
        );
        assert_eq!(
            pt.map_pages(va, pa, g, 0, RW, &mut mapped),
            Err(PtError::ZeroSize { iova: va })
        );
        assert_eq!(
            pt.map_pages(va, pa, g, 1, Prot::CACHE, &mut mapped),
            Err(PtError::NoAccess { iova: va })
        );
        let va1 = Iova::new(va.raw() + g);
        if let Some(big) = (g.trailing_zeros() + 1..63)
            .map(|b| 1u64 << b)
            .find(|s| bitmap & s != 0)
        {
            assert_eq!(
                pt.map_pages(va1, pa, big, 1, RW, &mut mapped),
                Err(PtError::Misaligned {
                    iova: va1,
                    paddr: pa,
                    size: big,
                    granule: big
                }),
                "{}",
                fmt.name()
            );
        }
        assert_eq!(mapped, 0, "{}", fmt.name());
        assert_eq!(pt.leaf_count(), 0, "{}", fmt.name());
        // unmap_pages refuses the same shapes with 0.
        assert_eq!(pt.unmap_pages(va, g, 0).0, 0);
        assert_eq!(pt.unmap_pages(va, 3 * g, 1).0, 0);
    }
}

#[test]
fn partial_unmap_holes_and_large_pages() {
    for fmt in all_formats() {
        let (g, va) = near_boundary(&fmt);
        let pa = 0x30_0000 * g;
        if pa + 8 * g > 1u64 << fmt.oas() {
            continue;
        }
        let mut pt = PageTable::new(fmt).unwrap();
        let mut mapped = 0;
        pt.map_pages(Iova::new(va), PhysAddr::new(pa), g, 8, RW, &mut mapped)
            .unwrap();
        // Partial unmap in the middle, across the table boundary.
        let (n, gather) = pt.unmap_pages(Iova::new(va + 2 * g), g, 3);
        assert_eq!(n, 3 * g, "{}", fmt.name());
        pt.release(gather);
        for i in 0..8 {
            let want = (!(2..5).contains(&i)).then_some(pa + i * g);
            assert_eq!(hw(&pt, va + i * g), want, "{} page {i}", fmt.name());
        }
        // A run over the hole stops there and reports what it removed.
        let (n, gather) = pt.unmap_pages(Iova::new(va), g, 8);
        assert_eq!(n, 2 * g, "{}", fmt.name());
        pt.release(gather);
        assert_eq!(hw(&pt, va), None);
        assert_eq!(hw(&pt, va + 5 * g), Some(pa + 5 * g));
    }
    // A granule-sized unmap inside a large page removes the whole page
    // (generic_pt), and says so.
    for fmt in all_formats() {
        let (g, _) = granule_and_span(&fmt);
        let Some(big) = (g.trailing_zeros() + 1..fmt.oas().min(40))
            .map(|b| 1u64 << b)
            .find(|s| fmt.pgsize_bitmap() & s != 0)
        else {
            continue;
        };
        if 4 * big > 1u64 << fmt.ias().min(63) || 4 * big > 1u64 << fmt.oas() {
            continue;
        }
        let mut pt = PageTable::new(fmt).unwrap();
        let mut mapped = 0;
        pt.map_pages(
            Iova::new(2 * big),
            PhysAddr::new(big),
            big,
            2,
            RW,
            &mut mapped,
        )
        .unwrap();
        assert_eq!(mapped, 2 * big);
        let (n, gather) = pt.unmap_pages(Iova::new(2 * big), g, 1);
        assert_eq!(n, big, "{}", fmt.name());
        pt.release(gather);
        assert_eq!(hw(&pt, 2 * big + g), None, "{}", fmt.name());
        assert_eq!(hw(&pt, 3 * big + g), Some(2 * big + g), "{}", fmt.name());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// `map_pages` builds exactly the table that one `map` call per page
    /// builds (same leaves, same walker translations), and `unmap_pages`
    /// empties it.
    #[test]
    fn map_pages_equals_per_page_maps(
        size_pick in 0usize..8,
        count in 1u64..40,
        va_pages in 0u64..2048,
        pa_pages in 0u64..2048,
    ) {
        on_every_format(|fmt| {
            let bitmap = fmt.pgsize_bitmap();
            let sizes: Vec<u64> = (0..64).map(|b| 1u64 << b).filter(|s| bitmap & s != 0).collect();
            let pgsize = sizes[size_pick % sizes.len().min(3)];
            let va = va_pages * pgsize;
            let pa = pa_pages * pgsize;
            let len = pgsize * count;
            if va + len > 1u64 << fmt.ias().min(63) || pa + len > 1u64 << fmt.oas() {
                return Ok(());
            }
            let mut a = PageTable::new(fmt).unwrap();
            let mut b = PageTable::new(fmt).unwrap();
            let mut mapped = 0;
            a.map_pages(Iova::new(va), PhysAddr::new(pa), pgsize, count, RW, &mut mapped)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(mapped, len);
            for i in 0..count {
                b.map(Iova::new(va + i * pgsize), PhysAddr::new(pa + i * pgsize), pgsize, RW)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            let leaves = |pt: &PageTable<AnyFormat>| {
                let mut v = Vec::new();
                pt.for_each_leaf(Iova::new(va), len, |i, p, s| v.push((i.raw(), p.raw(), s)));
                v
            };
            prop_assert_eq!(leaves(&a), leaves(&b));
            for probe in [va, va + len / 2, va + len - 8] {
                prop_assert_eq!(hw(&a, probe), Some(pa + (probe - va)));
                prop_assert_eq!(hw(&a, probe), hw(&b, probe));
            }
            let (n, gather) = a.unmap_pages(Iova::new(va), pgsize, count);
            prop_assert_eq!(n, len);
            a.release(gather);
            prop_assert_eq!(a.leaf_count(), 0);
            Ok(())
        })?;
    }
}

/// What two twin tables hold: every leaf, in order.
fn all_leaves(pt: &PageTable<AnyFormat>) -> Vec<(u64, u64, u32)> {
    let mut v = Vec::new();
    pt.for_each_leaf(Iova::ZERO, u64::MAX, |i, p, s| {
        v.push((i.raw(), p.raw(), s))
    });
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// `unmap_pages` clears runs of one-entry leaves a table at a time; its
    /// answer (bytes, gather, entries read, what stays mapped) is the full
    /// walk's, on twin tables holding runs broken by holes, larger and
    /// smaller pages, contiguous groups and tables.
    #[test]
    fn unmap_pages_leaf_runs_answer_as_the_full_walk(
        maps in prop::collection::vec((0usize..3, 0u64..48), 1..40),
        size_pick in 0usize..2,
        start in 0u64..24,
        count in 1u64..40,
    ) {
        on_every_format(|fmt| {
            let bitmap = fmt.pgsize_bitmap();
            let sizes: Vec<u64> = (0..31).map(|b| 1u64 << b).filter(|s| bitmap & s != 0).collect();
            let g = sizes[0];
            // The smallest page, the next size (a contiguous group or the
            // next level's page), the next level's page.
            let pick = |i: usize| sizes[i.min(sizes.len() - 1)];
            let mut a = PageTable::new(fmt).unwrap();
            let mut b = PageTable::new(fmt).unwrap();
            for &(s, slot) in &maps {
                let size = pick(s);
                let va = (slot * g) & !(size - 1);
                if va + size > 1u64 << fmt.ias().min(63) {
                    continue;
                }
                let ra = a.map(Iova::new(va), PhysAddr::new(va), size, RW);
                let rb = b.map(Iova::new(va), PhysAddr::new(va), size, RW);
                prop_assert_eq!(ra, rb);
            }
            common::drain(&mut a);
            common::drain(&mut b);
            let pgsize = pick(size_pick);
            let va = (start * g) & !(pgsize - 1);
            let len = pgsize * count;
            if va + len > 1u64 << fmt.ias().min(63) {
                return Ok(());
            }
            let (sa, sb) = (a.stats(), b.stats());
            let (na, ga) = a.unmap_pages(Iova::new(va), pgsize, count);
            let (nb, gb) = b.unmap_full_walk(Iova::new(va), len);
            prop_assert_eq!(na, nb);
            prop_assert_eq!((ga.iova, ga.len), (gb.iova, gb.len));
            prop_assert_eq!(ga.freed_tables().len(), gb.freed_tables().len());
            if count > 1 {
                // (One page may take the one-page path from the cache.)
                prop_assert_eq!(
                    a.stats().entries_visited - sa.entries_visited,
                    b.stats().entries_visited - sb.entries_visited
                );
            }
            a.release(ga);
            b.release(gb);
            prop_assert_eq!(all_leaves(&a), all_leaves(&b));
            for p in 0..64 {
                prop_assert_eq!(hw(&a, p * g), hw(&b, p * g));
            }
            Ok(())
        })?;
    }
}

/// A run of 2 MiB leaves ended by a hole: `unmap_pages` clears the run and
/// stops at the hole, reading each entry of the run once and the hole once.
#[test]
fn a_two_mib_run_stops_at_a_hole() {
    const M2: u64 = 2 << 20;
    let mut pt = PageTable::new(AnyFormat::VtdSs(dma_iommu::VtdSs::new(4).unwrap())).unwrap();
    let mut mapped = 0;
    pt.map_pages(Iova::new(0), PhysAddr::new(0), M2, 5, RW, &mut mapped)
        .unwrap();
    pt.map(Iova::new(6 * M2), PhysAddr::new(0), M2, RW).unwrap();
    let before = pt.stats();
    let (n, g) = pt.unmap_pages(Iova::new(0), M2, 7);
    assert_eq!(n, 5 * M2);
    pt.release(g);
    // Levels 3 and 2 once each, five leaves, the hole.
    assert_eq!(
        pt.stats().entries_visited - before.entries_visited,
        2 + 5 + 1
    );
    assert_eq!(hw(&pt, 4 * M2), None);
    assert_eq!(hw(&pt, 6 * M2 + 8), Some(8));
}
