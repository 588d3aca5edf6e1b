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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use scatterlist::PhysAddr;

use super::pool_pages::{word, Frame, PoolPages, WORDS};
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
    /// The page address of the frame of the last store into the pool, or
    /// [`NO_PAGE`] (no page address is `NO_PAGE`).
    last_page: u64,
    /// The words of that frame (a frame never stored to, for `NO_PAGE`).
    last_frame: Arc<Frame>,
}

/// `last_page` before any store: not page aligned, so no address's page.
const NO_PAGE: u64 = u64::MAX;

/// The frame `last_frame` holds before any store: shared, never written.
fn no_frame() -> Arc<Frame> {
    static NONE: OnceLock<Arc<Frame>> = OnceLock::new();
    Arc::clone(NONE.get_or_init(|| Arc::new([const { AtomicU64::new(0) }; WORDS])))
}

impl fmt::Debug for SharedTableMem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedTableMem")
            .field("shared", &self.shared)
            .field(
                "last_frame",
                &(self.last_page != NO_PAGE).then(|| PhysAddr::new(self.last_page)),
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
            last_page: NO_PAGE,
            last_frame: no_frame(),
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
            self.last_page = a & !PAGE_MASK;
            self.last_frame = Arc::clone(f);
        } else if !self.pool.write_u64(a & !7, val) {
            self.write_locked(addr, val);
        }
    }
}

impl WalkMem for SharedTableMem {
    #[inline]
    fn read_u64(&self, addr: PhysAddr) -> u64 {
        if addr.raw() & !PAGE_MASK == self.last_page {
            return word(&self.last_frame, addr.raw()).load(Ordering::Acquire);
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
        if addr.raw() & !PAGE_MASK == self.last_page {
            word(&self.last_frame, addr.raw()).store(val, Ordering::Release);
            return;
        }
        self.write_other(addr, val);
    }

    #[inline(always)]
    fn update_u64(&mut self, addr: PhysAddr, f: impl FnOnce(u64) -> Option<u64>) -> u64 {
        if addr.raw() & !PAGE_MASK == self.last_page {
            let w = word(&self.last_frame, addr.raw());
            let old = w.load(Ordering::Acquire);
            if let Some(new) = f(old) {
                w.store(new, Ordering::Release);
            }
            return old;
        }
        let old = self.read_u64(addr);
        if let Some(new) = f(old) {
            self.write_other(addr, new);
        }
        old
    }

    /// Page by page: the words of a pool frame directly, anything else
    /// through the entry-wise default.
    fn clear_run(&mut self, addr: PhysAddr, n: u64, mut hit: impl FnMut(u64) -> bool) -> u64 {
        let mut done = 0;
        while done < n {
            let a = (addr.raw() & !7) + done * 8;
            let first = (a as usize >> 3) & (WORDS - 1);
            // The entries left in this page (at least one).
            let here = n.min((WORDS - first) as u64);
            let frame = if a & !PAGE_MASK == self.last_page {
                Some(&self.last_frame)
            } else {
                self.pool.frame_at(a)
            };
            let k = match frame {
                Some(f) => {
                    let mut k = 0;
                    for w in &f[first..first + here as usize] {
                        if !hit(w.load(Ordering::Acquire)) {
                            break;
                        }
                        w.store(0, Ordering::Release);
                        k += 1;
                    }
                    k
                }
                _ => {
                    let mut k = 0;
                    while k < here {
                        let e = PhysAddr::new(a + k * 8);
                        if !hit(self.read_u64(e)) {
                            break;
                        }
                        self.write_u64(e, 0);
                        k += 1;
                    }
                    k
                }
            };
            done += k;
            if k < here {
                break;
            }
        }
        done
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
