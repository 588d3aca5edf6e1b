//! Run-boundary edges of the fast RAM page scan (`[Pfn]::run_starts`, groups of
//! 8 neighbour pairs, blocks of 64, superblocks of 512): breaks at the first and
//! last position of a group, block and superblock, runs crossing those edges,
//! tails of every length, all-contiguous and all-scattered input, and
//! `max_segment` cuts inside a group. Each table is compared with Linux's
//! page-by-page loop (`sg_alloc_append_table_from_pages`, `lib/scatterlist.c`)
//! and with the generic scan of the same pages given as `(Pfn, SegKind)`.

use scatterlist::{PageSource, Pfn, SegKind, SgTable, PAGE_SIZE};

const P: u64 = PAGE_SIZE;

/// Linux's loop: a new entry starts at a page that does not continue the
/// previous one, or once the current entry holds `max_segment` bytes.
fn kernel_entries(pfns: &[Pfn], max_segment: u64) -> Vec<(u64, u64)> {
    let ms = max_segment & !(P - 1);
    let mut out: Vec<(u64, u64)> = vec![];
    for (i, p) in pfns.iter().enumerate() {
        let contiguous = i > 0 && p.raw() == pfns[i - 1].raw() + 1;
        match out.last_mut() {
            Some((_, len)) if contiguous && *len < ms => *len += P,
            _ => out.push((p.raw() * P, P)),
        }
    }
    out
}

/// Pfns from a list of run lengths; runs never touch (a gap of 2 frames).
fn from_runs(lens: &[usize]) -> Vec<Pfn> {
    let mut v = vec![];
    let mut next = 0x4_0000u64;
    for &l in lens {
        v.extend((next..next + l as u64).map(Pfn::new));
        next += l as u64 + 2;
    }
    v
}

/// Builds the table three ways and checks they agree entry for entry, and that
/// the fast scan reports exactly the generic scan's run starts.
fn check(pfns: &[Pfn], max_segment: u64, what: &str) {
    let size = pfns.len() as u64 * P;
    let t = SgTable::from_pages(pfns, 0, size, max_segment).expect("valid pages build");
    let got: Vec<(u64, u64)> = t
        .iter()
        .map(|e| (e.phys().raw(), u64::from(e.len())))
        .collect();
    assert_eq!(
        got,
        kernel_entries(pfns, max_segment),
        "{what}, ms {max_segment:#x}"
    );
    assert_eq!(t.total_len(), size, "{what}");

    let kinds: Vec<(Pfn, SegKind)> = pfns.iter().map(|&p| (p, SegKind::Ram)).collect();
    let mut fast = vec![];
    let mut slow = vec![];
    pfns.run_starts(0, pfns.len(), |i, p| fast.push((i, p)));
    kinds[..].run_starts(0, kinds.len(), |i, p| slow.push((i, p)));
    assert_eq!(fast, slow, "{what}");
}

fn check_all_ms(pfns: &[Pfn], what: &str) {
    for ms in [u64::MAX, 16 * P, 8 * P, 5 * P, 3 * P, P] {
        check(pfns, ms, what);
    }
}

#[test]
fn breaks_at_every_group_block_and_superblock_edge() {
    // Page i starts a run for each listed i: the pair (i - 1, i) is pair
    // i - 1 of the scan, so page 1 is group position 0 and page 8 position 7.
    for edge in [
        1usize, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65, 511, 512, 513, 1023, 1024, 1025,
    ] {
        let n = 1100;
        let lens = [edge, n - edge];
        check_all_ms(&from_runs(&lens), &format!("one break at page {edge}"));
    }
    // Breaks at positions 0 and 7 of every group (runs of 1 and 7 alternating,
    // so both edges of each 8-pair group break), over several superblocks.
    let lens: Vec<usize> = (0..300).map(|i| if i % 2 == 0 { 1 } else { 7 }).collect();
    check_all_ms(&from_runs(&lens), "breaks at group positions 0 and 7");
    // Breaks at positions 0 and 15 of 16-pair chunks.
    let lens: Vec<usize> = (0..200).map(|i| if i % 2 == 0 { 1 } else { 15 }).collect();
    check_all_ms(&from_runs(&lens), "breaks at chunk positions 0 and 15");
}

#[test]
fn runs_crossing_group_block_and_superblock_edges() {
    // Runs of lengths coprime to 8 and 64 straddle every kind of edge.
    for run in [3usize, 13, 63, 65, 127, 129, 511, 513, 700] {
        let lens = vec![run; 3000 / run + 2];
        check_all_ms(&from_runs(&lens), &format!("runs of {run}"));
    }
}

#[test]
fn all_contiguous_and_all_scattered() {
    for n in [1usize, 2, 8, 9, 63, 64, 65, 512, 513, 1025, 4097] {
        let contiguous: Vec<Pfn> = (0..n as u64).map(|i| Pfn::new(0x9000 + i)).collect();
        check_all_ms(&contiguous, &format!("{n} contiguous"));
        let scattered: Vec<Pfn> = (0..n as u64).map(|i| Pfn::new(0x9000 + 3 * i)).collect();
        check(&scattered, u64::MAX, &format!("{n} scattered"));
        // Descending frames touch no neighbour either.
        let descending: Vec<Pfn> = (0..n as u64).rev().map(|i| Pfn::new(0x9000 + i)).collect();
        check(&descending, u64::MAX, &format!("{n} descending"));
    }
}

#[test]
fn tails_of_every_length() {
    // 512 pairs per superblock, then a tail of 0..=64 pairs after whole
    // blocks: the scan's block and pair-by-pair tails.
    for tail in 0..=65usize {
        let n = 1 + 512 + 64 + tail;
        let lens: Vec<usize> = [5usize, 40, 1, 33]
            .iter()
            .cycle()
            .scan(0, |sum, &l| {
                (*sum < n).then(|| {
                    let l = l.min(n - *sum);
                    *sum += l;
                    l
                })
            })
            .collect();
        check_all_ms(&from_runs(&lens), &format!("tail {tail}"));
    }
}

#[test]
fn max_segment_cuts_inside_a_group() {
    // One 100-page run cut every 3 or 5 pages: cuts fall at every position of
    // an 8-pair group, and a real break follows right after a cut.
    for ms in [3 * P, 5 * P, 7 * P] {
        let lens = [100usize, 6, 100, 1, 1, 30];
        check(&from_runs(&lens), ms, "cuts inside groups");
    }
}

#[test]
fn near_misses_are_breaks() {
    // A neighbour off by 2, by -1, by 2^32 or equal is a break; the fast scan
    // must not confuse them with +1 (including a low word that wraps).
    let base = 0x1_0000_0000u64 - 4;
    for bad in [2u64, 0, u64::MAX, 1 + (1 << 32), 1u64.wrapping_sub(1 << 32)] {
        for at in [1usize, 4, 8, 9, 64, 300, 511, 512] {
            let mut raw: Vec<u64> = (0..600).map(|i| base + i).collect();
            // Page `at` is `bad` past page `at - 1`; later pages follow it.
            let shift = bad.wrapping_sub(1);
            for v in raw.iter_mut().skip(at) {
                *v = v.wrapping_add(shift);
            }
            if raw.iter().any(|&p| p > u64::MAX >> 12) {
                continue;
            }
            let pfns: Vec<Pfn> = raw.into_iter().map(Pfn::new).collect();
            check(&pfns, u64::MAX, &format!("step {bad:#x} at {at}"));
        }
    }
}
