//! A power-of-two page-frame allocator over a fixed physical pool.
//!
//! Shared by the std simulated RAM ([`crate::mem::PhysMem`]) and the `no_std`
//! table stores of `dma-iommu`, so both hand out the same frames for the same
//! requests (a table built on either has the same bytes at the same
//! addresses). Policy: a bump pointer over `[base, end)`, each block aligned
//! to its size, the alignment padding returned as single pages, LIFO free
//! lists per order. Page contents are the store's business, not the pool's.

use super::MemError;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use scatterlist::{PhysAddr, PAGE_SIZE};

/// Frame allocator state. `no_std + alloc`.
#[derive(Clone, Debug, Default)]
pub struct FramePool {
    end: u64,
    bump: u64,
    /// Free blocks by log2(pages).
    free: Vec<Vec<u64>>,
    /// Allocated blocks: start -> log2(pages).
    live: BTreeMap<u64, u32>,
    live_bytes: u64,
}

impl FramePool {
    /// A pool over `[base, base + len)`, both rounded down to pages; a pool
    /// that would wrap is clipped at the top of the address space.
    pub fn new(base: PhysAddr, len: u64) -> Self {
        let b = base.raw() & !(PAGE_SIZE - 1);
        let e = b.saturating_add(len) & !(PAGE_SIZE - 1);
        Self {
            end: e,
            bump: b,
            ..Self::default()
        }
    }

    /// Allocates a block of `bytes` (a power of two, at least one page; less
    /// is rounded up to a page), aligned to its size.
    pub fn alloc(&mut self, bytes: u64) -> Result<PhysAddr, MemError> {
        let bytes = bytes.max(PAGE_SIZE);
        if !bytes.is_power_of_two() {
            return Err(MemError::BadFrameSize { bytes });
        }
        let order = (bytes / PAGE_SIZE).trailing_zeros();
        let start = match self.free.get_mut(order as usize).and_then(Vec::pop) {
            Some(s) => s,
            None => {
                let s = self
                    .bump
                    .checked_add(bytes - 1)
                    .map(|x| x & !(bytes - 1))
                    .filter(|s| s.checked_add(bytes).is_some_and(|e| e <= self.end))
                    .ok_or(MemError::OutOfFrames { bytes })?;
                // Alignment padding below `s` goes to the page-size free list.
                let mut pad = self.bump;
                while pad < s {
                    self.push_free(pad, 0);
                    pad += PAGE_SIZE;
                }
                self.bump = s + bytes;
                s
            }
        };
        self.live.insert(start, order);
        self.live_bytes += bytes;
        Ok(PhysAddr::new(start))
    }

    /// Returns the block starting at `addr`; answers how many pages it had, so
    /// the store can drop their contents.
    pub fn free(&mut self, addr: PhysAddr) -> Result<u64, MemError> {
        let order = self
            .live
            .remove(&addr.raw())
            .ok_or(MemError::NotAllocated { addr })?;
        let pages = 1u64 << order;
        self.live_bytes -= pages * PAGE_SIZE;
        self.push_free(addr.raw(), order);
        Ok(pages)
    }

    fn push_free(&mut self, start: u64, order: u32) {
        let o = order as usize;
        if self.free.len() <= o {
            self.free.resize_with(o + 1, Vec::new);
        }
        if let Some(list) = self.free.get_mut(o) {
            list.push(start);
        }
    }

    /// Whether `addr` starts a live block.
    pub fn is_allocated(&self, addr: PhysAddr) -> bool {
        self.live.contains_key(&addr.raw())
    }

    /// Bytes currently allocated.
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    /// Number of live blocks.
    pub fn live_blocks(&self) -> usize {
        self.live.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_blocks_padding_and_lifo_reuse() {
        let mut p = FramePool::new(PhysAddr::new(0x10_1000), 0x10_0000);
        assert_eq!(p.alloc(1), Ok(PhysAddr::new(0x10_1000)));
        // 64 KiB aligned: pages 0x10_2000..0x11_0000 become free padding.
        assert_eq!(p.alloc(0x10000), Ok(PhysAddr::new(0x11_0000)));
        assert_eq!(p.alloc(4096), Ok(PhysAddr::new(0x10_f000)));
        assert_eq!(p.free(PhysAddr::new(0x11_0000)), Ok(16));
        assert_eq!(
            p.free(PhysAddr::new(0x11_0000)),
            Err(MemError::NotAllocated {
                addr: PhysAddr::new(0x11_0000)
            })
        );
        assert_eq!(p.alloc(0x10000), Ok(PhysAddr::new(0x11_0000)));
        assert_eq!(
            p.alloc(3 * 4096),
            Err(MemError::BadFrameSize { bytes: 3 * 4096 })
        );
        assert_eq!(
            p.alloc(0x20_0000),
            Err(MemError::OutOfFrames { bytes: 0x20_0000 })
        );
        assert_eq!(p.live_blocks(), 3);
        assert_eq!(p.live_bytes(), 0x10000 + 2 * 4096);
    }
}
