//! Differential test: the O(log n) IOVA domain against the reference model
//! (`dma_iommu::iova::model`) that walks the used ranges top-down the way drivers/iommu/iova.c
//! `__alloc_and_insert_iova_range` does (started from the anchor, i.e.
//! without the cached-node hint), on random alloc / free / reserve sequences.

use dma_api::{DmaError, Iova};
use dma_iommu::iova::model::IovaModel;
use dma_iommu::iova::IovaDomain;
use proptest::prelude::*;

const SHIFT: u32 = 12;

#[derive(Clone, Debug)]
enum Op {
    Alloc {
        pages: u64,
        limit: u8,
        aligned: bool,
    },
    Free {
        pick: usize,
    },
    FreeUnknown {
        pfn: u64,
    },
    Reserve {
        lo: u64,
        len: u64,
    },
}

fn limit_of(sel: u8) -> Iova {
    match sel % 5 {
        0 => Iova::new((256 << SHIFT) - 1),
        1 => Iova::new((1000 << SHIFT) - 1),
        2 => Iova::new((4096 << SHIFT) - 1),
        3 => Iova::new(0xffff_ffff),
        _ => Iova::new((4096 << SHIFT) + 0x7ff), // a limit inside a granule
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (prop_oneof![1u64..=4, 1u64..=40, 1u64..=300], any::<u8>(), any::<bool>())
            .prop_map(|(pages, limit, aligned)| Op::Alloc { pages, limit, aligned }),
        4 => any::<usize>().prop_map(|pick| Op::Free { pick }),
        1 => (0u64..5000).prop_map(|pfn| Op::FreeUnknown { pfn }),
        1 => (0u64..5000, 1u64..200).prop_map(|(lo, len)| Op::Reserve { lo, len }),
    ]
}

fn run(start_pfn: u64, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut d = IovaDomain::new(1 << SHIFT, Iova::new(start_pfn << SHIFT)).unwrap();
    let mut m = IovaModel::new(start_pfn, SHIFT);
    // Make the 32-bit space small so that the memo is exercised: everything
    // from frame 5000 to 4 GiB is reserved in both.
    let top32 = (1u64 << (32 - SHIFT)) - 1;
    d.reserve(Iova::new(5000 << SHIFT), Iova::new(0xffff_ffff))
        .unwrap();
    m.reserve(5000, top32);
    let mut live: Vec<u64> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        match *op {
            Op::Alloc {
                pages,
                limit,
                aligned,
            } => {
                let lim = limit_of(limit);
                let got = d.alloc(pages, lim, aligned);
                let want = m.alloc(pages, ((lim.raw() + 1) >> SHIFT) - 1, aligned);
                let want = match want {
                    Ok(w) => w,
                    Err(e) => return Err(TestCaseError::fail(format!("model: {e:?}"))),
                };
                match (&got, want) {
                    (Ok(r), Some(p)) => {
                        prop_assert_eq!(r.pfn_lo(), p, "op {}: {:?}", i, op);
                        prop_assert_eq!(r.pages(), pages);
                        prop_assert!(r.last() <= lim, "range {:?} beyond limit {}", r, lim);
                        prop_assert!(r.start() != Iova::ZERO);
                        if aligned {
                            prop_assert_eq!(r.pfn_lo() % pages.next_power_of_two(), 0);
                        }
                        live.push(p);
                    }
                    (Err(DmaError::IovaExhausted { pages: p, limit: l }), None) => {
                        prop_assert_eq!(*p, pages);
                        prop_assert_eq!(*l, lim);
                    }
                    _ => prop_assert!(false, "op {}: {:?}: got {:?}, model {:?}", i, op, got, want),
                }
                prop_assert_eq!(d.max32_alloc_size(), m.max32(), "memo after op {}", i);
                prop_assert_eq!(
                    d.max32_unaligned_alloc_size(),
                    m.max32_unaligned(),
                    "unaligned memo after op {}",
                    i
                );
            }
            Op::Free { pick } => {
                if live.is_empty() {
                    continue;
                }
                let pfn = live.swap_remove(pick % live.len());
                // Free by an address inside the range, as free_iova allows.
                let r = d.free(Iova::new((pfn << SHIFT) + 0x123)).unwrap();
                let (lo, hi) = m.free(pfn).unwrap();
                prop_assert_eq!((r.pfn_lo(), r.pfn_hi()), (lo, hi));
            }
            Op::FreeUnknown { pfn } => {
                let got = d.free(Iova::new(pfn << SHIFT));
                match m.free(pfn) {
                    None => prop_assert_eq!(
                        got,
                        Err(DmaError::IovaNotAllocated {
                            iova: Iova::new(pfn << SHIFT)
                        })
                    ),
                    Some((lo, hi)) => {
                        let r = got.unwrap();
                        prop_assert_eq!((r.pfn_lo(), r.pfn_hi()), (lo, hi));
                        live.retain(|&p| p != lo);
                    }
                }
            }
            Op::Reserve { lo, len } => {
                d.reserve(Iova::new(lo << SHIFT), Iova::new(((lo + len) << SHIFT) - 1))
                    .unwrap();
                m.reserve(lo, lo + len - 1);
            }
        }
        if let Err(e) = d.check_invariants() {
            prop_assert!(false, "invariant broken after op {}: {}", i, e);
        }
    }
    // Reserved frames are never handed out.
    for r in d.allocated_ranges() {
        for &(rl, rh) in m.reserved() {
            let overlaps = r.pfn_lo() <= rh && rl <= r.pfn_hi();
            // Only reservations made *after* the allocation may overlap it.
            if overlaps {
                prop_assert!(m.holds(r.pfn_lo()), "allocated {:?} is not in the model", r);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES overrides, for long runs.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300),
        ..ProptestConfig::default()
    })]

    #[test]
    fn matches_kernel_top_down_walk(start_pfn in 0u64..4, ops in prop::collection::vec(op(), 1..250)) {
        run(start_pfn, &ops)?;
    }
}

#[test]
fn fragmented_space_with_padding_gaps() {
    // A deterministic long sequence that leaves alignment padding everywhere.
    let ops: Vec<Op> = (0..3000u64)
        .map(|i| match i % 7 {
            0 | 3 => Op::Alloc {
                pages: 1 + i % 5,
                limit: (i % 3) as u8,
                aligned: true,
            },
            1 | 4 => Op::Alloc {
                pages: 1 + i % 3,
                limit: 2,
                aligned: i % 2 == 0,
            },
            2 => Op::Free {
                pick: (i * 7919) as usize,
            },
            5 => Op::Free {
                pick: (i * 104729) as usize,
            },
            _ => Op::Alloc {
                pages: 8,
                limit: 4,
                aligned: true,
            },
        })
        .collect();
    run(1, &ops).unwrap();
}
