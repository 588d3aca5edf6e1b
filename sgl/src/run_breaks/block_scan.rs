//! The block scan: run starts of RAM pages from a kernel's break masks.
//!
//! Blocks of [`BLOCK`] pairs are grouped in superblocks of [`SUPER`]. For
//! each superblock a *superblock function* (a kernel plus [`flatten`],
//! compiled together, for AVX2 in a function of its own) writes the
//! positions of the set bits into a list of run starts; the scan then reports
//! them in a counted loop. The split keeps the per-run sink (the table
//! builder) in its caller's frame, where its state stays in registers: a
//! sink compiled into the AVX2 function would carry it through memory.

use super::{Window, BLOCK};
use crate::addr::Pfn;

/// Blocks per superblock: the run starts of up to [`SUPER`] blocks are
/// collected before any is reported.
pub(crate) const SUPER: usize = 8;
/// Run starts a block writes unconditionally (more take a loop).
const EAGER: usize = 4;
/// Room for one superblock's run starts plus the unconditional writes.
pub(crate) const STARTS: usize = SUPER * BLOCK + EAGER;

/// Run starts of one superblock: positions `k` (page `at + k + 1` starts a
/// run), at most [`STARTS`] of which the first `n` count.
pub(crate) type Starts = [u16; STARTS];

/// The superblock of up to [`SUPER`] blocks of `pages` from `at`: writes the
/// pair positions with a break to `starts` and returns `(count, blocks)`;
/// `blocks < SUPER` when fewer than that many whole blocks were left.
/// Each block's mask is flattened without a branch per bit (the first
/// [`EAGER`] positions are written whether the bits exist or not; only the
/// count advances by what was there). `POPCNT`: the caller is compiled for a
/// CPU with a population-count instruction.
#[inline(always)]
pub(crate) fn superblock<const POPCNT: bool>(
    pages: &[Pfn],
    at: usize,
    breaks: impl Fn(&Window) -> u64,
    starts: &mut Starts,
) -> (usize, usize) {
    let window = |at: usize| {
        pages
            .get(at..at + BLOCK + 1)
            .and_then(|s| <&Window>::try_from(s).ok())
    };
    let mut n = 0;
    let mut blocks = 0;
    while let Some(w) = window(at + blocks * BLOCK).filter(|_| blocks < SUPER) {
        n = flatten::<POPCNT>(breaks(w), blocks * BLOCK, starts, n);
        blocks += 1;
    }
    (n, blocks)
}

/// [`PageSource::run_starts`](crate::PageSource::run_starts) over RAM pages
/// with a superblock function (the CPU's kernel, or in tests each kernel in
/// turn). The sink is called once per run start, per superblock in a
/// counted loop: a data-dependent loop per block would mispredict its exit
/// about once per block.
#[inline(always)]
pub(crate) fn scan_blocks<F: FnMut(usize, Pfn)>(
    pfns: &[Pfn],
    from: usize,
    to: usize,
    superblock: impl Fn(&[Pfn], usize, &mut Starts) -> (usize, usize),
    mut sink: F,
) {
    let Some(pages) = pfns.get(from..to) else {
        return;
    };
    let Some(&first) = pages.first() else {
        return;
    };
    sink(from, first);
    // Pair `at + k` is (pages[at + k], pages[at + k + 1]): page `at + k + 1`.
    let mut at = 0;
    let mut starts = [0u16; STARTS];
    loop {
        let (n, blocks) = superblock(pages, at, &mut starts);
        for &k in starts.get(..n).unwrap_or_default() {
            let i = at + usize::from(k) + 1;
            if let Some(&p) = pages.get(i) {
                sink(from + i, p);
            }
        }
        at += blocks * BLOCK;
        if blocks < SUPER {
            break;
        }
    }
    let Some(rest) = pages.get(at..) else {
        return;
    };
    for (k, pq) in rest.windows(2).enumerate() {
        if let [p, q] = pq {
            if q.raw() != p.raw().wrapping_add(1) {
                sink(from + at + k + 1, *q);
            }
        }
    }
}

/// Appends the set bits of `m`, plus `base`, to `starts[..n]`; returns the
/// new count. `n <= base` (at most one start per pair before this block).
/// `POPCNT`: the code is compiled for a CPU with a population count.
#[inline(always)]
fn flatten<const POPCNT: bool>(
    mut m: u64,
    base: usize,
    starts: &mut Starts,
    mut n: usize,
) -> usize {
    // Positions stay below SUPER * BLOCK + 64 <= u16::MAX.
    let pos = |m: u64| (base + m.trailing_zeros() as usize) as u16;
    if let Some(eager) = starts.get_mut(n..n + EAGER) {
        if POPCNT {
            // One population count: summing `m != 0` per write is what LLVM
            // vectorises (badly) when compiling for AVX2.
            let bits = (m.count_ones() as usize).min(EAGER);
            for s in eager {
                *s = pos(m);
                m &= m.wrapping_sub(1);
            }
            n += bits;
        } else {
            // Without a popcount instruction, a count per write is cheaper.
            for s in eager {
                *s = pos(m);
                n += usize::from(m != 0);
                m &= m.wrapping_sub(1);
            }
        }
    }
    while m != 0 {
        if let Some(s) = starts.get_mut(n) {
            *s = pos(m);
        }
        n += 1;
        m &= m - 1;
    }
    n
}
