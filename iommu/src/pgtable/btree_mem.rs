//! [`BTreeMem`]: a `no_std + alloc` table-memory store.
//!
//! Page frames live in an `alloc::collections::BTreeMap` keyed by frame
//! number (absent frames read as zero), handed out by the same frame allocator
//! as the std simulated RAM (`dma_api::frame_pool::FramePool`). Same policy,
//! same addresses: a table built on
//! either store has the same bytes at the same places, which the
//! `pgtable_nostd_mem` test checks.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

use scatterlist::{PhysAddr, PAGE_SHIFT, PAGE_SIZE};

use super::frame_pool::FramePool;
use super::{FrameStore, MemError};
use crate::walker::WalkMem;

type Page = Box<[u8; PAGE_SIZE as usize]>;

/// Sparse page-frame store plus a frame allocator over `[pool_base, pool_end)`.
pub struct BTreeMem {
    pages: BTreeMap<u64, Page>,
    frames: FramePool,
}

impl fmt::Debug for BTreeMem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BTreeMem")
            .field("resident_pages", &self.pages.len())
            .field("live_frame_bytes", &self.frames.live_bytes())
            .finish()
    }
}

impl Default for BTreeMem {
    fn default() -> Self {
        Self::new()
    }
}

impl BTreeMem {
    /// Default frame pool: 1 GiB at 1 GiB (the std simulated RAM's default),
    /// so table addresses fit even a 32-bit output address size.
    pub const DEFAULT_POOL: (PhysAddr, u64) = (PhysAddr::new(0x4000_0000), 0x4000_0000);

    /// Empty memory with the default frame pool.
    pub fn new() -> Self {
        Self::with_pool(Self::DEFAULT_POOL.0, Self::DEFAULT_POOL.1)
    }

    /// Empty memory whose allocator hands out frames from `[base, base + len)`
    /// (both rounded down to pages; a wrapping pool is clipped).
    pub fn with_pool(base: PhysAddr, len: u64) -> Self {
        Self {
            pages: BTreeMap::new(),
            frames: FramePool::new(base, len),
        }
    }

    /// Bytes currently allocated as frames.
    pub fn live_frame_bytes(&self) -> u64 {
        self.frames.live_bytes()
    }

    /// Number of live frame blocks.
    pub fn live_frame_blocks(&self) -> usize {
        self.frames.live_blocks()
    }

    /// Whether `addr` starts a live frame block.
    pub fn is_allocated(&self, addr: PhysAddr) -> bool {
        self.frames.is_allocated(addr)
    }

    /// Pages that hold non-zero-initialised data.
    pub fn resident_pages(&self) -> usize {
        self.pages.len()
    }
}

impl WalkMem for BTreeMem {
    #[inline]
    fn read_u64(&self, addr: PhysAddr) -> u64 {
        let a = addr.raw() & !7;
        let off = (a & (PAGE_SIZE - 1)) as usize;
        let mut b = [0u8; 8];
        if let Some(src) = self
            .pages
            .get(&(a >> PAGE_SHIFT))
            .and_then(|p| p.get(off..off + 8))
        {
            b.copy_from_slice(src);
        }
        u64::from_le_bytes(b)
    }
}

impl FrameStore for BTreeMem {
    #[inline]
    fn write_u64(&mut self, addr: PhysAddr, val: u64) {
        let a = addr.raw() & !7;
        let off = (a & (PAGE_SIZE - 1)) as usize;
        let pfn = a >> PAGE_SHIFT;
        if val == 0 && !self.pages.contains_key(&pfn) {
            return; // stay sparse: zero is what an absent page reads as
        }
        let page = self
            .pages
            .entry(pfn)
            .or_insert_with(|| Box::new([0u8; PAGE_SIZE as usize]));
        if let Some(dst) = page.get_mut(off..off + 8) {
            dst.copy_from_slice(&val.to_le_bytes());
        }
    }

    fn alloc_frames(&mut self, bytes: u64) -> Result<PhysAddr, MemError> {
        self.frames.alloc(bytes)
    }

    fn free_frames(&mut self, addr: PhysAddr) -> Result<(), MemError> {
        let pages = self.frames.free(addr)?;
        let first = addr.raw() >> PAGE_SHIFT;
        let keys: Vec<u64> = self
            .pages
            .range(first..first.saturating_add(pages))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.pages.remove(&k);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_aligned_zeroed_and_reused() {
        let mut m = BTreeMem::with_pool(PhysAddr::new(0x10_0000), 0x10_0000);
        let a = m.alloc_frames(4096).unwrap();
        assert_eq!(a, PhysAddr::new(0x10_0000));
        let b = m.alloc_frames(0x10000).unwrap();
        assert_eq!(b, PhysAddr::new(0x11_0000));
        m.write_u64(PhysAddr::new(a.raw() + 0x18), 0x0102_0304_0506_0708);
        assert_eq!(
            m.read_u64(PhysAddr::new(a.raw() + 0x1f)),
            0x0102_0304_0506_0708
        );
        m.free_frames(a).unwrap();
        assert_eq!(m.free_frames(a), Err(MemError::NotAllocated { addr: a }));
        assert_eq!(m.resident_pages(), 0);
        // LIFO reuse of the freed page, contents gone.
        let c = m.alloc_frames(4096).unwrap();
        assert_eq!(c, a);
        assert_eq!(m.read_u64(PhysAddr::new(c.raw() + 0x18)), 0);
        assert_eq!(
            m.alloc_frames(3 * 4096),
            Err(MemError::BadFrameSize { bytes: 3 * 4096 })
        );
        assert_eq!(
            m.alloc_frames(0x20_0000),
            Err(MemError::OutOfFrames { bytes: 0x20_0000 })
        );
        assert_eq!(m.live_frame_bytes(), 0x10000 + 4096);
        assert_eq!(m.live_frame_blocks(), 2);
        assert!(m.is_allocated(b));
    }
}
