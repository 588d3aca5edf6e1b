//! [`SharedTableMem`]: how a page table holds the shared simulated RAM.
//!
//! Every user of the simulated RAM ([`SharedMem`]) takes its lock: the fabric
//! moving data, the walker reading tables, the CPU view. Taken once per map or
//! unmap call, that lock (two atomic read-modify-writes) cost more than the
//! walk itself. A table writer keeps a second handle on the RAM's frame pool
//! ([`PoolPages`]), where every table frame lives, and loads and stores its
//! entries there without the lock: the very bytes the walker and the fabric
//! read through [`PhysMem`]. Only frame allocation and release, and entries
//! outside the covered pool, take the lock.
//!
//! The writer also keeps the frame of its last store at hand: per-page calls
//! read and write the same leaf table again and again, and a frame, once
//! materialised, stays the same memory while the pool lives (a freed frame
//! is zeroed, not dropped), so the kept frame can never be a stale copy.

use std::fmt;
use std::ops::Deref;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, RwLock};

use scatterlist::PhysAddr;

use super::pool_pages::{word, Frame, PoolPages};
use super::{FrameStore, MemError, PhysMem, SharedMem};
use crate::walker::WalkMem;

/// The shared simulated RAM as a page table holds it: the [`SharedMem`] plus
/// a lock-free handle on its frame pool. The default memory of a
/// [`PageTable`](super::PageTable) with `std`; it dereferences to the
/// [`SharedMem`] (`pt.mem().read()` locks the RAM as before).
#[derive(Clone)]
pub struct SharedTableMem {
    shared: SharedMem,
    pool: Arc<PoolPages>,
    /// The frame of the last store into the pool: (page address, words).
    last: Option<(u64, Arc<Frame>)>,
}

impl fmt::Debug for SharedTableMem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedTableMem")
            .field("shared", &self.shared)
            .field(
                "last_frame",
                &self.last.as_ref().map(|l| PhysAddr::new(l.0)),
            )
            .finish_non_exhaustive()
    }
}

impl SharedTableMem {
    /// A table-writer handle on `shared`.
    pub fn new(shared: SharedMem) -> Self {
        let pool = shared
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .pool_pages();
        Self {
            shared,
            pool,
            last: None,
        }
    }

    /// Fresh simulated RAM with the default frame pool.
    pub fn fresh() -> Self {
        Self::new(Arc::new(RwLock::new(PhysMem::new())))
    }

    /// The shared RAM.
    pub fn shared(&self) -> &SharedMem {
        &self.shared
    }
}

impl From<SharedMem> for SharedTableMem {
    fn from(shared: SharedMem) -> Self {
        Self::new(shared)
    }
}

impl Deref for SharedTableMem {
    type Target = SharedMem;

    fn deref(&self) -> &SharedMem {
        &self.shared
    }
}

impl SharedTableMem {
    /// An entry outside the covered pool: through the RAM lock.
    #[cold]
    #[inline(never)]
    fn read_locked(&self, addr: PhysAddr) -> u64 {
        self.shared
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .read_u64(addr)
    }

    /// An entry outside the covered pool: through the RAM lock.
    #[cold]
    #[inline(never)]
    fn write_locked(&self, addr: PhysAddr, val: u64) {
        self.shared
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .write_u64(addr, val);
    }
}

/// Offset bits of a 4 KiB page.
const PAGE_MASK: u64 = 4095;

impl SharedTableMem {
    /// A store outside the kept frame: keeps the pool frame it lands in.
    #[inline(never)]
    fn write_other(&mut self, addr: PhysAddr, val: u64) {
        let a = addr.raw();
        if let Some(f) = self.pool.frame_at(a) {
            word(f, a).store(val, Ordering::Release);
            self.last = Some((a & !PAGE_MASK, Arc::clone(f)));
        } else if !self.pool.write_u64(a & !7, val) {
            self.write_locked(addr, val);
        }
    }
}

impl WalkMem for SharedTableMem {
    #[inline]
    fn read_u64(&self, addr: PhysAddr) -> u64 {
        if let Some((page, f)) = &self.last {
            if addr.raw() & !PAGE_MASK == *page {
                return word(f, addr.raw()).load(Ordering::Acquire);
            }
        }
        match self.pool.read_u64(addr.raw() & !7) {
            Some(v) => v,
            None => self.read_locked(addr),
        }
    }
}

impl FrameStore for SharedTableMem {
    #[inline]
    fn write_u64(&mut self, addr: PhysAddr, val: u64) {
        let page = addr.raw() & !PAGE_MASK;
        if let Some((p, f)) = &self.last {
            if page == *p {
                word(f, addr.raw()).store(val, Ordering::Release);
                return;
            }
        }
        self.write_other(addr, val);
    }

    #[inline(always)]
    fn update_u64(&mut self, addr: PhysAddr, f: impl FnOnce(u64) -> Option<u64>) -> u64 {
        if let Some((p, frame)) = &self.last {
            if addr.raw() & !PAGE_MASK == *p {
                let w = word(frame, addr.raw());
                let old = w.load(Ordering::Acquire);
                if let Some(new) = f(old) {
                    w.store(new, Ordering::Release);
                }
                return old;
            }
        }
        let old = self.read_u64(addr);
        if let Some(new) = f(old) {
            self.write_other(addr, new);
        }
        old
    }

    fn alloc_frames(&mut self, bytes: u64) -> Result<PhysAddr, MemError> {
        self.shared
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .alloc_frames(bytes)
    }

    fn free_frames(&mut self, addr: PhysAddr) -> Result<(), MemError> {
        self.shared
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .free_frames(addr)
    }
}
