//! The frame pool's pages as 64-bit atomic words, reachable without the RAM
//! lock.
//!
//! Page tables live in the simulated RAM's frame pool, and the hardware walker
//! and the fabric read them there through the shared RAM lock. The table
//! writer, though, is one of many users of that lock and pays it on every
//! call. Like a CPU storing PTEs with `WRITE_ONCE` while the IOMMU reads them
//! (drivers/iommu/generic_pt/pt_defs.h), the writer here stores entries
//! straight into the pool's pages as atomic words: the same bytes every
//! other user reads through [`PhysMem`](super::PhysMem), with no lock.
//!
//! Layout: a two-level directory (2 MiB chunks of 512 frames, each frame 512
//! words) filled lazily and never shrunk while the memory lives, so a frame
//! once reached stays valid; a freed frame is zeroed, not dropped. Stores are
//! `Release` and loads `Acquire`, so a walker that sees a table pointer also
//! sees the table's zeroed contents (plain moves on x86).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use scatterlist::{PAGE_SHIFT, PAGE_SIZE};

/// Words per 4 KiB frame.
pub(crate) const WORDS: usize = (PAGE_SIZE / 8) as usize;
/// log2 of the frames per directory chunk.
const CHUNK_SHIFT: u32 = 9;
/// Frames per directory chunk.
const CHUNK_FRAMES: usize = 1 << CHUNK_SHIFT;
/// The directory covers at most this many bytes of a pool (the rest of a
/// larger pool is kept by the RAM's page map, behind its lock).
const MAX_COVERED: u64 = 64 << 30;

/// One 4 KiB frame as words. Shared (`Arc`) so that a table writer can keep
/// the frame it is filling at hand ([`SharedTableMem`](super::SharedTableMem)):
/// a frame, once materialised, is never dropped or moved while the pool lives.
pub(crate) type Frame = [AtomicU64; WORDS];
type Chunk = [OnceLock<Arc<Frame>>; CHUNK_FRAMES];

/// The word of `frame` holding the 8-byte aligned `addr` (low bits ignored).
#[inline]
pub(crate) fn word(frame: &Frame, addr: u64) -> &AtomicU64 {
    &frame[(addr as usize >> 3) & (WORDS - 1)]
}

/// The covered part of a frame pool, `[base, end)`, as atomic words.
#[derive(Debug)]
pub(crate) struct PoolPages {
    base: u64,
    end: u64,
    chunks: Box<[OnceLock<Box<Chunk>>]>,
}

impl PoolPages {
    /// Pages for `[base, end)` (page aligned; at most [`MAX_COVERED`] bytes
    /// from `base` are covered).
    pub(crate) fn new(base: u64, end: u64) -> Self {
        let end = base.saturating_add(end.saturating_sub(base).min(MAX_COVERED));
        let frames = (end - base) >> PAGE_SHIFT;
        let chunks = usize::try_from(frames.div_ceil(CHUNK_FRAMES as u64)).unwrap_or(0);
        Self {
            base,
            end,
            chunks: (0..chunks).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Whether `addr` lies in the covered part of the pool.
    #[inline]
    pub(crate) fn covers(&self, addr: u64) -> bool {
        addr >= self.base && addr < self.end
    }

    /// Frame index of `addr` in the covered part, if it is covered.
    #[inline]
    fn index(&self, addr: u64) -> Option<usize> {
        if self.covers(addr) {
            usize::try_from((addr - self.base) >> PAGE_SHIFT).ok()
        } else {
            None
        }
    }

    #[inline]
    fn frame_arc(&self, i: usize) -> Option<&Arc<Frame>> {
        let chunk = self.chunks.get(i >> CHUNK_SHIFT)?.get()?;
        chunk[i & (CHUNK_FRAMES - 1)].get()
    }

    #[inline]
    fn frame(&self, i: usize) -> Option<&Frame> {
        self.frame_arc(i).map(|f| &**f)
    }

    fn frame_or_insert(&self, i: usize) -> Option<&Frame> {
        let chunk = self
            .chunks
            .get(i >> CHUNK_SHIFT)?
            .get_or_init(|| Box::new(core::array::from_fn(|_| OnceLock::new())));
        Some(
            chunk[i & (CHUNK_FRAMES - 1)]
                .get_or_init(|| Arc::new(core::array::from_fn(|_| AtomicU64::new(0)))),
        )
    }

    /// The materialised frame holding `addr`, if covered and materialised.
    #[inline]
    pub(crate) fn frame_at(&self, addr: u64) -> Option<&Arc<Frame>> {
        self.frame_arc(self.index(addr)?)
    }

    /// Materialises the covered page at `addr` (an allocated table frame:
    /// its writer then finds it without the lazy first-store path).
    pub(crate) fn materialize(&self, addr: u64) {
        if let Some(i) = self.index(addr) {
            let _ = self.frame_or_insert(i);
        }
    }

    /// The word at the 8-byte aligned `addr` (low bits ignored); `None` if
    /// `addr` is not covered, 0 for a frame never written.
    #[inline]
    pub(crate) fn read_u64(&self, addr: u64) -> Option<u64> {
        let i = self.index(addr)?;
        Some(self.frame(i).map_or(0, |f| {
            f[(addr as usize >> 3) & (WORDS - 1)].load(Ordering::Acquire)
        }))
    }

    /// Stores `val` at the 8-byte aligned `addr`; false if `addr` is not
    /// covered. A zero store to a frame never written keeps it absent.
    #[inline]
    pub(crate) fn write_u64(&self, addr: u64, val: u64) -> bool {
        let Some(i) = self.index(addr) else {
            return false;
        };
        let w = (addr as usize >> 3) & (WORDS - 1);
        match self.frame(i) {
            Some(f) => f[w].store(val, Ordering::Release),
            None if val == 0 => {}
            None => self.store_new(i, w, val),
        }
        true
    }

    /// The first store into a frame: materialises it.
    #[cold]
    #[inline(never)]
    fn store_new(&self, i: usize, w: usize, val: u64) {
        if let Some(f) = self.frame_or_insert(i) {
            f[w].store(val, Ordering::Release);
        }
    }

    /// Copies bytes of one covered page starting at `addr` into `buf` (which
    /// must not cross the page end).
    pub(crate) fn read_bytes(&self, addr: u64, buf: &mut [u8]) {
        let Some(f) = self.index(addr).and_then(|i| self.frame(i)) else {
            buf.fill(0);
            return;
        };
        for (a, b) in (addr..).zip(buf.iter_mut()) {
            let word = f[(a as usize >> 3) & (WORDS - 1)].load(Ordering::Acquire);
            *b = word.to_le_bytes()[(a & 7) as usize];
        }
    }

    /// Writes `buf` into one covered page starting at `addr` (not crossing the
    /// page end); each touched word is updated atomically.
    pub(crate) fn write_bytes(&self, addr: u64, buf: &[u8]) {
        let Some(f) = self.index(addr).and_then(|i| self.frame_or_insert(i)) else {
            return;
        };
        let mut a = addr;
        let mut rest = buf;
        while !rest.is_empty() {
            let off = (a & 7) as usize;
            let n = (8 - off).min(rest.len());
            let word = &f[(a as usize >> 3) & (WORDS - 1)];
            if n == 8 {
                let mut b = [0u8; 8];
                b.copy_from_slice(&rest[..8]);
                word.store(u64::from_le_bytes(b), Ordering::Release);
            } else {
                let _ = word.fetch_update(Ordering::AcqRel, Ordering::Acquire, |old| {
                    let mut b = old.to_le_bytes();
                    b[off..off + n].copy_from_slice(&rest[..n]);
                    Some(u64::from_le_bytes(b))
                });
            }
            rest = &rest[n..];
            a += n as u64;
        }
    }

    /// Zeroes the covered page at `addr` (a freed frame reads as zero again).
    pub(crate) fn zero_page(&self, addr: u64) {
        if let Some(f) = self.index(addr).and_then(|i| self.frame(i)) {
            for w in f {
                w.store(0, Ordering::Release);
            }
        }
    }

    /// Frames materialised so far.
    pub(crate) fn resident(&self) -> usize {
        self.chunks
            .iter()
            .filter_map(OnceLock::get)
            .map(|c| c.iter().filter(|f| f.get().is_some()).count())
            .sum()
    }
}
