//! Property tests: whatever the pfn runs, offset, size and max_segment, the
//! CPU view covers exactly the requested bytes of the pages, in order.

use proptest::prelude::*;
use scatterlist::{PageSource, Pfn, PhysAddr, ProviderId, SegKind, SgTable, PAGE_SIZE};

const P: u64 = PAGE_SIZE;

/// Coalesces touching byte ranges.
fn coalesce(v: impl IntoIterator<Item = (u64, u64)>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = vec![];
    for (s, l) in v {
        match out.last_mut() {
            Some((ps, pl)) if *ps + *pl == s => *pl += l,
            _ => out.push((s, l)),
        }
    }
    out
}

/// The bytes `[offset, offset + size)` of the pages, as ranges.
fn expected(pfns: &[Pfn], offset: u64, size: u64) -> Vec<(u64, u64)> {
    let mut left = size;
    let mut off = offset;
    let mut v = vec![];
    for p in pfns {
        if left == 0 {
            break;
        }
        let take = (P - off).min(left);
        v.push((p.raw() * P + off, take));
        left -= take;
        off = 0;
    }
    coalesce(v)
}

/// Linux's chunk count (the `seg_len` loop of `sg_alloc_append_table_from_pages`).
fn kernel_chunks(pages: &[(Pfn, SegKind)], max_seg: u64) -> usize {
    let mut chunks = 1;
    let mut seg_len = 0;
    for i in 1..pages.len() {
        seg_len += P;
        let mergeable =
            pages[i].0.raw() == pages[i - 1].0.raw() + 1 && pages[i].1 == pages[i - 1].1;
        if seg_len >= max_seg || !mergeable {
            chunks += 1;
            seg_len = 0;
        }
    }
    chunks
}

fn runs_strategy() -> impl Strategy<Value = Vec<(u64, u64, u8)>> {
    prop::collection::vec((0u64..1 << 30, 1u64..40, 0u8..3), 1..40)
}

fn kind_of(k: u8) -> SegKind {
    match k {
        0 => SegKind::Ram,
        n => SegKind::PeerBar(ProviderId::new(u32::from(n))),
    }
}

proptest! {
    #[test]
    fn cpu_view_covers_requested_bytes(
        runs in runs_strategy(),
        offset in 0u64..P,
        size_frac in 0.0f64..1.0,
        max_pages in 1u64..80,
        max_extra in 0u64..P,
    ) {
        let pages: Vec<(Pfn, SegKind)> = runs
            .iter()
            .flat_map(|&(s, l, k)| (s..s + l).map(move |p| (Pfn::new(p), kind_of(k))))
            .collect();
        let pfns: Vec<Pfn> = pages.iter().map(|p| p.0).collect();
        let covered = pages.len() as u64 * P - offset;
        let size = 1 + ((covered - 1) as f64 * size_frac) as u64;
        let max_seg = max_pages * P + max_extra;
        let t = SgTable::from_pages_kinds(&pages, offset, size, max_seg).unwrap();

        let got = coalesce(t.iter().map(|e| (e.phys().raw(), u64::from(e.len()))));
        prop_assert_eq!(got, expected(&pfns, offset, size));
        prop_assert_eq!(t.total_len(), size);
        prop_assert!(t.iter().all(|e| u64::from(e.len()) <= max_pages * P && !e.is_empty()));
        prop_assert_eq!(t.alloc_nents(), t.orig_nents());
        prop_assert_eq!(t.nents(), t.orig_nents());
        // Entry count equals Linux's on the pages actually used.
        let used = (offset + size).div_ceil(P) as usize;
        prop_assert_eq!(t.orig_nents(), kernel_chunks(&pages[..used], max_pages * P));
        // Each entry has the kind of every page it covers.
        for e in t.iter() {
            let first = e.phys().raw() / P;
            let last = (e.phys().raw() + u64::from(e.len()) - 1) / P;
            for pfn in first..=last {
                prop_assert!(pages[..used].iter().any(|&(p, k)| p.raw() == pfn && k == e.kind()));
            }
        }
        // RAM-only fast path agrees with the generic path on the same pfns.
        let ram = SgTable::from_pages(&pfns, offset, size, max_seg).unwrap();
        let ram_generic: Vec<(Pfn, SegKind)> = pfns.iter().map(|&p| (p, SegKind::Ram)).collect();
        prop_assert_eq!(&ram, &SgTable::from_pages_kinds(&ram_generic, offset, size, max_seg).unwrap());
        prop_assert_eq!(ram.sg_nents(), ram.orig_nents());
    }

    #[test]
    fn ranges_match_pages_for_one_run(
        start in 0u64..1 << 40,
        offset in 0u64..P,
        size in 1u64..200 * P,
        max_pages in 1u64..64,
    ) {
        let n = (offset + size).div_ceil(P);
        let pfns: Vec<Pfn> = (start..start + n).map(Pfn::new).collect();
        let p = SgTable::from_pages(&pfns, offset, size, max_pages * P).unwrap();
        let r = SgTable::from_ranges(&[(PhysAddr::new(start * P + offset), size)], SegKind::Ram, max_pages * P).unwrap();
        prop_assert_eq!(p, r);
    }

    #[test]
    fn split_pieces_concatenate_to_the_input(
        runs in runs_strategy(),
        skip_frac in 0.0f64..0.5,
        cuts in prop::collection::vec(1u64..3 * P, 1..6),
    ) {
        let pfns: Vec<Pfn> = runs.iter().flat_map(|&(s, l, _)| (s..s + l).map(Pfn::new)).collect();
        let size = pfns.len() as u64 * P;
        let t = SgTable::from_pages(&pfns, 0, size, u64::MAX).unwrap();
        let skip = (size as f64 * skip_frac) as u64;
        let total: u64 = cuts.iter().sum();
        match t.split(skip, &cuts) {
            Ok(parts) => {
                prop_assert!(skip + total <= size);
                let got = coalesce(parts.iter().flat_map(|p| p.iter().map(|e| (e.phys().raw(), u64::from(e.len())))));
                let all = expected(&pfns, 0, size);
                // The expected bytes: the input stream from skip for total bytes.
                let mut want = vec![];
                let (mut pos, mut s, mut l) = (0u64, skip, total);
                for (a, len) in all {
                    if l == 0 { break; }
                    if pos + len <= s { pos += len; continue; }
                    let from = s.saturating_sub(pos);
                    let take = (len - from).min(l);
                    want.push((a + from, take));
                    l -= take; s = pos + len; pos += len;
                }
                prop_assert_eq!(got, coalesce(want));
                for (p, c) in parts.iter().zip(&cuts) {
                    prop_assert_eq!(p.total_len(), *c);
                }
            }
            Err(_) => prop_assert!(skip + total > size),
        }
    }

    /// Long RAM inputs (several 1024-pair superblocks of the fast scan, runs
    /// up to 300 pages, some touching): the one-pass build over the fast scan
    /// equals the build over the generic scan, entry for entry and slot for
    /// slot, and the run starts are exactly the non-mergeable pages.
    #[test]
    fn long_ram_fast_scan_matches_generic(
        runs in prop::collection::vec((0u64..1 << 40, 1u64..300, any::<bool>()), 1..40),
        offset in 0u64..P,
        size_frac in 0.0f64..1.0,
        max_pages in prop::sample::select(vec![1u64, 7, 64, 1 << 20]),
    ) {
        let mut pfns: Vec<Pfn> = vec![];
        for &(s, l, touch) in &runs {
            // `touch`: continue right after the previous run (merges with it).
            let s = match (touch, pfns.last()) {
                (true, Some(p)) => p.raw() + 1,
                _ => s,
            };
            pfns.extend((s..s + l).map(Pfn::new));
        }
        let covered = pfns.len() as u64 * P - offset;
        let size = 1 + ((covered - 1) as f64 * size_frac) as u64;
        let generic: Vec<(Pfn, SegKind)> = pfns.iter().map(|&p| (p, SegKind::Ram)).collect();
        let fast = SgTable::from_pages(&pfns, offset, size, max_pages * P).unwrap();
        let slow = SgTable::from_pages_kinds(&generic, offset, size, max_pages * P).unwrap();
        prop_assert_eq!(&fast, &slow);
        prop_assert_eq!(fast.total_len(), size);
        let used = (offset + size).div_ceil(P) as usize;
        prop_assert_eq!(fast.orig_nents(), kernel_chunks(&generic[..used], max_pages * P));
        let mut starts = vec![];
        pfns[..].run_starts(0, pfns.len(), |i, _| starts.push(i));
        let want: Vec<usize> = (0..pfns.len())
            .filter(|&i| i == 0 || pfns[i].raw() != pfns[i - 1].raw().wrapping_add(1))
            .collect();
        prop_assert_eq!(starts, want);
    }
}
