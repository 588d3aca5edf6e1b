//! What the page-table engine needs from memory, so that it runs on the std
//! simulated RAM and in a `no_std + alloc` kernel alike.
//!
//! Two layers: a [`FrameStore`] is the memory itself (64-bit loads and stores
//! plus a frame allocator for table pages, like the kernel's
//! `iommu_alloc_pages_node` / `iommu_free_pages` pair used by
//! drivers/iommu/generic_pt/iommu_pt.h); a [`TableMem`] is how the table holds
//! it. An owned store is its own handle. A shared store (the std
//! `SharedMem`, or `Arc<spin::Mutex<S>>` in a kernel) is
//! locked once per operation, not once per entry, so a map or unmap sees one
//! consistent memory and pays one lock.

use alloc::sync::Arc;

use scatterlist::PhysAddr;

use super::MemError;
use crate::walker::WalkMem;

/// Memory page tables can be written in: entry stores and table frames.
pub trait FrameStore: WalkMem {
    /// Stores the little-endian `val` at the 8-byte aligned `addr` (low three
    /// address bits ignored).
    fn write_u64(&mut self, addr: PhysAddr, val: u64);

    /// Loads the entry at `addr` and stores `f(old)` there if it is `Some`;
    /// returns the old value. A store that finds an entry once (a cache of
    /// the frame last written) overrides it to look the entry up once.
    #[inline(always)]
    fn update_u64(&mut self, addr: PhysAddr, f: impl FnOnce(u64) -> Option<u64>) -> u64 {
        let old = self.read_u64(addr);
        if let Some(new) = f(old) {
            self.write_u64(addr, new);
        }
        old
    }

    /// Clears the entries at the 8-byte aligned `addr` (low three bits
    /// ignored), `addr + 8`, … (at most `n`) as long as
    /// `hit` accepts the entry found; returns how many were cleared (the
    /// first refused entry is left as it is). The batched unmap's run over
    /// the leaves of one table. A store that finds an entry once overrides
    /// it to look the frame up once per page rather than per entry.
    #[inline]
    fn clear_run(&mut self, addr: PhysAddr, n: u64, mut hit: impl FnMut(u64) -> bool) -> u64 {
        let mut k = 0;
        while k < n {
            let a = PhysAddr::new((addr.raw() & !7) + k * 8);
            if !hit(self.read_u64(a)) {
                break;
            }
            self.write_u64(a, 0);
            k += 1;
        }
        k
    }

    /// A zeroed block of `bytes` (a power-of-two number of pages, at least
    /// one page), naturally aligned to its size.
    fn alloc_frames(&mut self, bytes: u64) -> Result<PhysAddr, MemError>;

    /// Returns a block from [`alloc_frames`](Self::alloc_frames); afterwards
    /// it reads as zero. A block never handed out is refused with
    /// [`MemError::NotAllocated`].
    fn free_frames(&mut self, addr: PhysAddr) -> Result<(), MemError>;
}

/// How a [`PageTable`](super::PageTable) holds its [`FrameStore`].
pub trait TableMem {
    /// The memory behind the handle.
    type Store: FrameStore + ?Sized;

    /// Runs `f` with read access to the store (a read lock, if shared).
    fn with_store<R>(&self, f: impl FnOnce(&Self::Store) -> R) -> R;

    /// Runs `f` with write access to the store (a write lock, if shared).
    fn with_store_mut<R>(&mut self, f: impl FnOnce(&mut Self::Store) -> R) -> R;

    /// [`FrameStore::update_u64`] on the store: one entry read and maybe
    /// written (the one-page fast path's only memory access).
    #[inline(always)]
    fn update_u64(&mut self, addr: PhysAddr, f: impl FnOnce(u64) -> Option<u64>) -> u64 {
        self.with_store_mut(|m| m.update_u64(addr, f))
    }
}

/// An owned store is its own handle: no lock at all.
impl<S: FrameStore> TableMem for S {
    type Store = S;

    #[inline]
    fn with_store<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        f(self)
    }

    #[inline(always)]
    fn with_store_mut<R>(&mut self, f: impl FnOnce(&mut S) -> R) -> R {
        f(self)
    }

    #[inline(always)]
    fn update_u64(&mut self, addr: PhysAddr, f: impl FnOnce(u64) -> Option<u64>) -> u64 {
        FrameStore::update_u64(self, addr, f)
    }
}

/// A store shared with other users (a walker model, a second table) behind a
/// spin lock: the `no_std` counterpart of `SharedMem`.
impl<S: FrameStore + ?Sized> TableMem for Arc<spin::Mutex<S>> {
    type Store = S;

    #[inline]
    fn with_store<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        f(&self.lock())
    }

    #[inline]
    fn with_store_mut<R>(&mut self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.lock())
    }
}

impl<S: WalkMem + ?Sized> WalkMem for spin::MutexGuard<'_, S> {
    #[inline]
    fn read_u64(&self, addr: PhysAddr) -> u64 {
        (**self).read_u64(addr)
    }
}

#[cfg(feature = "std")]
mod std_impls {
    use std::sync::{PoisonError, RwLock};

    use scatterlist::PhysAddr;

    use super::{FrameStore, MemError, TableMem};
    use crate::pgtable::{PhysMem, SharedMem};

    impl FrameStore for PhysMem {
        #[inline]
        fn write_u64(&mut self, addr: PhysAddr, val: u64) {
            PhysMem::write_u64(self, addr, val);
        }

        fn alloc_frames(&mut self, bytes: u64) -> Result<PhysAddr, MemError> {
            PhysMem::alloc_frames(self, bytes)
        }

        fn free_frames(&mut self, addr: PhysAddr) -> Result<(), MemError> {
            PhysMem::free_frames(self, addr)
        }
    }

    /// The simulated RAM shared by the table writer, the walker and the
    /// fabric. A poisoned lock is taken over: the memory holds plain bytes
    /// and stays consistent whatever a panicking holder was doing.
    impl TableMem for SharedMem {
        type Store = PhysMem;

        #[inline]
        fn with_store<R>(&self, f: impl FnOnce(&PhysMem) -> R) -> R {
            f(&RwLock::read(self).unwrap_or_else(PoisonError::into_inner))
        }

        #[inline]
        fn with_store_mut<R>(&mut self, f: impl FnOnce(&mut PhysMem) -> R) -> R {
            f(&mut RwLock::write(self).unwrap_or_else(PoisonError::into_inner))
        }
    }
}
