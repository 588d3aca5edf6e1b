//! `iova_ops`: the IOVA allocator against the plain model of the kernel's
//! rules (drivers/iommu/iova.c) in `dma_iommu::iova::model`, the one the
//! allocator's own differential test uses: top-down from the limit, size
//! alignment to `roundup_pow_of_two(pages)` granules, reservations, free by
//! any address inside a range, and the `max32_alloc_size` failing-size memo.

use arbitrary::{Result, Unstructured};
use dma_api::{DmaError, Iova};
use dma_iommu::iova::model::IovaModel;
use dma_iommu::iova::IovaDomain;

const SHIFT: u32 = 12;
/// Everything from this frame to 4 GiB is reserved, so the 32-bit space is
/// small and the memo is exercised.
const TOP_FREE: u64 = 5000;
/// Steps per case: enough to fill the 32-bit space many times over (the
/// memo), few enough that a case stays cheap (the structural check is
/// linear in the allocations and reservations).
const MAX_STEPS: usize = 256;

fn limit(sel: u8) -> Iova {
    match sel % 5 {
        0 => Iova::new((256 << SHIFT) - 1),
        1 => Iova::new((1000 << SHIFT) - 1),
        2 => Iova::new((4096 << SHIFT) - 1),
        3 => Iova::new(0xffff_ffff),
        _ => Iova::new((4096 << SHIFT) + 0x7ff),
    }
}

/// Decodes an operation sequence (at most 256 steps) from `data`
/// and runs it against the model.
pub fn check(data: &[u8]) {
    let _ = run(&mut Unstructured::new(data));
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let start_pfn = u64::from(u.int_in_range(1..=64u8)?);
    let mut d = IovaDomain::new(1 << SHIFT, Iova::new(start_pfn << SHIFT)).expect("domain");
    let d32 = 1u64 << (32 - SHIFT);
    let mut m = IovaModel::new(start_pfn, SHIFT);
    d.reserve(Iova::new(TOP_FREE << SHIFT), Iova::new(0xffff_ffff))
        .expect("reserve");
    m.reserve(TOP_FREE, d32 - 1);
    let mut live: Vec<u64> = Vec::new();
    let mut steps = 0;
    while !u.is_empty() && steps < MAX_STEPS {
        steps += 1;
        // Did the step change the allocator (the structural checks below
        // run then; a refused call is compared with the model at once).
        let mut changed = false;
        match u.int_in_range(0..=11u8)? {
            0..=5 => {
                let pages = match u.int_in_range(0..=2u8)? {
                    0 => u64::from(u.int_in_range(1..=4u8)?),
                    1 => u64::from(u.int_in_range(1..=40u8)?),
                    _ => u64::from(u.int_in_range(1..=300u16)?),
                };
                let lim = limit(u.arbitrary()?);
                let aligned = u.arbitrary()?;
                let got = d.alloc(pages, lim, aligned);
                let want = m
                    .alloc(pages, ((lim.raw() + 1) >> SHIFT) - 1, aligned)
                    .expect("the model's memo refuses only what cannot fit");
                match (&got, want) {
                    (Ok(r), Some(p)) => {
                        assert_eq!(r.pfn_lo(), p, "alloc {pages} below {lim:?}");
                        assert_eq!(r.pages(), pages);
                        assert!(r.last() <= lim);
                        if aligned {
                            assert_eq!(r.pfn_lo() % pages.next_power_of_two(), 0);
                        }
                        live.push(p);
                        changed = true;
                    }
                    (Err(DmaError::IovaExhausted { pages: p, limit: l }), None) => {
                        assert_eq!((*p, *l), (pages, lim));
                    }
                    _ => panic!("alloc {pages} below {lim:?} aligned {aligned}: got {got:?}, model {want:?}"),
                }
                assert_eq!(d.max32_alloc_size(), m.max32());
                assert_eq!(d.max32_unaligned_alloc_size(), m.max32_unaligned());
            }
            6..=9 => {
                if live.is_empty() {
                    continue;
                }
                let pick = usize::from(u.arbitrary::<u8>()?) % live.len();
                let pfn = live.swap_remove(pick);
                let inside = u64::from(u.arbitrary::<u16>()?) & 0xfff;
                let r = d
                    .free(Iova::new((pfn << SHIFT) + inside))
                    .expect("free of a live range");
                assert_eq!(Some((r.pfn_lo(), r.pfn_hi())), m.free(pfn));
                changed = true;
            }
            10 => {
                let pfn = u64::from(u.int_in_range(0..=5000u16)?);
                let got = d.free(Iova::new(pfn << SHIFT));
                match m.free(pfn) {
                    None => assert_eq!(
                        got,
                        Err(DmaError::IovaNotAllocated {
                            iova: Iova::new(pfn << SHIFT)
                        })
                    ),
                    Some((lo, hi)) => {
                        let r = got.expect("free inside a live range");
                        assert_eq!((r.pfn_lo(), r.pfn_hi()), (lo, hi));
                        live.retain(|&p| p != lo);
                        changed = true;
                    }
                }
            }
            _ => {
                let lo = u64::from(u.int_in_range(0..=5000u16)?);
                let len = u64::from(u.int_in_range(1..=200u8)?);
                if d.reserve(Iova::new(lo << SHIFT), Iova::new(((lo + len) << SHIFT) - 1))
                    .is_ok()
                {
                    m.reserve(lo, lo + len - 1);
                }
                changed = true;
            }
        }
        // Every answer is compared with the model at once; the allocator's
        // internal structure (linear to check) after every change early in
        // a case, then every 16th step, and at the end.
        if changed && (steps <= 32 || steps % 16 == 0) {
            structure(&d, &m);
        }
    }
    structure(&d, &m);
    Ok(())
}

/// The allocator's own invariants hold, and it holds what the model holds:
/// as many allocations, none overlapping another.
fn structure(d: &IovaDomain, m: &IovaModel) {
    d.check_invariants().expect("allocator invariants");
    let mut all: Vec<(u64, u64)> = d
        .allocated_ranges()
        .iter()
        .map(|r| (r.pfn_lo(), r.pfn_hi()))
        .collect();
    assert_eq!(all.len(), m.live());
    all.sort_unstable();
    assert!(all.windows(2).all(|w| w[0].1 < w[1].0));
}
