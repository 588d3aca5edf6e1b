//! Layout, kinds, offsets, appends, chaining, splitting and every error.

use scatterlist::{
    DmaAddr, DmaFlags, Pfn, PhysAddr, ProviderId, SegKind, SgAppendTable, SgEntry, SgError,
    SgTable, PAGE_SIZE,
};

const P: u64 = PAGE_SIZE;
const MAX: u64 = u32::MAX as u64;

fn pf(v: impl IntoIterator<Item = u64>) -> Vec<Pfn> {
    v.into_iter().map(Pfn::new).collect()
}

/// `n` single-page entries: pfns 0, 2, 4, ...
fn sparse(n: u64) -> SgTable {
    let pages = pf((0..n).map(|i| 2 * i));
    SgTable::from_pages(&pages, 0, n * P, MAX).unwrap()
}

/// Slots per chunk (a chain link ends its chunk).
fn chunk_sizes(t: &SgTable) -> Vec<usize> {
    let mut sizes = vec![];
    let mut cur = 0;
    for s in t.slots() {
        cur += 1;
        if s.is_chain() {
            sizes.push(cur);
            cur = 0;
        }
    }
    if cur > 0 {
        sizes.push(cur);
    }
    sizes
}

fn cpu(t: &SgTable) -> Vec<(u64, u32)> {
    t.iter().map(|e| (e.phys().raw(), e.len())).collect()
}

fn dma(t: &SgTable) -> Vec<(u64, u32)> {
    t.dma_iter()
        .map(|e| (e.dma_address().raw(), e.dma_len()))
        .collect()
}

#[test]
fn chunk_layout_matches_sg_alloc_table() {
    for (n, sizes) in [
        (1u64, vec![1]),
        (127, vec![127]),
        (128, vec![128]),
        (129, vec![128, 2]),
        (254, vec![128, 127]),
        (255, vec![128, 128]),
        (256, vec![128, 128, 2]),
        (300, vec![128, 128, 46]),
    ] {
        let t = sparse(n);
        assert_eq!(chunk_sizes(&t), sizes, "n = {n}");
        assert_eq!(t.orig_nents(), n as usize);
        assert_eq!(t.nents(), n as usize);
        assert_eq!(t.alloc_nents(), n as usize);
        assert_eq!(t.chunk_count(), sizes.len());
        assert_eq!(t.sg_nents(), n as usize);
        // Every entry exactly once, in order, links never yielded.
        let want: Vec<(u64, u32)> = (0..n).map(|i| (2 * i * P, P as u32)).collect();
        assert_eq!(cpu(&t), want, "n = {n}");
        assert_eq!(t.iter().len(), n as usize);
        assert_eq!(t.dma_iter().len(), n as usize);
        assert!(t.iter().all(|e| !e.is_chain()));
        assert_eq!(t.iter().filter(|e| e.is_end()).count(), 1);
        assert!(t.last().unwrap().is_end());
    }
}

#[test]
fn dma_view_follows_nents_across_chunks() {
    let mut t = sparse(300);
    for (i, e) in t.iter_mut().enumerate() {
        e.set_dma(
            DmaAddr::new(0x1_0000_0000 + i as u64 * P),
            P,
            DmaFlags::EMPTY,
        )
        .unwrap();
    }
    t.set_nents(260).unwrap();
    assert!(t.is_dma_mapped());
    let d = dma(&t);
    assert_eq!(d.len(), 260);
    assert_eq!(d[259], (0x1_0000_0000 + 259 * P, P as u32));
    assert_eq!(t.total_dma_len(), 260 * P);
    assert_eq!(t.iter().count(), 300);
    assert_eq!(
        t.set_nents(301),
        Err(SgError::NentsOutOfRange {
            nents: 301,
            max: 300
        })
    );
    for e in t.dma_iter_mut() {
        e.set_dma_flags(DmaFlags::BUS_ADDRESS);
    }
    assert_eq!(
        t.dma_iter()
            .filter(|e| e.dma_flags().contains(DmaFlags::BUS_ADDRESS))
            .count(),
        260
    );
    t.clear_dma();
    assert_eq!(t.nents(), 300);
    assert!(!t.is_dma_mapped());
    assert!(t
        .iter()
        .all(|e| e.dma_len() == 0 && e.dma_flags().is_empty()));
}

#[test]
fn kinds_and_providers_never_merge() {
    let b1 = SegKind::PeerBar(ProviderId::new(1));
    let b2 = SegKind::PeerBar(ProviderId::new(2));
    let pages = [
        (Pfn::new(10), SegKind::Ram),
        (Pfn::new(11), b1),
        (Pfn::new(12), b1),
        (Pfn::new(13), b2),
        (Pfn::new(14), SegKind::Ram),
        (Pfn::new(15), SegKind::Ram),
        (Pfn::new(16), SegKind::StolenRam(ProviderId::new(1))),
    ];
    let t = SgTable::from_pages_kinds(&pages, 0, 7 * P, MAX).unwrap();
    let got: Vec<(u64, u32, SegKind)> = t
        .iter()
        .map(|e| (e.phys().raw(), e.len(), e.kind()))
        .collect();
    assert_eq!(
        got,
        vec![
            (10 * P, P as u32, SegKind::Ram),
            (11 * P, 2 * P as u32, b1),
            (13 * P, P as u32, b2),
            (14 * P, 2 * P as u32, SegKind::Ram),
            (16 * P, P as u32, SegKind::StolenRam(ProviderId::new(1))),
        ]
    );
    // Same via the closure form.
    let pfns: Vec<Pfn> = pages.iter().map(|p| p.0).collect();
    let t2 = SgTable::from_pages_with(
        &pfns,
        |p| pages.iter().find(|q| q.0 == p).map(|q| q.1).unwrap(),
        0,
        7 * P,
        MAX,
    )
    .unwrap();
    assert_eq!(t, t2);
}

#[test]
fn offsets_and_partial_last_page() {
    let t = SgTable::from_pages(&pf([5, 6, 7]), 100, 2 * P, MAX).unwrap();
    assert_eq!(cpu(&t), vec![(5 * P + 100, 2 * P as u32)]);
    assert_eq!(t.iter().next().unwrap().offset(), 100);

    let t = SgTable::from_pages(&pf([5, 6, 7]), 100, 2 * P + 500, 2 * P).unwrap();
    assert_eq!(
        cpu(&t),
        vec![(5 * P + 100, 2 * P as u32 - 100), (7 * P, 600)]
    );
    // Surplus pages past offset + size are not used.
    let t = SgTable::from_pages(&pf([1, 3, 5]), 0, 10, MAX).unwrap();
    assert_eq!(cpu(&t), vec![(P, 10)]);
    assert_eq!(t.orig_nents(), 1);
    // max_segment is rounded down to a page.
    let t = SgTable::from_pages(&pf(0..4), 0, 4 * P, 2 * P + 4095).unwrap();
    assert_eq!(cpu(&t), vec![(0, 2 * P as u32), (2 * P, 2 * P as u32)]);
    // A huge max_segment is clamped to what a u32 length holds.
    let n = (1u64 << 20) + 3; // 4 GiB + 3 pages
    let pages = pf(0..n);
    let t = SgTable::from_pages(&pages, 0, n * P, u64::MAX).unwrap();
    assert_eq!(
        cpu(&t),
        vec![
            (0, (MAX - (P - 1)) as u32),
            ((1 << 20) * P - P, 4 * P as u32)
        ]
    );
    assert_eq!(t.total_len(), n * P);
}

#[test]
fn append_continuation_rules() {
    // Continuation limited by max_segment: grow to 3 pages, then a new entry.
    let mut a = SgAppendTable::new();
    a.append_pages(&pf([0, 1]), 0, 2 * P, 3 * P, 4).unwrap();
    a.append_pages(&pf([2, 3, 4]), 0, 3 * P, 3 * P, 0).unwrap();
    let t = a.into_table();
    assert_eq!(cpu(&t), vec![(0, 3 * P as u32), (3 * P, 2 * P as u32)]);

    // Not contiguous: new entry.
    let mut a = SgAppendTable::new();
    a.append_pages(&pf([0]), 0, P, MAX, 1).unwrap();
    a.append_pages(&pf([2]), 0, P, MAX, 0).unwrap();
    assert_eq!(cpu(a.table()), vec![(0, P as u32), (2 * P, P as u32)]);

    // Contiguous but a different kind: new entry.
    let bar = SegKind::PeerBar(ProviderId::new(3));
    let mut a = SgAppendTable::new();
    a.append_pages(&pf([0]), 0, P, MAX, 1).unwrap();
    a.append_pages_kinds(&[(Pfn::new(1), bar)], 0, P, MAX, 0)
        .unwrap();
    assert_eq!(a.nents(), 2);
    assert_eq!(a.table().iter().nth(1).unwrap().kind(), bar);

    // A partial last page is absorbed for its bytes only.
    let mut a = SgAppendTable::new();
    a.append_pages(&pf([0]), 0, P, MAX, 1).unwrap();
    a.append_pages(&pf([1]), 0, 10, MAX, 0).unwrap();
    assert_eq!(cpu(a.table()), vec![(0, P as u32 + 10)]);

    // Previous entry ends mid-page: no continuation.
    let mut a = SgAppendTable::new();
    a.append_pages(&pf([0]), 0, 100, MAX, 1).unwrap();
    a.append_pages(&pf([0]), 0, P, MAX, 0).unwrap();
    assert_eq!(a.nents(), 2);

    // Offset on a continuing append.
    let mut a = SgAppendTable::new();
    a.append_pages(&pf([0]), 0, P, MAX, 1).unwrap();
    let before = a.clone();
    assert_eq!(
        a.append_pages(&pf([1]), 8, P - 8, MAX, 0),
        Err(SgError::AppendWithOffset { offset: 8 })
    );
    assert_eq!(a, before);

    // After a final append, contiguous pages still merge, others are refused.
    let mut a = SgAppendTable::new();
    a.append_pages(&pf([0]), 0, P, MAX, 0).unwrap();
    a.append_pages(&pf([1]), 0, P, MAX, 0).unwrap();
    assert_eq!(cpu(a.table()), vec![(0, 2 * P as u32)]);
    let before = a.clone();
    assert_eq!(
        a.append_pages(&pf([2, 9]), 0, 2 * P, MAX, 0),
        Err(SgError::AppendAfterEnd { nents: 1 })
    );
    assert_eq!(a, before, "a refused append changes nothing");
}

#[test]
fn append_reservations_match_get_next_sg() {
    // 3 entries + 1 reserved, then 3 more: chunk of 4, then a chained chunk of 3.
    let mut a = SgAppendTable::new();
    a.append_pages(&pf([0, 2, 4]), 0, 3 * P, MAX, 1).unwrap();
    assert_eq!((a.nents(), a.total_nents()), (3, 4));
    assert!(!a.table().iter().any(|e| e.is_end()));
    a.append_pages(&pf([10, 12, 14]), 0, 3 * P, MAX, 0).unwrap();
    assert_eq!((a.nents(), a.total_nents()), (6, 6));
    assert_eq!(chunk_sizes(a.table()), vec![4, 3]);

    // 200 entries with 100 left, then 100: chunks 128 + 128 + 46.
    let mut a = SgAppendTable::new();
    a.append_pages(&pf((0..200).map(|i| 2 * i)), 0, 200 * P, MAX, 100)
        .unwrap();
    assert_eq!((a.nents(), a.total_nents()), (200, 255));
    a.append_pages(&pf((0..100).map(|i| 1000 + 2 * i)), 0, 100 * P, MAX, 0)
        .unwrap();
    assert_eq!((a.nents(), a.total_nents()), (300, 300));
    let t = a.into_table();
    assert_eq!(chunk_sizes(&t), vec![128, 128, 46]);
    let want: Vec<u64> = (0..200)
        .map(|i| 2 * i * P)
        .chain((0..100).map(|i| (1000 + 2 * i) * P))
        .collect();
    assert_eq!(t.iter().map(|e| e.phys().raw()).collect::<Vec<_>>(), want);
}

#[test]
fn into_table_marks_end_when_pages_were_left() {
    let mut a = SgAppendTable::new();
    a.append_pages(&pf([0, 2]), 0, 2 * P, MAX, 5).unwrap();
    // Linux sg_nents walks to the END of the reserved chunk.
    assert_eq!(a.table().sg_nents(), 7);
    let t = a.into_table();
    assert!(t.last().unwrap().is_end());
    assert_eq!(t.sg_nents(), 2);
    assert_eq!(t.alloc_nents(), 7);
}

#[test]
fn sg_nents_for_len_counts() {
    let t = SgTable::from_pages(&pf([0, 1, 3, 4, 6]), 0, 5 * P, MAX).unwrap();
    assert_eq!(t.sg_nents_for_len(0), Ok(0));
    assert_eq!(t.sg_nents_for_len(1), Ok(1));
    assert_eq!(t.sg_nents_for_len(2 * P), Ok(1));
    assert_eq!(t.sg_nents_for_len(2 * P + 1), Ok(2));
    assert_eq!(t.sg_nents_for_len(5 * P), Ok(3));
    assert_eq!(
        t.sg_nents_for_len(5 * P + 1),
        Err(SgError::TooShort {
            wanted: 5 * P + 1,
            available: 5 * P
        })
    );
}

#[test]
fn split_cpu_and_dma() {
    let mut t = SgTable::from_ranges(
        &[
            (PhysAddr::new(0x1000), 0x3000),
            (PhysAddr::new(0x10000), 0x1000),
        ],
        SegKind::Ram,
        MAX,
    )
    .unwrap();
    let parts = t.split(0x800, &[0x1000, 0x2000]).unwrap();
    assert_eq!(
        parts,
        scatterlist::sg_split(&t, 0x800, &[0x1000, 0x2000]).unwrap()
    );
    assert_eq!(cpu(&parts[0]), vec![(0x1800, 0x1000)]);
    assert_eq!(cpu(&parts[1]), vec![(0x2800, 0x1800), (0x10000, 0x800)]);
    assert_eq!(parts[1].nents(), 2);
    assert!(!parts[1].is_dma_mapped());
    assert!(parts[1].last().unwrap().is_end());

    // Skip ending on an entry boundary starts at the next entry.
    let parts = t.split(0x3000, &[0x1000]).unwrap();
    assert_eq!(cpu(&parts[0]), vec![(0x10000, 0x1000)]);

    // Mapped into one IOVA segment: the DMA view is split too.
    t.iter_mut()
        .next()
        .unwrap()
        .set_dma(DmaAddr::new(0x10_0000), 0x4000, DmaFlags::EMPTY)
        .unwrap();
    t.set_nents(1).unwrap();
    let parts = t.split(0x800, &[0x1000, 0x2000]).unwrap();
    assert_eq!(dma(&parts[0]), vec![(0x10_0800, 0x1000)]);
    assert_eq!(dma(&parts[1]), vec![(0x10_1800, 0x2000)]);
    assert_eq!((parts[1].orig_nents(), parts[1].nents()), (2, 1));

    assert_eq!(t.split(0, &[]), Err(SgError::NoSplits));
    assert_eq!(t.split(0, &[0x10, 0]), Err(SgError::ZeroLength));
    assert_eq!(
        t.split(0x800, &[0x3000, 0x1000]),
        Err(SgError::TooShort {
            wanted: 0x4800,
            available: 0x4000
        })
    );
}

#[test]
fn split_dma_only() {
    let t = SgTable::dma_only(
        &[
            (DmaAddr::new(0x8000), 0x2000),
            (DmaAddr::new(0x2_0000), 0x1000),
        ],
        DmaFlags::BUS_ADDRESS,
    )
    .unwrap();
    let parts = t.split(0x1000, &[0x1800]).unwrap();
    assert_eq!(parts[0].orig_nents(), 0);
    assert_eq!(dma(&parts[0]), vec![(0x9000, 0x1000), (0x2_0000, 0x800)]);
    assert!(parts[0]
        .dma_iter()
        .all(|e| e.dma_flags() == DmaFlags::BUS_ADDRESS));
}

#[test]
fn dma_only_tables() {
    let segs: Vec<(DmaAddr, u64)> = (0..200)
        .map(|i| (DmaAddr::new(i * 0x10_0000), 0x1000))
        .collect();
    let t = SgTable::dma_only(&segs, DmaFlags::MMIO).unwrap();
    assert_eq!((t.orig_nents(), t.nents()), (0, 200));
    assert_eq!(t.iter().count(), 0);
    assert_eq!(t.total_len(), 0);
    assert_eq!(t.total_dma_len(), 200 * 0x1000);
    assert_eq!(dma(&t)[199], (199 * 0x10_0000, 0x1000));
    assert_eq!(chunk_sizes(&t), vec![128, 73]);
    assert_eq!(
        SgTable::dma_only(&[(DmaAddr::new(0), 1 << 32)], DmaFlags::EMPTY),
        Err(SgError::LengthTooLarge { len: 1 << 32 })
    );
    assert_eq!(
        SgTable::dma_only(&[(DmaAddr::new(u64::MAX), 2)], DmaFlags::EMPTY),
        Err(SgError::DmaOverflow {
            start: DmaAddr::new(u64::MAX),
            len: 2
        })
    );
    assert_eq!(
        SgTable::dma_only(&[], DmaFlags::EMPTY),
        Err(SgError::NoRanges)
    );
    assert_eq!(
        SgTable::dma_only(&[(DmaAddr::new(0), 0)], DmaFlags::EMPTY),
        Err(SgError::ZeroLength)
    );
}

#[test]
fn chain_tables() {
    for (na, nb) in [(200u64, 100u64), (128, 5), (127, 1), (1, 300), (254, 254)] {
        let a = sparse(na);
        let b = SgTable::from_pages(&pf((0..nb).map(|i| 10_000 + 2 * i)), 0, nb * P, MAX).unwrap();
        let want: Vec<(u64, u32)> = cpu(&a).into_iter().chain(cpu(&b)).collect();
        let c = a.chain(b).unwrap();
        assert_eq!(cpu(&c), want, "{na}+{nb}");
        assert_eq!(c.orig_nents(), (na + nb) as usize);
        assert_eq!(c.nents(), (na + nb) as usize);
        assert_eq!(c.alloc_nents(), (na + nb) as usize);
        assert!(chunk_sizes(&c).iter().all(|&s| s <= 128), "{na}+{nb}");
        assert_eq!(c.sg_nents(), (na + nb) as usize);
        assert_eq!(c.iter().filter(|e| e.is_end()).count(), 1);
    }
    // Chained result can be chained again and appended tables too.
    let c = sparse(3)
        .chain(sparse(2))
        .unwrap()
        .chain(sparse(1))
        .unwrap();
    assert_eq!(c.orig_nents(), 6);
    let mut m = sparse(2);
    m.set_nents(2).unwrap();
    assert_eq!(
        m.chain(sparse(1)),
        Err(SgError::ChainMapped {
            nents: 2,
            orig_nents: 2
        })
    );
    assert_eq!(SgTable::new().chain(sparse(2)).unwrap(), sparse(2));
}

#[test]
fn from_ranges_merges_and_splits_like_pages() {
    let t = SgTable::from_ranges(
        &[
            (PhysAddr::new(0x1100), 0x0f00),
            (PhysAddr::new(0x2000), 0x3000),
            (PhysAddr::new(0x9000), 0x10),
        ],
        SegKind::PeerBar(ProviderId::new(4)),
        2 * P,
    )
    .unwrap();
    assert_eq!(
        cpu(&t),
        vec![(0x1100, 0x1f00), (0x3000, 0x2000), (0x9000, 0x10)]
    );
    assert!(t
        .iter()
        .all(|e| e.kind() == SegKind::PeerBar(ProviderId::new(4))));
    let p = SgTable::from_pages(&pf([1, 2, 3, 4]), 0x100, 0x3f00, 2 * P).unwrap();
    let r = SgTable::from_ranges(&[(PhysAddr::new(0x1100), 0x3f00)], SegKind::Ram, 2 * P).unwrap();
    assert_eq!(p, r);
    // A 16 GiB range splits at the u32 limit.
    let r = SgTable::from_ranges(&[(PhysAddr::new(0), 1 << 34)], SegKind::Ram, u64::MAX).unwrap();
    assert_eq!(r.total_len(), 1 << 34);
    assert!(r.iter().all(|e| u64::from(e.len()) <= MAX));
    // The top byte of the address space is representable.
    let r = SgTable::from_ranges(
        &[(PhysAddr::new(u64::MAX - 0xfff), 0x1000)],
        SegKind::Ram,
        P,
    )
    .unwrap();
    assert_eq!(cpu(&r), vec![(u64::MAX - 0xfff, 0x1000)]);
}

#[test]
fn every_error_names_its_values() {
    assert_eq!(SgTable::from_pages(&[], 0, P, MAX), Err(SgError::ZeroPages));
    assert_eq!(
        SgTable::from_pages(&pf([0]), 0, 0, MAX),
        Err(SgError::ZeroLength)
    );
    assert_eq!(
        SgTable::from_pages(&pf([0]), P, 1, MAX),
        Err(SgError::OffsetNotInPage { offset: P })
    );
    assert_eq!(
        SgTable::from_pages(&pf([0, 1]), 10, 2 * P, MAX),
        Err(SgError::SizeExceedsPages {
            needed: 2 * P + 10,
            covered: 2 * P
        })
    );
    assert_eq!(
        SgTable::from_pages(&pf([0]), 10, u64::MAX, MAX),
        Err(SgError::SizeOverflow {
            offset: 10,
            size: u64::MAX
        })
    );
    assert_eq!(
        SgTable::from_pages(&pf([0]), 0, P, P - 1),
        Err(SgError::MaxSegmentTooSmall { max_segment: P - 1 })
    );
    let top = u64::MAX >> 12;
    assert!(SgTable::from_pages(&pf([top]), 0, P, MAX).is_ok());
    assert_eq!(
        SgTable::from_pages(&pf([top, top + 1]), 0, 2 * P, MAX),
        Err(SgError::PfnOverflow { pfn: top + 1 })
    );
    assert_eq!(
        SgTable::from_pages(&pf([u64::MAX, 0]), 0, 2 * P, MAX),
        Err(SgError::PfnOverflow { pfn: u64::MAX })
    );
    // Top page followed by pfn 0 must not be treated as a continuation.
    let mut a = SgAppendTable::new();
    a.append_pages(&pf([top]), 0, P, MAX, 1).unwrap();
    a.append_pages(&pf([0]), 0, P, MAX, 0).unwrap();
    assert_eq!(a.nents(), 2);
    // A continuation that would run past the top page.
    let mut a = SgAppendTable::new();
    a.append_pages(&pf([top]), 0, P, MAX, 1).unwrap();
    assert_eq!(
        a.append_pages(&pf([top + 1]), 0, P, MAX, 0),
        Err(SgError::PfnOverflow { pfn: top + 1 })
    );
    let r = SgTable::from_ranges(&[(PhysAddr::new(u64::MAX), 2)], SegKind::Ram, MAX);
    assert_eq!(
        r,
        Err(SgError::AddressOverflow {
            start: PhysAddr::new(u64::MAX),
            len: 2
        })
    );
    assert_eq!(
        SgTable::from_ranges(&[], SegKind::Ram, MAX),
        Err(SgError::NoRanges)
    );
    assert_eq!(
        SgTable::from_ranges(&[(PhysAddr::new(0), 0)], SegKind::Ram, MAX),
        Err(SgError::ZeroLength)
    );
    assert_eq!(
        SgTable::from_ranges(&[(PhysAddr::new(0), 1)], SegKind::Ram, 0),
        Err(SgError::MaxSegmentTooSmall { max_segment: 0 })
    );
    let mut e = SgEntry::default();
    assert_eq!(
        e.set_dma(DmaAddr::new(0), MAX + 1, DmaFlags::EMPTY),
        Err(SgError::LengthTooLarge { len: MAX + 1 })
    );
    // Display names the values.
    let msg = SgError::SizeExceedsPages {
        needed: 0x2010,
        covered: 0x2000,
    }
    .to_string();
    assert!(msg.contains("0x2010") && msg.contains("0x2000"), "{msg}");
}
