//! Ports of the kernel's page-table self-tests:
//! - io-pgtable-arm-selftests.c `arm_lpae_run_tests` over every
//!   `arm_lpae_do_selftests` configuration;
//! - generic_pt kunit_iommu_pt.h `test_mixed`, `test_unmap_split`,
//!   `test_map_simple` and `test_map_table_to_oa` for every format.

mod common;

use common::{all_formats, drain};
use dma_iommu::pgtable::{ArmLpae, ArmStage, Granule, PageTable, Prot, PtError, PtFormat};
use dma_iommu::{Iova, PhysAddr};

const SZ_1G: u64 = 1 << 30;
const SZ_2G: u64 = 2 << 30;

fn iova(x: u64) -> Iova {
    Iova::new(x)
}
fn pa(x: u64) -> PhysAddr {
    PhysAddr::new(x)
}

fn sizes(bitmap: u64) -> impl Iterator<Item = u64> {
    (0..64)
        .filter(move |b| bitmap & (1u64 << b) != 0)
        .map(|b| 1u64 << b)
}

/// One `arm_lpae_run_tests(cfg)` for one stage.
fn arm_lpae_run_tests(stage: ArmStage, pgsize: u64, ias: u32, oas: u32) {
    let g = Granule::from_pgsize_bitmap(pgsize).unwrap();
    let fmt = ArmLpae::new(stage, g, ias, oas)
        .unwrap_or_else(|e| panic!("alloc {stage:?} {ias}/{oas}: {e}"));
    let mut pt = PageTable::new(fmt).unwrap();
    pt.restrict_pgsizes(pgsize).unwrap();
    let ctx = format!("{} pgsize {pgsize:#x}", fmt.name());

    // Initial sanity checks: empty tables translate nothing.
    for a in [42, SZ_1G + 42, SZ_2G + 42] {
        assert_eq!(pt.iova_to_phys(iova(a)), None, "{ctx}: empty {a:#x}");
    }

    // Distinct mappings of different granule sizes.
    let mut a = 0;
    for size in sizes(pgsize) {
        pt.map(
            iova(a),
            pa(a),
            size,
            Prot::READ | Prot::WRITE | Prot::NOEXEC | Prot::CACHE,
        )
        .unwrap();
        // Overlapping mappings.
        assert_eq!(
            pt.map(iova(a), pa(a + size), size, Prot::READ | Prot::NOEXEC),
            Err(PtError::AddressInUse { iova: iova(a) }),
            "{ctx}: overmap {a:#x}"
        );
        assert_eq!(pt.iova_to_phys(iova(a + 42)), Some(pa(a + 42)), "{ctx}");
        a += SZ_1G;
    }

    // Full unmap, then remap of the full block.
    let mut a = 0;
    for size in sizes(pgsize) {
        let (n, gather) = pt.unmap(iova(a), size);
        pt.release(gather);
        assert_eq!(n, size, "{ctx}: unmap {a:#x}");
        assert_eq!(pt.iova_to_phys(iova(a + 42)), None, "{ctx}");
        pt.map(iova(a), pa(a), size, Prot::WRITE).unwrap();
        assert_eq!(pt.iova_to_phys(iova(a + 42)), Some(pa(a + 42)), "{ctx}");
        a += SZ_1G;
    }

    // Partial unmap (the step older kernels ran with block splitting). With
    // generic_pt semantics, a range starting inside the block unmaps nothing
    // and a range starting at the block removes the whole block.
    let small = pgsize & pgsize.wrapping_neg();
    let block = sizes(pgsize).nth(1).unwrap();
    let (n, gth) = pt.unmap(iova(SZ_1G + small), small);
    pt.release(gth);
    assert_eq!(n, 0, "{ctx}: unmap inside a block");
    assert_eq!(
        pt.iova_to_phys(iova(SZ_1G + small + 42)),
        Some(pa(SZ_1G + small + 42))
    );
    let (n, gth) = pt.unmap(iova(SZ_1G), small);
    pt.release(gth);
    assert_eq!(n, block, "{ctx}: partial unmap removes the whole block");
    assert_eq!(pt.iova_to_phys(iova(SZ_1G + small + 42)), None);
    // Remap of partial unmap.
    pt.map(iova(SZ_1G + small), pa(small), small, Prot::READ)
        .unwrap();
    assert_eq!(
        pt.iova_to_phys(iova(SZ_1G + small + 42)),
        Some(pa(small + 42))
    );

    // Map/unmap the last largest supported page of the IAS (concatenated
    // start-level corner case).
    let size = 1u64 << (63 - pgsize.leading_zeros());
    let a = (1u64 << ias) - size;
    pt.map(
        iova(a),
        pa(a),
        size,
        Prot::READ | Prot::WRITE | Prot::NOEXEC | Prot::CACHE,
    )
    .unwrap();
    assert_eq!(pt.iova_to_phys(iova(a + size - 1)), Some(pa(a + size - 1)));
    let (n, gth) = pt.unmap(iova(a), size);
    pt.release(gth);
    assert_eq!(n, size, "{ctx}: last page of the IAS");
}

#[test]
fn arm_lpae_do_selftests() {
    let pgsizes = [
        (1u64 << 12) | (1 << 21) | (1 << 30),
        (1 << 14) | (1 << 25),
        (1 << 16) | (1 << 29),
    ];
    let address_size = [32u32, 36, 40, 42, 44, 48];
    let mut pass = 0;
    for &pgsize in &pgsizes {
        for j in 0..address_size.len() {
            // ias <= oas: ias > oas is not valid for stage 2.
            for k in 0..=j {
                for stage in [ArmStage::S1, ArmStage::S2] {
                    arm_lpae_run_tests(stage, pgsize, address_size[k], address_size[j]);
                    pass += 1;
                }
            }
        }
    }
    assert_eq!(pass, 3 * 21 * 2);
}

/// kunit `check_iova`, at a stride (every smallest page would be 800k walks).
fn check_iova<F: PtFormat>(pt: &PageTable<F>, va: u64, oa: u64, len: u64, stride: u64) {
    let mut off = 0;
    while off < len {
        assert_eq!(
            pt.iova_to_phys(iova(va + off)),
            Some(pa(oa + off)),
            "{} at {:#x}",
            pt.format().name(),
            va + off
        );
        off += stride;
    }
    assert_eq!(pt.iova_to_phys(iova(va + len - 1)), Some(pa(oa + len - 1)));
}

#[test]
fn generic_pt_test_mixed() {
    let start = 0x3fe400u64 << 12;
    let end = 0x4c0600u64 << 12;
    let len = end - start;
    let mut ran = 0;
    for fmt in all_formats() {
        let mut pt = PageTable::new(fmt).unwrap();
        let bm = pt.pgsize_bitmap();
        let genmask_30_21 = ((1u64 << 31) - 1) & !((1u64 << 21) - 1);
        if (1u64 << fmt.ias().min(63)) <= start || bm & genmask_30_21 != (1 << 30) | (1 << 21) {
            continue; // "range is too small" / "incompatible psize"
        }
        pt.map(iova(start), pa(start), len, Prot::READ | Prot::WRITE)
            .unwrap();
        // 14 2M, 3 1G, 3 2M
        assert_eq!(pt.leaf_count(), 20, "{}", fmt.name());
        let by_size = pt.leaf_sizes();
        assert_eq!(by_size.get(&21), Some(&17));
        assert_eq!(by_size.get(&30), Some(&3));
        check_iova(&pt, start, start, len, 1 << 16);
        ran += 1;
    }
    // vtdss x3, amdv1 natural x2, arm 4K (ias >= 40) s1/s2 x3 each
    assert_eq!(ran, 3 + 2 + 6);
}

#[test]
fn generic_pt_test_unmap_split() {
    for fmt in all_formats() {
        let mut pt = PageTable::new(fmt).unwrap();
        let bm = pt.pgsize_bitmap();
        let mut count = 0;
        for base_len in sizes(bm) {
            for next_len in sizes(bm).filter(|&s| s > base_len) {
                // Both mappings must fit the input and output address sizes.
                if next_len
                    .checked_mul(2)
                    .is_none_or(|x| x > (1u64 << fmt.ias().min(63)) || x > (1u64 << fmt.oas()))
                {
                    continue;
                }
                let name = fmt.name();
                pt.map(iova(0), pa(0), next_len, Prot::READ | Prot::WRITE)
                    .unwrap();
                let (n, g) = pt.unmap(iova(0), base_len);
                pt.release(g);
                assert_eq!(n, next_len, "{name}: {base_len:#x} of {next_len:#x}");

                // Make sure unmap doesn't keep going.
                pt.map(iova(0), pa(0), next_len, Prot::READ | Prot::WRITE)
                    .unwrap();
                pt.map(iova(next_len), pa(0), next_len, Prot::READ | Prot::WRITE)
                    .unwrap();
                let (n, g) = pt.unmap(iova(0), base_len);
                pt.release(g);
                assert_eq!(n, next_len, "{name}");
                assert_eq!(pt.iova_to_phys(iova(next_len)), Some(pa(0)));
                let (n, g) = pt.unmap(iova(next_len), next_len);
                pt.release(g);
                assert_eq!(n, next_len, "{name}");
                assert_eq!(pt.leaf_count(), 0);
                drain(&mut pt);
                count += 1;
            }
        }
        assert!(count > 0, "{} needs two page sizes", fmt.name());
    }
}

#[test]
fn generic_pt_test_map_simple() {
    for fmt in all_formats() {
        let mut pt = PageTable::new(fmt).unwrap();
        let bm = pt.pgsize_bitmap() & ((1u64 << 40) - 1); // keep the walk small
        let small = bm & bm.wrapping_neg();
        let test_oa = 0x1_0000_0000_0000u64 & ((1u64 << fmt.oas()) - 1);
        let mut cur = small * 256;
        let mut placed = Vec::new();
        for len in sizes(bm) {
            cur = cur.next_multiple_of(len);
            if cur
                .checked_add(len)
                .is_none_or(|e| e > (1u64 << fmt.ias().min(63)))
            {
                continue;
            }
            let oa = test_oa & !(len - 1);
            pt.map(iova(cur), pa(oa), len, Prot::READ | Prot::WRITE)
                .unwrap();
            assert_eq!(pt.iova_to_phys(iova(cur + len - 1)), Some(pa(oa + len - 1)));
            placed.push((cur, len));
            cur += len;
        }
        // Every page size was created exactly once.
        let by_size = pt.leaf_sizes();
        for &(_, len) in &placed {
            assert_eq!(
                by_size.get(&len.trailing_zeros()),
                Some(&1),
                "{}",
                fmt.name()
            );
        }
        assert_eq!(pt.leaf_count(), placed.len());
        for &(va, len) in &placed {
            let (n, g) = pt.unmap(iova(va), len);
            pt.release(g);
            assert_eq!(n, len);
        }
        assert_eq!(pt.leaf_count(), 0);
    }
}

#[test]
fn generic_pt_test_map_table_to_oa() {
    for fmt in all_formats() {
        let mut pt = PageTable::new(fmt).unwrap();
        let limited = pt.pgsize_bitmap() % (16u64 << 30);
        let max = 1u64 << (63 - limited.leading_zeros());
        if max
            .checked_mul(2)
            .is_none_or(|x| x > (1u64 << fmt.ias().min(63)))
        {
            continue;
        }
        let small = limited & limited.wrapping_neg();
        let cur = (small * 256).next_multiple_of(max);
        let frames0 = pt.table_frames();
        for len in sizes(limited) {
            if len < max / 4096 && len != small {
                continue; // keep the number of entries bounded
            }
            let oa = 0x4000_0000u64.next_multiple_of(max);
            let mut off = 0;
            while off != max {
                pt.map(iova(cur + off), pa(oa + off), len, Prot::READ | Prot::WRITE)
                    .unwrap();
                off += len;
                if len == small && off >= 64 * small && max / small > 4096 {
                    break;
                }
            }
            let mapped = off;
            check_iova(&pt, cur, oa, mapped, len.max(mapped / 64));
            assert_eq!(
                pt.leaf_sizes().get(&len.trailing_zeros()),
                Some(&((mapped / len) as usize))
            );
            let (n, g) = pt.unmap(iova(cur), mapped);
            pt.release(g);
            assert_eq!(n, mapped);
            assert_eq!(pt.leaf_count(), 0, "{}", fmt.name());
            drain(&mut pt);
        }
        // Large leaves replaced the empty tables left behind by small ones,
        // and the detached tables were released.
        assert!(
            pt.table_frames() <= frames0 + fmt.top_level() as usize + 1,
            "{}",
            fmt.name()
        );
    }
}

#[test]
fn map_rejects_bad_input_with_typed_errors() {
    let fmt = dma_iommu::VtdSs::new(3).unwrap();
    let mut pt = PageTable::new(fmt).unwrap();
    let rw = Prot::READ | Prot::WRITE;
    assert_eq!(
        pt.map(iova(0x1000), pa(0x1000), 0, rw),
        Err(PtError::ZeroSize { iova: iova(0x1000) })
    );
    assert_eq!(
        pt.map(iova(0x1800), pa(0x1000), 0x1000, rw),
        Err(PtError::Misaligned {
            iova: iova(0x1800),
            paddr: pa(0x1000),
            size: 0x1000,
            granule: 0x1000
        })
    );
    assert_eq!(
        pt.map(iova(1 << 39), pa(0), 0x1000, rw),
        Err(PtError::IovaOutOfRange {
            iova: iova(1 << 39),
            size: 0x1000,
            ias: 39
        })
    );
    assert_eq!(
        pt.map(iova(0), pa(1 << 52), 0x1000, rw),
        Err(PtError::PhysOutOfRange {
            paddr: pa(1 << 52),
            size: 0x1000,
            oas: 52
        })
    );
    assert_eq!(
        pt.map(iova(0), pa(0), 0x1000, Prot::CACHE),
        Err(PtError::NoAccess { iova: iova(0) })
    );
    // A failed multi-chunk map leaves nothing behind.
    pt.map(iova(0x20_3000), pa(0x3000), 0x1000, rw).unwrap();
    assert_eq!(
        pt.map(iova(0x1f_f000), pa(0x1f_f000), 0x40_0000, rw),
        Err(PtError::AddressInUse {
            iova: iova(0x20_0000)
        })
    );
    assert_eq!(pt.iova_to_phys(iova(0x1f_f000)), None);
    assert_eq!(pt.leaf_count(), 1);
    // Unmap of a hole unmaps nothing.
    let (n, g) = pt.unmap(iova(0x40_0000), 0x1000);
    assert_eq!(n, 0);
    assert!(g.is_empty());
}

#[test]
fn pt_errors_convert_to_dma_errors_naming_the_iova() {
    use dma_api::{DmaError, ErrorKind};
    let mut pt = PageTable::new(dma_iommu::VtdSs::new(3).unwrap()).unwrap();
    pt.map(iova(0x5000), pa(0x5000), 0x1000, Prot::READ)
        .unwrap();
    let e: DmaError = pt
        .map(iova(0x5000), pa(0x9000), 0x1000, Prot::READ)
        .unwrap_err()
        .into();
    assert_eq!(e, DmaError::IovaInUse { iova: iova(0x5000) });
    assert_eq!(e.kind(), ErrorKind::Invalid);
    let e: DmaError = pt
        .map(iova(0x5800), pa(0x9000), 0x1000, Prot::READ)
        .unwrap_err()
        .into();
    assert_eq!(
        e,
        DmaError::IovaRangeInvalid {
            iova: iova(0x5800),
            len: 0x1000
        }
    );
}
