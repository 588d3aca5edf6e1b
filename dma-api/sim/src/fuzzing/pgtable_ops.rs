//! `pgtable_ops`: every page-table format and page size against a model.
//!
//! The model is the set of mapped ranges (each map call one record); maps
//! that overlap a record must fail with `AddressInUse` and change nothing,
//! unmaps remove whole records. After every step the hardware walker (which
//! reads raw table memory) and the writer's `iova_to_phys` must both say
//! what the model says at every record's edges and at random addresses, with
//! the record's permissions; at the end, with everything unmapped, no leaf
//! is left.

use arbitrary::{Result, Unstructured};
use dma_iommu::pgtable::{
    AmdV1, AnyFormat, ArmLpae, ArmStage, Granule, PageTable, Prot, PtError, PtFormat, VtdSs,
};
use dma_iommu::walker::{self, Access, Fault};
use dma_iommu::{Iova, PhysAddr};

fn format(u: &mut Unstructured<'_>) -> Result<AnyFormat> {
    let f = match u.int_in_range(0..=3u8)? {
        0 => VtdSs::new(u.int_in_range(3..=5)?).map(AnyFormat::VtdSs),
        1 => AmdV1::new(*u.choose(&[1, 2, 3, 4, 6])?).map(AnyFormat::AmdV1),
        2 => AmdV1::new(*u.choose(&[3, 4])?).map(|f| AnyFormat::AmdV1(f.natural_sizes_only())),
        _ => {
            let stage = *u.choose(&[ArmStage::S1, ArmStage::S2])?;
            let g = *u.choose(&[Granule::G4K, Granule::G16K, Granule::G64K])?;
            let (ias, oas) = *u.choose(&[(32, 32), (40, 40), (42, 42), (48, 48)])?;
            ArmLpae::new(stage, g, ias, oas).map(AnyFormat::ArmLpae)
        }
    };
    Ok(f.expect("every listed configuration is valid"))
}

#[derive(Clone, Copy, Debug)]
struct Rec {
    va: u64,
    pa: u64,
    size: u64,
    write: bool,
}

/// Decodes a format and an operation sequence from `data` and checks it.
pub fn check(data: &[u8]) {
    let _ = run(&mut Unstructured::new(data));
}

fn probe(pt: &PageTable<AnyFormat>, recs: &[Rec], va: u64, name: &str) {
    let regs = pt.hw_regs();
    let mem = pt.mem().read().unwrap_or_else(|e| e.into_inner());
    let want = recs
        .iter()
        .find(|r| va >= r.va && va - r.va < r.size)
        .map(|r| (r.pa + (va - r.va), r.write));
    let hw = walker::translate(&regs, &*mem, Iova::new(va), Access::Read);
    let sw = pt.iova_to_phys(Iova::new(va));
    match want {
        Some((pa, write)) => {
            assert_eq!(hw, Ok(PhysAddr::new(pa)), "{name}: walker at {va:#x}");
            assert_eq!(sw, Some(PhysAddr::new(pa)), "{name}: writer at {va:#x}");
            let w = walker::translate(&regs, &*mem, Iova::new(va), Access::Write);
            assert_eq!(
                w.is_ok(),
                write,
                "{name}: write permission at {va:#x}: {w:?}"
            );
        }
        None => {
            assert!(
                matches!(
                    hw,
                    Err(Fault::NotPresent { .. }) | Err(Fault::AddressSize { .. })
                ),
                "{name}: walker reaches unmapped {va:#x}: {hw:?}"
            );
            assert_eq!(sw, None, "{name}: writer maps unmapped {va:#x}");
        }
    }
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let fmt = format(u)?;
    let mut pt = PageTable::new(fmt).expect("table");
    // Rendered once: the messages name the format.
    let name = fmt.name();
    let bm = pt.pgsize_bitmap() & ((1u64 << 31) - 1);
    let sizes: Vec<u64> = (0..31)
        .filter(|b| bm & (1 << b) != 0)
        .map(|b| 1u64 << b)
        .collect();
    let granule = sizes[0];
    let big = *sizes.last().unwrap_or(&granule);
    let window = (big * 4).min(1u64 << fmt.ias().min(63));
    let oa_lim = (1u64 << fmt.oas()).min(1 << 40);
    let mut recs: Vec<Rec> = Vec::new();
    let mut steps = 0;
    while !u.is_empty() && steps < 64 {
        steps += 1;
        if u.ratio(2, 3)? {
            // Map: a page size, possibly several granules of it.
            let size = *u.choose(&sizes)?;
            let len = if u.ratio(1, 3)? {
                size * u64::from(u.int_in_range(1..=3u8)?)
            } else {
                size
            };
            if len > window {
                continue;
            }
            // Aligned to the page size (an unaligned large range would be
            // thousands of granule leaves, slow and no new coverage), and
            // sometimes only to the granule.
            let align = if u.ratio(1, 4)? && len <= 16 * granule {
                granule
            } else {
                size
            };
            let va = (u64::from(u.arbitrary::<u16>()?) * align) % (window - len + 1);
            let va = va / align * align;
            let pa = (u64::from(u.arbitrary::<u32>()?) * size) % oa_lim;
            let pa = pa.min(oa_lim - len) / granule * granule;
            let write = u.arbitrary()?;
            let prot = if write {
                Prot::READ | Prot::WRITE
            } else {
                Prot::READ
            };
            let clash = recs.iter().any(|r| va < r.va + r.size && r.va < va + len);
            match pt.map(Iova::new(va), PhysAddr::new(pa), len, prot) {
                Ok(()) => {
                    assert!(
                        !clash,
                        "{}: map over a live mapping at {va:#x} succeeded",
                        name
                    );
                    recs.push(Rec {
                        va,
                        pa,
                        size: len,
                        write,
                    });
                }
                Err(PtError::AddressInUse { .. }) => {
                    assert!(
                        clash,
                        "{}: map of free {va:#x}+{len:#x} refused as in use",
                        name
                    )
                }
                Err(e) => panic!("{}: map {va:#x} -> {pa:#x} + {len:#x}: {e}", name),
            }
        } else if !recs.is_empty() {
            let i = usize::from(u.arbitrary::<u8>()?) % recs.len();
            let r = recs.swap_remove(i);
            let (n, g) = pt.unmap(Iova::new(r.va), r.size);
            assert_eq!(n, r.size, "{}: unmap of {r:x?}", name);
            pt.release(g);
        }
        while let Some(g) = pt.take_deferred() {
            pt.release(g);
        }
        let mut probes = Vec::new();
        for r in &recs {
            probes.extend([r.va, r.va + r.size - 1, r.va + r.size]);
            probes.extend(r.va.checked_sub(1));
        }
        for _ in 0..4 {
            probes.push(u64::from(u.arbitrary::<u32>()?) * 0x1000 % window);
        }
        for va in probes {
            probe(&pt, &recs, va, &name);
        }
    }
    for r in recs.drain(..) {
        let (n, g) = pt.unmap(Iova::new(r.va), r.size);
        assert_eq!(n, r.size);
        pt.release(g);
    }
    while let Some(g) = pt.take_deferred() {
        pt.release(g);
    }
    assert_eq!(
        pt.leaf_count(),
        0,
        "{}: leaves left after unmapping everything",
        name
    );
    Ok(())
}
