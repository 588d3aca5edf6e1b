//! Run breaks: which neighbour pages of a block do not continue a run.
//!
//! The page builder's hot loop asks, for every neighbour pair, Linux's
//! `pages_are_mergeable` frame test (`lib/scatterlist.c`): does `pfn[i]` equal
//! `pfn[i - 1] + 1`? [`breaks`] answers it for a whole block of [`BLOCK`]
//! pairs at once as a bitmask, so the scan only walks the set bits (about one
//! per run). Two kernels give identical masks:
//!
//! - on x86_64, an SSE2 kernel: 32-bit equality compares narrowed by
//!   saturating packs to one byte per pair, then `pmovmskb`. Portable code
//!   cannot get that instruction (LLVM builds a bitmask from per-lane bit
//!   constants and horizontal ORs), and a function without
//!   `#[target_feature]` may call the SSE2 intrinsics only in `unsafe`, even
//!   though SSE2 is part of the x86_64 baseline. So the kernel is a safe
//!   `#[target_feature(enable = "sse2")]` function, reached through the one
//!   `unsafe` call in this crate, on a target whose baseline proves the
//!   feature (RFC §5.1 "Speed");
//! - everywhere else, a portable kernel: a branch-free pass marks the 8-pair
//!   groups holding a break, then only those are tested pair by pair.

use crate::addr::Pfn;

/// Neighbour pairs per block: one bit each of a `u64`.
pub(crate) const BLOCK: usize = 64;

/// The pages of one block: pair `k` is `(w[k], w[k + 1])`.
pub(crate) type Window = [Pfn; BLOCK + 1];

/// Bit `k` set iff `w[k + 1] != w[k] + 1` (wrapping): page `k + 1` of the
/// window starts a run.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[allow(unsafe_code)]
#[inline]
pub(crate) fn breaks(w: &Window) -> u64 {
    // SAFETY: the kernel's only requirement is SSE2, and this item is
    // compiled only when `target_feature = "sse2"` is enabled for the whole
    // build (it is in the x86_64 baseline), so every CPU this code can run on
    // has it. The kernel reads nothing but `w`, through a safe reference.
    unsafe { sse2::breaks(w) }
}

/// Bit `k` set iff `w[k + 1] != w[k] + 1` (wrapping): page `k + 1` of the
/// window starts a run.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline]
pub(crate) fn breaks(w: &Window) -> u64 {
    portable::breaks(w)
}

/// The portable kernel, for every target without SSE2 (and as the reference
/// the SSE2 kernel is tested against).
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2", not(test)),
    allow(dead_code)
)]
pub(crate) mod portable {
    use super::{Window, BLOCK};
    use crate::addr::Pfn;

    /// Pairs per group: one dirty bit each in the first pass.
    const GROUP: usize = 8;

    /// [`super::breaks`] in portable code. First pass: for each 8-pair group,
    /// a branch-free OR of `pfn[i] ^ (pfn[i - 1] + 1)` in two lanes (LLVM
    /// turns it into vector adds and xors) says whether it holds a break.
    /// Second pass: only the dirty groups (about a quarter of them for runs
    /// of tens of pages) are tested pair by pair.
    #[inline]
    pub(crate) fn breaks(w: &Window) -> u64 {
        let (Some(x), Some(y)) = (w.first_chunk::<BLOCK>(), w.last_chunk::<BLOCK>()) else {
            return 0; // Not reached: a window holds BLOCK + 1 pages.
        };
        let mut dirty = 0u32;
        for j in 0..BLOCK / GROUP {
            let mut acc = [0u64; 2];
            for k in 0..GROUP / 2 {
                #[allow(clippy::needless_range_loop)] // this form vectorises
                for l in 0..2 {
                    let i = j * GROUP + k * 2 + l;
                    acc[l] |= y[i].raw() ^ x[i].raw().wrapping_add(1);
                }
            }
            dirty |= u32::from((acc[0] | acc[1]) != 0) << j;
        }
        let mut m = 0u64;
        while dirty != 0 {
            let at = (dirty.trailing_zeros() as usize % (BLOCK / GROUP)) * GROUP;
            dirty &= dirty - 1;
            m |= group(x, y, at) << at;
        }
        m
    }

    /// The exact break mask of the group of pairs starting at pair `at`.
    #[inline(always)]
    fn group(x: &[Pfn; BLOCK], y: &[Pfn; BLOCK], at: usize) -> u64 {
        let (Some(x), Some(y)) = (x.get(at..at + GROUP), y.get(at..at + GROUP)) else {
            return 0; // Not reached: `at` is a group start.
        };
        let mut m = 0u64;
        for (k, (p, q)) in x.iter().zip(y).enumerate() {
            // Folding each difference to 32 bits before the test vectorises
            // to fewer instructions than a 64-bit compare.
            let t = q.raw() ^ p.raw().wrapping_add(1);
            m |= u64::from((t | t >> 32) as u32 != 0) << k;
        }
        m
    }
}

/// The SSE2 kernel.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
pub(crate) mod sse2 {
    use super::Window;
    use core::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_packs_epi16, _mm_packs_epi32,
        _mm_set1_epi8, _mm_set_epi64x, _mm_sub_epi64,
    };

    /// [`super::breaks`] with SSE2, 16 pairs at a time: the 64-bit
    /// differences `y - x` (1 where a run continues) are narrowed by three
    /// signed saturating packs to one byte per pair, then compared with 1 and
    /// their sign bits gathered by `pmovmskb`. Saturation keeps the test
    /// exact: a value saturates to 1 (or 0) only if it was 1 (or 0), so the
    /// 32 -> 16 -> 8 bit packs keep "low half 1, high half 0", and the last
    /// pack, reading each (low, high) byte pair as one 16-bit lane, yields 1
    /// exactly when the low byte is 1 and the high byte 0. About one load
    /// and one vector operation per pair.
    #[target_feature(enable = "sse2")]
    #[inline]
    pub(crate) fn breaks(w: &Window) -> u64 {
        // The `y` vectors start one page after the `x` vectors. Read through
        // an opaque copy of the reference, LLVM loads them unaligned instead
        // of building each from two `x` vectors with a shuffle (the shuffle
        // unit is what the packs need).
        let ws = core::hint::black_box(w);
        let mut cont = 0u64;
        for s in 0..4 {
            let k = s * 16;
            cont |= sixteen(w, ws, k) << k;
        }
        !cont
    }

    /// Bit j set iff pair `k + j` continues its run, for 16 pairs.
    #[target_feature(enable = "sse2")]
    #[inline]
    fn sixteen(w: &Window, ws: &Window, k: usize) -> u64 {
        let bytes = _mm_packs_epi16(octet(w, ws, k), octet(w, ws, k + 8));
        let ones = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(1));
        // The mask has 16 bits.
        u64::from(_mm_movemask_epi8(ones) as u32 & 0xffff)
    }

    /// Pairs `k..k + 8` as 16 bytes, (low, high) half of each difference
    /// `ws[k + 1 + i] - w[k + i]` saturated to a byte.
    #[target_feature(enable = "sse2")]
    #[inline]
    fn octet(w: &Window, ws: &Window, k: usize) -> __m128i {
        let a = _mm_packs_epi32(diff(w, ws, k), diff(w, ws, k + 2));
        let b = _mm_packs_epi32(diff(w, ws, k + 4), diff(w, ws, k + 6));
        _mm_packs_epi16(a, b)
    }

    /// The differences of pairs `k` and `k + 1`: `ws[k + 1 + i] - w[k + i]`.
    #[target_feature(enable = "sse2")]
    #[inline]
    fn diff(w: &Window, ws: &Window, k: usize) -> __m128i {
        let at = |w: &Window, i: usize| w.get(i).map_or(0, |p| p.raw() as i64);
        // Two neighbouring elements each: LLVM loads them as one vector.
        let x = _mm_set_epi64x(at(w, k + 1), at(w, k));
        let y = _mm_set_epi64x(at(ws, k + 2), at(ws, k + 1));
        _mm_sub_epi64(y, x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::append::SgAppendTable;
    use crate::error::SgError;
    use crate::kind::SegKind;
    use crate::pages::{scan_blocks, PageSource};
    use crate::table::SgTable;
    use crate::PAGE_SIZE;
    use alloc::vec;
    use alloc::vec::Vec;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    /// The definition, pair by pair.
    fn naive(w: &Window) -> u64 {
        let mut m = 0;
        for k in 0..BLOCK {
            if w[k + 1].raw() != w[k].raw().wrapping_add(1) {
                m |= 1 << k;
            }
        }
        m
    }

    /// Differences that a narrowing compare could confuse with 1: every
    /// value whose low half is 1 but whose high half is not 0, halves that
    /// saturate to 1 or 0 only if exact (1 + 2^8, 1 + 2^16, ...), and the
    /// wrap from `u64::MAX` to 0 (which continues, as Linux's `+ 1` does).
    const TRICKY: [u64; 16] = [
        1,
        0,
        2,
        u64::MAX,
        1 | 1 << 8,
        1 | 1 << 16,
        1 | 1 << 31,
        1 | 1 << 32,
        1 | 1 << 40,
        1 | 1 << 48,
        1 | 1 << 63,
        0xffff_ffff_0000_0001,
        0x0000_0001_0000_0000,
        0xffff_ffff,
        0x7fff,
        0x8001,
    ];

    /// Pages whose neighbour differences are drawn from `TRICKY`, from
    /// random values, or are 1 with probability `cont`.
    fn tricky_pages(rng: &mut SmallRng, n: usize, start: u64, cont: f64) -> Vec<Pfn> {
        let mut p = start;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(Pfn::new(p));
            let d = if rng.gen_bool(cont) {
                1
            } else if rng.gen_bool(0.5) {
                TRICKY[rng.gen_range(0..TRICKY.len())]
            } else {
                rng.gen()
            };
            p = p.wrapping_add(d);
        }
        v
    }

    fn window(v: &[Pfn]) -> &Window {
        <&Window>::try_from(v).unwrap()
    }

    #[test]
    fn kernels_agree_with_the_definition_on_every_block() {
        let mut rng = SmallRng::seed_from_u64(0x5ca7_7e25);
        for round in 0..20_000 {
            let cont = [0.0, 0.5, 0.9, 0.98, 1.0][round % 5];
            let start = match round % 4 {
                0 => rng.gen(),
                1 => u64::MAX - rng.gen_range(0..80),
                2 => rng.gen_range(0..80),
                _ => rng.gen_range(0..1 << 40),
            };
            let v = tricky_pages(&mut rng, BLOCK + 1, start, cont);
            let w = window(&v);
            let want = naive(w);
            assert_eq!(breaks(w), want, "build kernel, pages {v:?}");
            assert_eq!(portable::breaks(w), want, "portable kernel, pages {v:?}");
        }
        // All continuing, all breaking, and one break at each position.
        let run: Vec<Pfn> = (0..=BLOCK as u64)
            .map(|i| Pfn::new((u64::MAX - 30).wrapping_add(i)))
            .collect();
        assert_eq!(breaks(window(&run)), 0, "a run across the wrap");
        let same = vec![Pfn::new(7); BLOCK + 1];
        assert_eq!(breaks(window(&same)), u64::MAX);
        for k in 0..BLOCK {
            for d in TRICKY.iter().filter(|&&d| d != 1) {
                let mut v = run.clone();
                for p in &mut v[k + 1..] {
                    *p = Pfn::new(p.raw().wrapping_add(d.wrapping_sub(1)));
                }
                let w = window(&v);
                assert_eq!(breaks(w), 1 << k, "break {d:#x} at pair {k}");
                assert_eq!(portable::breaks(w), 1 << k, "break {d:#x} at pair {k}");
            }
        }
    }

    /// RAM pages scanned with the portable kernel: the reference for whole
    /// tables (the build's `[Pfn]` scan uses the SSE2 kernel on x86_64).
    struct Portable<'a>(&'a [Pfn]);

    impl PageSource for Portable<'_> {
        fn page_count(&self) -> usize {
            self.0.len()
        }
        fn pfn(&self, i: usize) -> Pfn {
            self.0.pfn(i)
        }
        fn kind(&self, _i: usize) -> SegKind {
            SegKind::Ram
        }
        fn run_starts<F: FnMut(usize, Pfn)>(&self, from: usize, to: usize, sink: F) {
            scan_blocks(self.0, from, to, portable::breaks, sink);
        }
    }

    fn starts(src: &(impl PageSource + ?Sized), from: usize, to: usize) -> Vec<(usize, Pfn)> {
        let mut v = vec![];
        src.run_starts(from, to, |i, p| v.push((i, p)));
        v
    }

    /// One table built three ways: the build's scan, the portable kernel,
    /// and the generic page-by-page scan (pages given with their kinds).
    fn tables(pfns: &[Pfn], ms: u64) -> [Result<SgTable, SgError>; 3] {
        let size = pfns.len() as u64 * PAGE_SIZE;
        let kinds: Vec<(Pfn, SegKind)> = pfns.iter().map(|&p| (p, SegKind::Ram)).collect();
        let portable = {
            let mut t = SgAppendTable::new();
            t.append_from(&Portable(pfns), 0, size, ms, 0)
                .map(|()| t.into_table())
        };
        [
            SgTable::from_pages(pfns, 0, size, ms),
            portable,
            SgTable::from_pages_kinds(&kinds, 0, size, ms),
        ]
    }

    #[test]
    fn scans_and_tables_agree_across_kernels() {
        let mut rng = SmallRng::seed_from_u64(0x007a_b1e5);
        let kinds_of =
            |v: &[Pfn]| -> Vec<(Pfn, SegKind)> { v.iter().map(|&p| (p, SegKind::Ram)).collect() };
        // Lengths around the group (8), block (64) and superblock (512)
        // sizes, plus empty and one page.
        let lens = [
            0usize, 1, 2, 7, 8, 9, 63, 64, 65, 66, 129, 511, 512, 513, 514, 1100, 4099,
        ];
        for round in 0..600 {
            let n = lens[round % lens.len()];
            let cont = [0.0, 0.7, 0.97, 1.0][round % 4];
            let start = match round % 3 {
                0 => rng.gen_range(0..1 << 30),
                1 => u64::MAX - rng.gen_range(0..2 * n as u64 + 1),
                _ => rng.gen(),
            };
            let v = tricky_pages(&mut rng, n, start, cont);
            let k = kinds_of(&v);
            for (from, to) in [(0, n), (1.min(n), n), (n / 3, n - n / 5)] {
                let want = starts(&k[..], from, to);
                assert_eq!(
                    starts(&v[..], from, to),
                    want,
                    "build scan {from}..{to} of {n}"
                );
                assert_eq!(
                    starts(&Portable(&v), from, to),
                    want,
                    "portable {from}..{to}"
                );
            }
            if n == 0 {
                continue;
            }
            for ms in [u64::MAX, 3 * PAGE_SIZE, PAGE_SIZE] {
                let [fast, portable, generic] = tables(&v, ms);
                assert_eq!(fast, generic, "{n} pages, cont {cont}, ms {ms:#x}");
                assert_eq!(portable, generic, "{n} pages, cont {cont}, ms {ms:#x}");
            }
        }
        // Very long runs (one entry up to max_segment, one across a
        // superblock edge) and runs of one page each.
        let long: Vec<Pfn> = (0..20_000u64).map(|i| Pfn::new(0x10_0000 + i)).collect();
        let ones: Vec<Pfn> = (0..3000u64).map(|i| Pfn::new(3 * i)).collect();
        let mut two = long.clone();
        two[10_000..]
            .iter_mut()
            .for_each(|p| *p = Pfn::new(p.raw() + 9));
        for v in [&long, &ones, &two] {
            for ms in [u64::MAX, 64 * PAGE_SIZE] {
                let [fast, portable, generic] = tables(v, ms);
                assert!(generic.is_ok());
                assert_eq!(fast, generic);
                assert_eq!(portable, generic);
            }
        }
        assert_eq!(tables(&long, u64::MAX)[0].as_ref().unwrap().orig_nents(), 1);
        assert_eq!(
            tables(&ones, u64::MAX)[0].as_ref().unwrap().orig_nents(),
            3000
        );
    }
}
