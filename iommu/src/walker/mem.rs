//! What the walker needs from memory: aligned 64-bit loads, nothing else.
//!
//! A real IOMMU reads table entries from RAM and never writes them (the
//! simulated formats have no hardware-updated access/dirty bits), so the
//! walker is generic over this one read-only operation and works on any
//! backing store: the std simulated RAM, the `no_std` store of
//! [`crate::pgtable::BTreeMem`], or a kernel's own view of physical memory.

/// Read-only 64-bit access to the memory page tables live in.
pub trait WalkMem {
    /// The little-endian `u64` at the 8-byte aligned `addr` (the low three
    /// address bits are ignored, as a table walker's would be); memory never
    /// written reads as zero.
    fn read_u64(&self, addr: scatterlist::PhysAddr) -> u64;
}

impl<M: WalkMem + ?Sized> WalkMem for &M {
    #[inline]
    fn read_u64(&self, addr: scatterlist::PhysAddr) -> u64 {
        (**self).read_u64(addr)
    }
}

#[cfg(feature = "std")]
mod std_impls {
    use std::sync::{RwLockReadGuard, RwLockWriteGuard};

    use scatterlist::PhysAddr;

    use super::WalkMem;
    use crate::pgtable::PhysMem;

    impl WalkMem for PhysMem {
        #[inline]
        fn read_u64(&self, addr: PhysAddr) -> u64 {
            PhysMem::read_u64(self, addr)
        }
    }

    // Callers hold the lock of a `SharedMem` and pass `&guard`.
    impl WalkMem for RwLockReadGuard<'_, PhysMem> {
        #[inline]
        fn read_u64(&self, addr: PhysAddr) -> u64 {
            PhysMem::read_u64(self, addr)
        }
    }

    impl WalkMem for RwLockWriteGuard<'_, PhysMem> {
        #[inline]
        fn read_u64(&self, addr: PhysAddr) -> u64 {
            PhysMem::read_u64(self, addr)
        }
    }
}
