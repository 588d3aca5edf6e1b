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

use std::ops::Deref;
use std::sync::{Arc, PoisonError, RwLock};

use scatterlist::PhysAddr;

use super::pool_pages::PoolPages;
use super::{FrameStore, MemError, PhysMem, SharedMem};
use crate::walker::WalkMem;

/// The shared simulated RAM as a page table holds it: the [`SharedMem`] plus
/// a lock-free handle on its frame pool. The default memory of a
/// [`PageTable`](super::PageTable) with `std`; it dereferences to the
/// [`SharedMem`] (`pt.mem().read()` locks the RAM as before).
#[derive(Clone, Debug)]
pub struct SharedTableMem {
    shared: SharedMem,
    pool: Arc<PoolPages>,
}

impl SharedTableMem {
    /// A table-writer handle on `shared`.
    pub fn new(shared: SharedMem) -> Self {
        let pool = shared
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .pool_pages();
        Self { shared, pool }
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

impl WalkMem for SharedTableMem {
    #[inline]
    fn read_u64(&self, addr: PhysAddr) -> u64 {
        match self.pool.read_u64(addr.raw() & !7) {
            Some(v) => v,
            None => self.read_locked(addr),
        }
    }
}

impl FrameStore for SharedTableMem {
    #[inline]
    fn write_u64(&mut self, addr: PhysAddr, val: u64) {
        if !self.pool.write_u64(addr.raw() & !7, val) {
            self.write_locked(addr, val);
        }
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
