//! The SSE2 kernel: the build's kernel on x86_64, whose baseline has SSE2.

use super::Window;
use core::arch::x86_64::{
    __m128i, _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_packs_epi16, _mm_packs_epi32, _mm_set1_epi8,
    _mm_set_epi64x, _mm_sub_epi64,
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
