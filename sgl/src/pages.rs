//! Page sources: where the page builder reads frame numbers and kinds.
//!
//! Linux walks a `struct page **` array and asks `page_to_pfn` and
//! `zone_device_pages_have_same_pgmap` per page (`lib/scatterlist.c`,
//! `pages_are_mergeable`). Here a [`PageSource`] answers the same two
//! questions. Two neighbouring pages are *mergeable* when the second frame
//! number is the first plus one **and** their [`SegKind`]s are equal (same kind
//! and same provider: Linux's same-pgmap rule, so P2P pages never merge with
//! RAM or with another provider's pages).

use crate::addr::{Pfn, PAGE_SHIFT};
use crate::kind::SegKind;
use crate::run_breaks;

/// An indexed list of pages with their kinds.
pub trait PageSource {
    /// Number of pages.
    fn page_count(&self) -> usize;
    /// Frame number of page `i` (`i < page_count()`; out of range gives `Pfn(0)`).
    fn pfn(&self, i: usize) -> Pfn;
    /// Kind of page `i` (`i < page_count()`; out of range gives `Ram`).
    fn kind(&self, i: usize) -> SegKind;

    /// Linux `pages_are_mergeable(page[i], page[i - 1])` for `i >= 1`.
    #[inline]
    fn mergeable(&self, i: usize) -> bool {
        i > 0
            && self.pfn(i).raw() == self.pfn(i - 1).raw().wrapping_add(1)
            && self.kind(i) == self.kind(i - 1)
    }

    /// Calls `sink(index, frame number)` for every page in `from..to` that starts
    /// a maximal mergeable run (always `from` itself, when the range is not
    /// empty). An override must report exactly the pages where
    /// [`mergeable`](Self::mergeable) is false: the builder derives every
    /// other page's address from its run's start.
    fn run_starts<F: FnMut(usize, Pfn)>(&self, from: usize, to: usize, mut sink: F) {
        if from >= to {
            return;
        }
        sink(from, self.pfn(from));
        for i in from + 1..to {
            if !self.mergeable(i) {
                sink(i, self.pfn(i));
            }
        }
    }
}

/// Largest valid page frame number (its page ends at the top of the 64-bit space).
pub(crate) const MAX_PFN: u64 = u64::MAX >> PAGE_SHIFT;

/// Plain RAM pages: every page is [`SegKind::Ram`].
impl PageSource for [Pfn] {
    #[inline]
    fn page_count(&self) -> usize {
        self.len()
    }
    #[inline]
    fn pfn(&self, i: usize) -> Pfn {
        self.get(i).copied().unwrap_or_default()
    }
    #[inline]
    fn kind(&self, _i: usize) -> SegKind {
        SegKind::Ram
    }

    /// Block scan: the CPU's fastest `run_breaks` kernel gives the break mask of each
    /// block of 64 neighbour pairs, and only its set bits (about one per
    /// run) are visited; the last < 64 pairs one by one.
    fn run_starts<F: FnMut(usize, Pfn)>(&self, from: usize, to: usize, sink: F) {
        run_breaks::scan(self, from, to, sink);
    }
}

/// Pages with an explicit kind each.
impl PageSource for [(Pfn, SegKind)] {
    #[inline]
    fn page_count(&self) -> usize {
        self.len()
    }
    #[inline]
    fn pfn(&self, i: usize) -> Pfn {
        self.get(i).map(|p| p.0).unwrap_or_default()
    }
    #[inline]
    fn kind(&self, i: usize) -> SegKind {
        self.get(i).map(|p| p.1).unwrap_or_default()
    }
}

/// Pages whose kind a closure decides (e.g. a memory-map lookup).
#[derive(Clone, Copy, Debug)]
pub struct PagesWithKind<'a, F> {
    pfns: &'a [Pfn],
    kind_of: F,
}

impl<'a, F: Fn(Pfn) -> SegKind> PagesWithKind<'a, F> {
    /// Pairs the frame numbers with the closure classifying each one.
    pub fn new(pfns: &'a [Pfn], kind_of: F) -> Self {
        Self { pfns, kind_of }
    }
}

impl<F: Fn(Pfn) -> SegKind> PageSource for PagesWithKind<'_, F> {
    #[inline]
    fn page_count(&self) -> usize {
        self.pfns.len()
    }
    #[inline]
    fn pfn(&self, i: usize) -> Pfn {
        self.pfns.get(i).copied().unwrap_or_default()
    }
    #[inline]
    fn kind(&self, i: usize) -> SegKind {
        (self.kind_of)(self.pfn(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    fn pf(v: &[u64]) -> Vec<Pfn> {
        v.iter().map(|&p| Pfn::new(p)).collect()
    }

    #[test]
    fn fast_scan_matches_generic_scan() {
        // 5000 pages crossing many 64-page blocks and 512-pair superblocks,
        // with breaks at group, block and superblock edges and runs of every
        // length from 1 to 40.
        let mut raw = vec![];
        let mut p = 10u64;
        let mut next_break = 1u64;
        for i in 0..5000u64 {
            if i == next_break {
                next_break += 1 + (i * 7) % 40;
                p += 3;
            }
            let edge = matches!(i % 512, 0 | 1 | 504 | 511);
            if edge || i % 63 == 0 || i == 64 || i == 65 || i == 199 || i % 16 == 0 && i % 48 == 0 {
                p += 5;
            }
            raw.push(p);
            p += 1;
        }
        // A clean superblock (no break in pages 2100..3200).
        for (i, v) in raw.iter_mut().enumerate().skip(2100).take(1100) {
            *v = 1 << 40 | i as u64;
        }
        raw.push(u64::MAX);
        raw.push(0);
        let pfns = pf(&raw);
        let kinds: Vec<(Pfn, SegKind)> = pfns.iter().map(|&p| (p, SegKind::Ram)).collect();
        for (from, to) in [
            (0, pfns.len() - 2),
            (0, pfns.len()),
            (1, 3000),
            (1023, 2050),
            (100, 1125),
            (2000, 3300),
            (3, 150),
            (64, 65),
            (5, 5),
            (0, 2),
            (0, 1),
        ] {
            let mut fast = vec![];
            let mut slow = vec![];
            pfns[..].run_starts(from, to, |i, p| fast.push((i, p)));
            kinds[..].run_starts(from, to, |i, p| slow.push((i, p)));
            assert_eq!(fast, slow, "range {from}..{to}");
        }
    }
}
