//! The test table of Linux `tools/testing/scatterlist/main.c`, ported as data:
//! (expected error, pfns, pfns appended afterwards, size, max_segment,
//! expected nents). The allocation counts (`total_nents`) are added from the
//! rules of `get_next_sg` (for a one-shot build Linux `WARN_ON`s unless they
//! equal `orig_nents`).

use scatterlist::{Pfn, SgAppendTable, SgError, SgTable, PAGE_SIZE};

const P: u64 = PAGE_SIZE;
const SGMAX: u64 = u32::MAX as u64;

struct Case {
    err: bool,
    pfn: &'static [u64],
    pfn_app: Option<&'static [u64]>,
    size: u64,
    max_seg: u64,
    nents: usize,
    alloc_nents: usize,
}

const fn c(
    err: bool,
    pfn: &'static [u64],
    pfn_app: Option<&'static [u64]>,
    size: u64,
    max_seg: u64,
    nents: usize,
    alloc_nents: usize,
) -> Case {
    Case {
        err,
        pfn,
        pfn_app,
        size,
        max_seg,
        nents,
        alloc_nents,
    }
}

const CASES: &[Case] = &[
    c(true, &[0], None, P, 0, 1, 0),
    c(false, &[0], None, P, P + 1, 1, 1),
    c(false, &[0], None, P, SGMAX, 1, 1),
    c(false, &[0], None, 1, SGMAX, 1, 1),
    c(false, &[0, 1], None, 2 * P, SGMAX, 1, 1),
    c(false, &[1, 0], None, 2 * P, SGMAX, 2, 2),
    c(false, &[0, 1, 2], None, 3 * P, SGMAX, 1, 1),
    c(false, &[0, 1, 2], None, 3 * P, SGMAX, 1, 1),
    c(false, &[0, 1, 2], Some(&[3, 4, 5]), 3 * P, SGMAX, 1, 4),
    c(false, &[0, 1, 2], Some(&[4, 5, 6]), 3 * P, SGMAX, 2, 4),
    c(false, &[0, 2, 1], None, 3 * P, SGMAX, 3, 3),
    c(false, &[0, 1, 3], None, 3 * P, SGMAX, 2, 2),
    c(false, &[1, 2, 4], None, 3 * P, SGMAX, 2, 2),
    c(false, &[1, 3, 4], None, 3 * P, SGMAX, 2, 2),
    c(false, &[0, 1, 3, 4], None, 4 * P, SGMAX, 2, 2),
    c(false, &[0, 1, 3, 4, 5], None, 5 * P, SGMAX, 2, 2),
    c(false, &[0, 1, 3, 4, 6], None, 5 * P, SGMAX, 3, 3),
    c(false, &[0, 1, 2, 3, 4], None, 5 * P, SGMAX, 1, 1),
    c(false, &[0, 1, 2, 3, 4], None, 5 * P, 2 * P, 3, 3),
    c(false, &[0, 1, 2, 3, 4, 5], None, 6 * P, 2 * P, 3, 3),
    c(false, &[0, 2, 3, 4, 5, 6], None, 6 * P, 2 * P, 4, 4),
    c(
        false,
        &[0, 1, 3, 4, 5, 6],
        Some(&[7, 8, 9, 10, 11, 12]),
        6 * P,
        12 * P,
        2,
        8,
    ),
];

fn pfns(v: &[u64]) -> Vec<Pfn> {
    // The kernel harness uses page pointers (1 + pfn) * PAGE_SIZE.
    v.iter().map(|&p| Pfn::new(p + 1)).collect()
}

#[test]
fn kernel_table() {
    for (i, t) in CASES.iter().enumerate() {
        let pages = pfns(t.pfn);
        match t.pfn_app {
            None => {
                let r = SgTable::from_pages(&pages, 0, t.size, t.max_seg);
                if t.err {
                    assert_eq!(
                        r,
                        Err(SgError::MaxSegmentTooSmall {
                            max_segment: t.max_seg
                        }),
                        "case {i}"
                    );
                    continue;
                }
                let st = r.unwrap_or_else(|e| panic!("case {i}: {e}"));
                assert_eq!(st.nents(), t.nents, "case {i} nents");
                assert_eq!(st.orig_nents(), t.nents, "case {i} orig_nents");
                assert_eq!(st.alloc_nents(), t.alloc_nents, "case {i} alloc");
                assert_eq!(st.total_len(), t.size, "case {i} bytes");
                assert_eq!(st.sg_nents(), t.nents, "case {i} sg_nents");
            }
            Some(app) => {
                let mut a = SgAppendTable::new();
                a.append_pages(&pages, 0, t.size, t.max_seg, pages.len())
                    .unwrap_or_else(|e| panic!("case {i}: {e}"));
                a.append_pages(&pfns(app), 0, t.size, t.max_seg, 0)
                    .unwrap_or_else(|e| panic!("case {i}: {e}"));
                assert_eq!(a.nents(), t.nents, "case {i} nents");
                assert_eq!(a.total_nents(), t.alloc_nents, "case {i} alloc");
                let st = a.into_table();
                assert_eq!(st.total_len(), 2 * t.size, "case {i} bytes");
                assert_eq!(st.orig_nents(), t.nents);
            }
        }
    }
}

/// The entries of a few kernel cases, byte for byte.
#[test]
fn kernel_cases_entry_contents() {
    let st = SgTable::from_pages(&pfns(&[0, 1, 2, 3, 4]), 0, 5 * P, 2 * P).unwrap();
    let got: Vec<(u64, u32)> = st.iter().map(|e| (e.phys().raw(), e.len())).collect();
    assert_eq!(
        got,
        vec![(P, 2 * P as u32), (3 * P, 2 * P as u32), (5 * P, P as u32)]
    );

    let st = SgTable::from_pages(&pfns(&[0]), 0, 1, SGMAX).unwrap();
    let e = st.iter().next().unwrap();
    assert_eq!((e.phys().raw(), e.len(), e.is_end()), (P, 1, true));

    // Appended continuation grows the first entry to 10 pages.
    let mut a = SgAppendTable::new();
    a.append_pages(&pfns(&[0, 1, 3, 4, 5, 6]), 0, 6 * P, 12 * P, 6)
        .unwrap();
    a.append_pages(&pfns(&[7, 8, 9, 10, 11, 12]), 0, 6 * P, 12 * P, 0)
        .unwrap();
    let st = a.into_table();
    let got: Vec<(u64, u32)> = st.iter().map(|e| (e.phys().raw(), e.len())).collect();
    assert_eq!(got, vec![(P, 2 * P as u32), (4 * P, 10 * P as u32)]);
}
