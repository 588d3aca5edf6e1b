//! `sg_append`: scatterlist appends, chains and splits against a model.
//!
//! The model of a table is the byte stream it describes: (physical address,
//! kind) of every byte in order, kept as merged runs. Appending the pages in
//! pieces must give exactly the table built in one go (Linux
//! `sg_alloc_append_table_from_pages` merges into the last entry as the
//! one-shot builder does), with no entry above `max_segment`; chaining two
//! tables describes the two streams one after the other; a split describes
//! the requested slices of the stream.

use arbitrary::{Result, Unstructured};
use scatterlist::{Pfn, ProviderId, SegKind, SgAppendTable, SgTable, PAGE_SIZE};

/// Runs of `(phys, len, kind)` merged where contiguous.
fn stream(t: &SgTable) -> Vec<(u64, u64, SegKind)> {
    let mut out: Vec<(u64, u64, SegKind)> = Vec::new();
    for e in t.iter() {
        let (p, l, k) = (e.phys().raw(), u64::from(e.len()), e.kind());
        match out.last_mut() {
            Some(last) if last.0 + last.1 == p && last.2 == k => last.1 += l,
            _ => out.push((p, l, k)),
        }
    }
    out
}

/// `[from, from + len)` of a stream.
fn slice(s: &[(u64, u64, SegKind)], mut from: u64, mut len: u64) -> Vec<(u64, u64, SegKind)> {
    let mut out: Vec<(u64, u64, SegKind)> = Vec::new();
    for &(p, l, k) in s {
        if len == 0 {
            break;
        }
        if from >= l {
            from -= l;
            continue;
        }
        let n = (l - from).min(len);
        out.push((p + from, n, k));
        len -= n;
        from = 0;
    }
    out
}

fn pages(u: &mut Unstructured<'_>) -> Result<Vec<(Pfn, SegKind)>> {
    let mut v = Vec::new();
    let mut pfn = u64::from(u.arbitrary::<u32>()?);
    for _ in 0..u.int_in_range(1..=12u8)? {
        let run = u64::from(u.int_in_range(1..=40u8)?);
        let kind = match u.int_in_range(0..=3u8)? {
            0 | 1 => SegKind::Ram,
            2 => SegKind::PeerBar(ProviderId::new(u32::from(u.int_in_range(0..=2u8)?))),
            _ => SegKind::StolenRam(ProviderId::new(3)),
        };
        for _ in 0..run {
            v.push((Pfn::new(pfn), kind));
            pfn += 1;
        }
        pfn += u64::from(u.int_in_range(0..=2u8)?);
    }
    Ok(v)
}

/// Decodes pages, cuts and slices from `data` and checks them.
pub fn check(data: &[u8]) {
    let _ = run(&mut Unstructured::new(data));
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let pg = pages(u)?;
    let offset = u64::from(u.int_in_range(0..=4095u16)?);
    let total = pg.len() as u64 * PAGE_SIZE - offset;
    let size = u64::from(u.arbitrary::<u32>()?) % total + 1;
    let max_segment = *u.choose(&[
        PAGE_SIZE,
        2 * PAGE_SIZE,
        0x1_0000,
        0x10_0000,
        u64::from(u32::MAX),
    ])?;
    let Ok(one) = SgTable::from_pages_kinds(&pg, offset, size, max_segment) else {
        return Ok(());
    };
    let want = stream(&one);
    assert_eq!(want.iter().map(|r| r.1).sum::<u64>(), size);
    for e in one.iter() {
        assert!(u64::from(e.len()) <= max_segment);
    }
    // The same pages appended in pieces cut at page boundaries.
    let used = (offset + size).div_ceil(PAGE_SIZE) as usize;
    let mut cuts: Vec<usize> = (0..u.int_in_range(0..=3u8)?)
        .map(|_| Ok(usize::from(u.arbitrary::<u8>()?) % used.max(1)))
        .collect::<Result<_>>()?;
    cuts.retain(|&c| c > 0);
    cuts.push(used);
    cuts.sort_unstable();
    cuts.dedup();
    let mut a = SgAppendTable::new();
    let (mut at, mut done) = (0usize, 0u64);
    for &c in &cuts {
        let first = if at == 0 { offset } else { 0 };
        let bytes = ((c - at) as u64 * PAGE_SIZE - first).min(size - done);
        let left = used - c;
        a.append_pages_kinds(&pg[at..c], first, bytes, max_segment, left)
            .expect("a piece of a buildable table appends");
        done += bytes;
        at = c;
    }
    let pieces = a.into_table();
    let got: Vec<_> = pieces
        .iter()
        .map(|e| (e.phys(), e.len(), e.kind()))
        .collect();
    let one_shot: Vec<_> = one.iter().map(|e| (e.phys(), e.len(), e.kind())).collect();
    assert_eq!(
        got, one_shot,
        "appending at pages {cuts:?} differs from one build"
    );
    // Chain a second table.
    let pg2 = pages(u)?;
    if let Ok(two) = SgTable::from_pages_kinds(&pg2, 0, pg2.len() as u64 * PAGE_SIZE, max_segment) {
        let mut both = want.clone();
        both.extend(stream(&two));
        let chained = one.clone().chain(two).expect("unmapped tables chain");
        let s = stream(&chained);
        let flat = |v: &[(u64, u64, SegKind)]| slice(v, 0, u64::MAX);
        assert_eq!(stream_eq(&s), stream_eq(&flat(&both)));
    }
    // Split.
    let skip = u64::from(u.arbitrary::<u16>()?) % size;
    let mut sizes = Vec::new();
    let mut left = size - skip;
    for _ in 0..u.int_in_range(1..=4u8)? {
        if left == 0 {
            break;
        }
        let n = u64::from(u.arbitrary::<u32>()?) % left + 1;
        sizes.push(n);
        left -= n;
    }
    if sizes.is_empty() {
        return Ok(());
    }
    let parts = one
        .split(skip, &sizes)
        .expect("sizes inside the table split");
    assert_eq!(parts.len(), sizes.len());
    let mut from = skip;
    for (p, &n) in parts.iter().zip(&sizes) {
        assert_eq!(stream_eq(&stream(p)), stream_eq(&slice(&want, from, n)));
        from += n;
    }
    Ok(())
}

/// A stream with contiguous same-kind runs merged (chained or sliced
/// streams may cut runs differently).
fn stream_eq(s: &[(u64, u64, SegKind)]) -> Vec<(u64, u64, SegKind)> {
    let mut out: Vec<(u64, u64, SegKind)> = Vec::new();
    for &(p, l, k) in s {
        match out.last_mut() {
            Some(last) if last.0 + last.1 == p && last.2 == k => last.1 += l,
            _ => out.push((p, l, k)),
        }
    }
    out
}
