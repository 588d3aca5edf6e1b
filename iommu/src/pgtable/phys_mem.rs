//! The std store of physical memory: the frames IOMMU page tables live in,
//! and (in the simulator) the machine's RAM.
//!
//! The page-table writer and the hardware walker must talk to each other only
//! through bytes in "RAM", exactly like a real IOMMU reads tables the CPU wrote.
//! [`PhysMem`] is a sparse byte store keyed by 4 KiB page frame (unwritten
//! memory reads as zero) plus a frame allocator for table pages. A later fabric
//! reuses it as RAM backing for data, so it is deliberately a small, plain type:
//! `read`/`write` of byte slices at a [`PhysAddr`], and little-endian `u64`
//! helpers for table entries.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, RwLock};

use super::frame_pool::FramePool;
use super::pool_pages::PoolPages;
use super::MemError;
use scatterlist::{PhysAddr, PAGE_SHIFT, PAGE_SIZE};

/// Memory shared by the machine's RAM users: page-table writers, the IOMMU
/// walker, bounce buffers and the fabric.
pub type SharedMem = Arc<RwLock<PhysMem>>;

/// A cheap multiplicative hasher for page-frame numbers (SipHash is needlessly
/// slow for integer keys that are not attacker controlled here).
#[derive(Default, Clone, Copy)]
pub struct PfnHasher(u64);

impl Hasher for PfnHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ (v >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type PageMap = HashMap<u64, Box<[u8; PAGE_SIZE as usize]>, BuildHasherDefault<PfnHasher>>;

/// Sparse simulated physical memory plus a power-of-two frame allocator over a
/// fixed pool `[pool_base, pool_end)`.
///
/// The pool's pages (where page tables live) are kept as atomic words in a
/// pool shared with the page-table writers
/// ([`SharedTableMem`](super::SharedTableMem)), so they store entries without
/// this memory's lock while every reader here sees the same bytes.
pub struct PhysMem {
    pages: PageMap,
    pool: Arc<PoolPages>,
    pool_base: u64,
    pool_end: u64,
    frames: FramePool,
}

impl fmt::Debug for PhysMem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhysMem")
            .field("resident_pages", &self.resident_pages())
            .field("pool", &(self.pool_base..self.pool_end))
            .field("live_frame_bytes", &self.frames.live_bytes())
            .finish()
    }
}

impl Default for PhysMem {
    fn default() -> Self {
        Self::new()
    }
}

impl PhysMem {
    /// Default frame pool: 1 GiB at 1 GiB, so table addresses fit even a
    /// 32-bit output address size (ARM LPAE `oas = 32`).
    pub const DEFAULT_POOL: (PhysAddr, u64) = (PhysAddr::new(0x4000_0000), 0x4000_0000);

    /// Empty memory with the default frame pool.
    pub fn new() -> Self {
        Self::with_pool(Self::DEFAULT_POOL.0, Self::DEFAULT_POOL.1)
    }

    /// Empty memory whose frame allocator hands out frames from
    /// `[base, base + len)` (both rounded to pages; a wrapping pool is clipped).
    pub fn with_pool(base: PhysAddr, len: u64) -> Self {
        let b = base.raw() & !(PAGE_SIZE - 1);
        let e = b.saturating_add(len) & !(PAGE_SIZE - 1);
        Self {
            pages: PageMap::default(),
            pool: Arc::new(PoolPages::new(b, e)),
            pool_base: b,
            pool_end: e,
            frames: FramePool::new(base, len),
        }
    }

    /// The pool's pages, for a table writer that stores entries without the
    /// lock of the [`SharedMem`] this memory sits in.
    pub(crate) fn pool_pages(&self) -> Arc<PoolPages> {
        Arc::clone(&self.pool)
    }

    #[inline]
    fn page(&self, pfn: u64) -> Option<&[u8; PAGE_SIZE as usize]> {
        self.pages.get(&pfn).map(|b| &**b)
    }

    #[inline]
    fn page_mut(&mut self, pfn: u64) -> &mut [u8; PAGE_SIZE as usize] {
        self.pages
            .entry(pfn)
            .or_insert_with(|| Box::new([0u8; PAGE_SIZE as usize]))
    }

    fn drop_page(&mut self, pfn: u64) {
        let a = pfn << PAGE_SHIFT;
        if self.pool.covers(a) {
            self.pool.zero_page(a);
        } else {
            self.pages.remove(&pfn);
        }
    }

    fn span(addr: PhysAddr, len: u64) -> Result<(), MemError> {
        if len != 0 && addr.raw().checked_add(len - 1).is_none() {
            return Err(MemError::Overflow { addr, len });
        }
        Ok(())
    }

    /// Copies `buf.len()` bytes starting at `addr` into `buf`; memory never
    /// written reads as zero.
    pub fn read(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        Self::span(addr, buf.len() as u64)?;
        let mut a = addr.raw();
        let mut done = 0usize;
        while done < buf.len() {
            let off = (a & (PAGE_SIZE - 1)) as usize;
            let n = (PAGE_SIZE as usize - off).min(buf.len() - done);
            let dst = &mut buf[done..done + n];
            if self.pool.covers(a) {
                self.pool.read_bytes(a, dst);
                done += n;
                a = a.wrapping_add(n as u64);
                continue;
            }
            match self.page(a >> PAGE_SHIFT) {
                Some(p) => dst.copy_from_slice(&p[off..off + n]),
                None => dst.fill(0),
            }
            done += n;
            a = a.wrapping_add(n as u64);
        }
        Ok(())
    }

    /// Writes `buf` at `addr`, materialising pages as needed.
    pub fn write(&mut self, addr: PhysAddr, buf: &[u8]) -> Result<(), MemError> {
        Self::span(addr, buf.len() as u64)?;
        let mut a = addr.raw();
        let mut done = 0usize;
        while done < buf.len() {
            let off = (a & (PAGE_SIZE - 1)) as usize;
            let n = (PAGE_SIZE as usize - off).min(buf.len() - done);
            if self.pool.covers(a) {
                self.pool.write_bytes(a, &buf[done..done + n]);
            } else {
                let page = self.page_mut(a >> PAGE_SHIFT);
                page[off..off + n].copy_from_slice(&buf[done..done + n]);
            }
            done += n;
            a = a.wrapping_add(n as u64);
        }
        Ok(())
    }

    /// Reads a little-endian `u64` at an 8-byte aligned `addr` (the low three
    /// address bits are ignored, as a table walker's would be).
    #[inline]
    pub fn read_u64(&self, addr: PhysAddr) -> u64 {
        let a = addr.raw() & !7;
        if let Some(v) = self.pool.read_u64(a) {
            return v;
        }
        let off = (a & (PAGE_SIZE - 1)) as usize;
        match self.page(a >> PAGE_SHIFT) {
            Some(p) => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&p[off..off + 8]);
                u64::from_le_bytes(b)
            }
            None => 0,
        }
    }

    /// Writes a little-endian `u64` at an 8-byte aligned `addr` (low three
    /// address bits ignored).
    #[inline]
    pub fn write_u64(&mut self, addr: PhysAddr, val: u64) {
        let a = addr.raw() & !7;
        if self.pool.write_u64(a, val) {
            return;
        }
        let off = (a & (PAGE_SIZE - 1)) as usize;
        if val == 0 && self.page(a >> PAGE_SHIFT).is_none() {
            return; // keep memory sparse: zero is what an absent page reads as
        }
        let page = self.page_mut(a >> PAGE_SHIFT);
        page[off..off + 8].copy_from_slice(&val.to_le_bytes());
    }

    /// Allocates a zeroed block of `bytes` (a power-of-two number of pages,
    /// at least one page), naturally aligned to its size.
    pub fn alloc_frames(&mut self, bytes: u64) -> Result<PhysAddr, MemError> {
        let at = self.frames.alloc(bytes)?;
        // Table frames are written right away: materialise them now.
        let mut a = at.raw();
        while a < at.raw().saturating_add(bytes.max(PAGE_SIZE)) {
            self.pool.materialize(a);
            a += PAGE_SIZE;
        }
        Ok(at)
    }

    /// Returns a block from [`alloc_frames`](Self::alloc_frames) to the pool;
    /// its contents are dropped (it reads as zero again).
    pub fn free_frames(&mut self, addr: PhysAddr) -> Result<(), MemError> {
        let pages = self.frames.free(addr)?;
        for i in 0..pages {
            self.drop_page((addr.raw() >> PAGE_SHIFT) + i);
        }
        Ok(())
    }

    /// Whether `addr` starts a live frame block.
    pub fn is_allocated(&self, addr: PhysAddr) -> bool {
        self.frames.is_allocated(addr)
    }

    /// Bytes currently allocated as frames (the "secondary page table" count).
    pub fn live_frame_bytes(&self) -> u64 {
        self.frames.live_bytes()
    }

    /// Number of live frame blocks.
    pub fn live_frame_blocks(&self) -> usize {
        self.frames.live_blocks()
    }

    /// Pages that hold non-sparse data (a frame-pool page is resident from
    /// its first allocation and stays so, zeroed, after it is freed, for the
    /// next table that gets it).
    pub fn resident_pages(&self) -> usize {
        self.pages.len() + self.pool.resident()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_across_pages_and_sparse_reads_zero() {
        let mut m = PhysMem::new();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        m.write(PhysAddr::new(0x1234_0ff0), &data).unwrap();
        let mut back = vec![0u8; data.len()];
        m.read(PhysAddr::new(0x1234_0ff0), &mut back).unwrap();
        assert_eq!(back, data);
        let mut z = [0xffu8; 16];
        m.read(PhysAddr::new(0x9000_0000), &mut z).unwrap();
        assert_eq!(z, [0u8; 16]);
        assert_eq!(
            m.write(PhysAddr::new(u64::MAX - 3), &[0u8; 8]),
            Err(MemError::Overflow {
                addr: PhysAddr::new(u64::MAX - 3),
                len: 8
            })
        );
    }

    #[test]
    fn pool_pages_hold_bytes_and_words_alike() {
        let mut m = PhysMem::new();
        let t = m.alloc_frames(2 * 4096).unwrap();
        // Unaligned bytes across the boundary of two pool pages.
        let at = PhysAddr::new(t.raw() + 4096 - 5);
        let data: Vec<u8> = (1..=13).collect();
        m.write(at, &data).unwrap();
        let mut back = [0u8; 13];
        m.read(at, &mut back).unwrap();
        assert_eq!(back.as_slice(), data.as_slice());
        assert_eq!(
            m.read_u64(PhysAddr::new(t.raw() + 4096)),
            u64::from_le_bytes([6, 7, 8, 9, 10, 11, 12, 13])
        );
        // A table writer's store is what the byte reader sees.
        let pool = m.pool_pages();
        assert!(pool.write_u64(t.raw() + 8, 0x0102_0304_0506_0708));
        let mut b = [0u8; 8];
        m.read(PhysAddr::new(t.raw() + 8), &mut b).unwrap();
        assert_eq!(b, [8, 7, 6, 5, 4, 3, 2, 1]);
        // Freed frames read as zero again.
        m.free_frames(t).unwrap();
        assert_eq!(m.read_u64(PhysAddr::new(t.raw() + 8)), 0);
        assert_eq!(m.read_u64(PhysAddr::new(t.raw() + 4096)), 0);
    }

    #[test]
    fn u64_le_layout() {
        let mut m = PhysMem::new();
        m.write_u64(PhysAddr::new(0x5008), 0x0102_0304_0506_0708);
        let mut b = [0u8; 8];
        m.read(PhysAddr::new(0x5008), &mut b).unwrap();
        assert_eq!(b, [8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(m.read_u64(PhysAddr::new(0x5008)), 0x0102_0304_0506_0708);
    }

    #[test]
    fn frames_are_aligned_zeroed_and_reused() {
        let mut m = PhysMem::with_pool(PhysAddr::new(0x10_0000), 0x10_0000);
        let a = m.alloc_frames(4096).unwrap();
        assert_eq!(a, PhysAddr::new(0x10_0000));
        let b = m.alloc_frames(0x10000).unwrap();
        assert_eq!(b.raw() % 0x10000, 0);
        assert_eq!(b, PhysAddr::new(0x11_0000));
        m.write_u64(a, 7);
        m.free_frames(a).unwrap();
        assert_eq!(m.free_frames(a), Err(MemError::NotAllocated { addr: a }));
        let c = m.alloc_frames(4096).unwrap();
        assert_eq!(m.read_u64(c), 0);
        assert_eq!(
            m.alloc_frames(3 * 4096),
            Err(MemError::BadFrameSize { bytes: 3 * 4096 })
        );
        assert_eq!(
            m.alloc_frames(0x20_0000),
            Err(MemError::OutOfFrames { bytes: 0x20_0000 })
        );
        assert_eq!(m.live_frame_bytes(), 0x10000 + 4096);
    }
}
