//! The portable kernel, for every target without a vector kernel, and the
//! reference the vector kernels are tested against: a branch-free first pass
//! marks the 8-pair groups holding a break, then only those are tested pair
//! by pair.

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
