//! Run breaks: which neighbour pages of a block do not continue a run.
//!
//! The page builder's hot loop asks, for every neighbour pair, Linux's
//! `pages_are_mergeable` frame test (`lib/scatterlist.c`): does `pfn[i]` equal
//! `pfn[i - 1] + 1`? A kernel answers it for a whole block of [`BLOCK`] pairs
//! at once as a bitmask, so the scan only walks the set bits (about one per
//! run). Three kernels give identical run starts:
//!
//! - [`sse2`] on x86_64: the 64-bit differences narrowed to one byte per pair
//!   by saturating packs, then `pmovmskb`. SSE2 is in the x86_64 baseline, so
//!   it is the build's kernel there ([`breaks`]);
//! - [`avx2`] on x86_64 with `std`: the same packs on 256-bit vectors, half
//!   the loads and instructions per pair. AVX2 is not in the baseline, so
//!   [`scan()`] asks the CPU at run time (as Linux picks its RAID-6 and XOR
//!   routines by CPU feature) and then computes each superblock of run
//!   starts in a function compiled for AVX2 ([`block_scan::superblock`]);
//! - [`portable`] everywhere else: a branch-free pass marks the 8-pair groups
//!   of a whole superblock holding a break, then only those are tested pair
//!   by pair.
//!
//! Portable code cannot get `pmovmskb` (LLVM builds a bitmask from per-lane
//! bit constants and horizontal ORs), and intrinsics may be called without
//! `unsafe` only inside a `#[target_feature]` function, which in turn needs
//! `unsafe` to be called from plain code. So each vector kernel is safe code
//! behind one `unsafe` call whose proof is either the build's baseline (SSE2)
//! or the run-time check (AVX2): the crate's only two outside its tests
//! (RFC §5.1 "Speed").

use crate::addr::Pfn;

#[cfg(all(feature = "std", target_arch = "x86_64"))]
pub(crate) mod avx2;
// Without a vector kernel the block scan serves only the tests.
#[cfg_attr(
    not(all(target_arch = "x86_64", target_feature = "sse2")),
    allow(dead_code)
)]
pub(crate) mod block_scan;
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2", not(test)),
    allow(dead_code)
)]
pub(crate) mod portable;
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
pub(crate) mod sse2;
#[cfg(test)]
mod tests;

/// Neighbour pairs per block: one bit each of a `u64`.
pub(crate) const BLOCK: usize = 64;

/// The pages of one block: pair `k` is `(w[k], w[k + 1])`.
#[cfg_attr(
    not(all(target_arch = "x86_64", target_feature = "sse2")),
    allow(dead_code)
)]
pub(crate) type Window = [Pfn; BLOCK + 1];

/// The build's baseline kernel: bit `k` set iff `w[k + 1] != w[k] + 1`
/// (wrapping), i.e. page `k + 1` of the window starts a run.
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

/// [`PageSource::run_starts`](crate::PageSource::run_starts) for RAM pages
/// with the fastest kernel this CPU has: AVX2 when the run-time check finds
/// it, else the build's baseline kernel (SSE2), else the portable scan.
#[inline]
pub(crate) fn scan<F: FnMut(usize, Pfn)>(pfns: &[Pfn], from: usize, to: usize, sink: F) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if let Some(avx2) = avx2::superblock_fn() {
        return block_scan::scan_blocks(pfns, from, to, avx2, sink);
    }
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    block_scan::scan_blocks(
        pfns,
        from,
        to,
        |p, at, s| block_scan::superblock::<false>(p, at, breaks, s),
        sink,
    );
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    portable::scan(pfns, from, to, sink);
}
