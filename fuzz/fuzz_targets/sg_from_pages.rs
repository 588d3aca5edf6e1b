//! Fuzzes the page builder (`SgTable::from_pages_kinds`, i.e. Linux
//! `sg_alloc_table_from_pages_segment`) and a two-step append: decoded pfns,
//! kinds, offset, size and max_segment must never panic, and every table
//! built must cover exactly the requested bytes, in order, with no entry above
//! max_segment and the kernel's counts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scatterlist::{Pfn, ProviderId, SegKind, SgAppendTable, SgTable, PAGE_SIZE};

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        let n = self.0.len().min(8);
        b[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        u64::from_le_bytes(b)
    }
    fn u8(&mut self) -> u8 {
        let v = self.0.first().copied().unwrap_or(0);
        self.0 = self.0.get(1..).unwrap_or(&[]);
        v
    }
}

fn kind(k: u8) -> SegKind {
    match k % 4 {
        0 => SegKind::Ram,
        1 => SegKind::PeerBar(ProviderId::new(u32::from(k >> 2) % 3)),
        2 => SegKind::StolenRam(ProviderId::new(1)),
        _ => SegKind::DevicePrivate(ProviderId::new(2)),
    }
}

/// The bytes `[offset, offset + size)` of the pages, as coalesced ranges.
fn expected(pages: &[(Pfn, SegKind)], offset: u64, size: u64) -> Vec<(u64, u64)> {
    let mut left = size;
    let mut off = offset;
    let mut v = Vec::new();
    for (p, _) in pages {
        if left == 0 {
            break;
        }
        let take = (PAGE_SIZE - off).min(left);
        v.push((p.raw() * PAGE_SIZE + off, take));
        left -= take;
        off = 0;
    }
    coalesce(v)
}

fn coalesce(v: impl IntoIterator<Item = (u64, u64)>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (s, l) in v {
        match out.last_mut() {
            Some((ps, pl)) if ps.checked_add(*pl) == Some(s) => *pl += l,
            _ => out.push((s, l)),
        }
    }
    out
}

fn check(t: &SgTable, pages: &[(Pfn, SegKind)], offset: u64, size: u64, max_segment: u64) {
    assert_eq!(t.total_len(), size);
    assert_eq!(t.nents(), t.orig_nents());
    assert_eq!(t.iter().count(), t.orig_nents());
    let limit = (max_segment & !(PAGE_SIZE - 1)).min(scatterlist::MAX_SEGMENT_LIMIT);
    for e in t.iter() {
        assert!(
            e.len() > 0 && u64::from(e.len()) <= limit,
            "{e:?} limit {limit:#x}"
        );
        assert!(!e.is_chain());
    }
    let got = coalesce(t.iter().map(|e| (e.phys().raw(), u64::from(e.len()))));
    assert_eq!(got, expected(pages, offset, size));
    assert!(t.last().is_some_and(|e| e.is_end()));
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let offset = inp.u64() % (2 * PAGE_SIZE); // sometimes out of page on purpose
    let size = inp.u64() % (1 << 24);
    let max_segment = match inp.u8() % 4 {
        0 => inp.u64(),
        1 => u64::from(u32::MAX),
        _ => u64::from(inp.u8()) * PAGE_SIZE + u64::from(inp.u8()),
    };
    let mode = inp.u8();
    let mut pages = Vec::new();
    let mut pfn = inp.u64();
    while !inp.0.is_empty() && pages.len() < 4096 {
        let step = inp.u8();
        let run = 1 + u64::from(inp.u8() % 64);
        if mode & 1 == 1 && step == 0xff {
            pfn = inp.u64(); // occasionally huge frame numbers
        }
        let k = kind(if mode & 2 == 2 { inp.u8() } else { 0 });
        for _ in 0..run {
            pages.push((Pfn::new(pfn), k));
            pfn = pfn.wrapping_add(1);
        }
        pfn = pfn.wrapping_add(u64::from(step % 4));
    }

    if let Ok(t) = SgTable::from_pages_kinds(&pages, offset, size, max_segment) {
        check(&t, &pages, offset, size, max_segment);
        // Every entry has one kind, that of each page it covers.
        for e in t.iter() {
            let first = e.phys().raw() / PAGE_SIZE;
            assert!(pages
                .iter()
                .any(|&(p, k)| p.raw() == first && k == e.kind()));
        }
    }

    // Two-step append: pages split at a page boundary, whole pages first.
    let cut = (usize::from(mode) * 7) % (pages.len() + 1);
    if cut > 0 && cut < pages.len() && offset < PAGE_SIZE {
        let first = cut as u64 * PAGE_SIZE - offset;
        if size > first {
            let mut a = SgAppendTable::new();
            let before = a.clone();
            match a.append_pages_kinds(&pages[..cut], offset, first, max_segment, pages.len() - cut)
            {
                Ok(()) => {
                    if a.append_pages_kinds(&pages[cut..], 0, size - first, max_segment, 0)
                        .is_ok()
                    {
                        let t = a.into_table();
                        check(&t, &pages, offset, size, max_segment);
                    }
                }
                Err(_) => assert_eq!(a, before),
            }
        }
    }
});
