//! The AVX2 kernel, chosen at run time: AVX2 is not in the x86_64 baseline,
//! so std's cached CPU check decides, once per scan, whether the superblocks
//! are computed by a function compiled for AVX2.

use super::block_scan::Starts;
use super::Window;
use crate::addr::Pfn;
use core::arch::x86_64::{
    __m256i, _mm256_cmpeq_epi8, _mm256_movemask_epi8, _mm256_packs_epi16, _mm256_packs_epi32,
    _mm256_permute4x64_epi64, _mm256_set1_epi8, _mm256_set_epi64x, _mm256_setr_epi8,
    _mm256_shuffle_epi8, _mm256_sub_epi64,
};

/// The AVX2 superblock function (see [`super::block_scan`]) if this CPU has
/// AVX2 and POPCNT (every AVX2 CPU does) and the OS saves the AVX registers,
/// else `None`. std caches the checks.
#[allow(unsafe_code)]
#[inline]
pub(crate) fn superblock_fn() -> Option<impl Fn(&[Pfn], usize, &mut Starts) -> (usize, usize)> {
    (std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("popcnt")).then_some(
        |pages: &[Pfn], at, starts: &mut Starts| {
            // SAFETY: `superblock` requires AVX2 and POPCNT, which the run-time
            // checks above found on this CPU (std's detection also checks that
            // the OS enables the AVX register state); the closure exists only
            // after they passed. Nothing else is required: the function is
            // safe code reading `pages` and writing `starts` through safe
            // references.
            unsafe { superblock(pages, at, starts) }
        },
    )
}

/// One superblock with the AVX2 kernel inlined (the closure inherits this
/// function's target features) and the flattening counted by `popcnt`.
/// Only these are compiled for AVX2: the caller's sink stays in the caller.
#[target_feature(enable = "avx2,popcnt")]
fn superblock(pages: &[Pfn], at: usize, starts: &mut Starts) -> (usize, usize) {
    super::block_scan::superblock::<true>(pages, at, |w| breaks(w), starts)
}

/// [`breaks`] if this CPU has AVX2 (for the tests that hold every kernel to
/// the definition).
#[cfg(test)]
#[allow(unsafe_code)]
pub(crate) fn breaks_if_available(w: &Window) -> Option<u64> {
    // SAFETY: called only after the run-time check found AVX2.
    std::is_x86_feature_detected!("avx2").then(|| unsafe { breaks(w) })
}

/// [`super::breaks`] with AVX2, 32 pairs at a time. The SSE2 kernel's
/// narrowing (see [`super::sse2`]) on 256-bit vectors: eight vectors of four
/// 64-bit differences `y - x` are packed 64 -> 16 -> 8 -> one byte per pair
/// by seven signed saturating packs, which keeps the test exact (a value
/// saturates to 1 only if it was 1). AVX2 packs work within each 128-bit
/// lane, so the 32 bytes come out as pairs `0, 1, 4, 5, ..` in the low lane
/// and `2, 3, 6, 7, ..` in the high one; a qword permute and a byte shuffle
/// put them back in order before `vpmovmskb`. About half the loads and
/// vector operations per pair of the SSE2 kernel.
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) fn breaks(w: &Window) -> u64 {
    // Both vectors are read through opaque copies of the reference: as in
    // the SSE2 kernel this keeps them plain loads (without, LLVM built each
    // unshifted vector from a partial load, a permute, two blends and a
    // broadcast).
    let (w, ws) = (core::hint::black_box(w), core::hint::black_box(w));
    // The byte order that undoes the in-lane packs (see below).
    let order = _mm256_setr_epi8(
        0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15, //
        0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15,
    );
    // Bit j set iff pair `k + j` continues its run, for 32 pairs. A macro:
    // LLVM inlined neither a function nor a closure called twice here.
    macro_rules! thirty_two {
        ($k:expr) => {{
            let k = $k;
            let a = _mm256_packs_epi32(diff(w, ws, k), diff(w, ws, k + 4));
            let b = _mm256_packs_epi32(diff(w, ws, k + 8), diff(w, ws, k + 12));
            let c = _mm256_packs_epi32(diff(w, ws, k + 16), diff(w, ws, k + 20));
            let d = _mm256_packs_epi32(diff(w, ws, k + 24), diff(w, ws, k + 28));
            // Per lane, one (low, high) byte pair per pair of the block.
            let bytes = _mm256_packs_epi16(_mm256_packs_epi16(a, b), _mm256_packs_epi16(c, d));
            // Qwords (low lane low, high lane low, low lane high, high lane
            // high), then within each lane the 2-byte groups of the two
            // halves interleaved.
            let halves = _mm256_permute4x64_epi64::<0b11_01_10_00>(bytes);
            let ones = _mm256_cmpeq_epi8(_mm256_shuffle_epi8(halves, order), _mm256_set1_epi8(1));
            u64::from(_mm256_movemask_epi8(ones) as u32)
        }};
    }
    !(thirty_two!(0) | thirty_two!(32) << 32)
}

/// The differences of pairs `k..k + 4`: `ws[k + 1 + i] - w[k + i]`.
#[target_feature(enable = "avx2")]
#[inline]
fn diff(w: &Window, ws: &Window, k: usize) -> __m256i {
    let at = |w: &Window, i: usize| w.get(i).map_or(0, |p| p.raw() as i64);
    // Four neighbouring elements each: LLVM loads them as one vector.
    let x = _mm256_set_epi64x(at(w, k + 3), at(w, k + 2), at(w, k + 1), at(w, k));
    let y = _mm256_set_epi64x(at(ws, k + 4), at(ws, k + 3), at(ws, k + 2), at(ws, k + 1));
    _mm256_sub_epi64(y, x)
}
