//! What a driver sees of a process address space: virtual addresses, what
//! backs each page, and the per-page result of a range walk (Linux
//! include/linux/hmm.h `hmm_pfn` flags, mm/hmm.c `hmm_range_fault`).

use crate::types::PhysAddr;
use core::fmt;

/// A process virtual address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct VirtAddr(u64);

impl VirtAddr {
    /// From a raw value.
    pub const fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// `self + off`, `None` on overflow.
    pub const fn checked_add(self, off: u64) -> Option<Self> {
        match self.0.checked_add(off) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }
}

impl fmt::Display for VirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "va {:#x}", self.0)
    }
}

/// What backs one virtual page.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backing {
    /// A RAM page.
    Ram(PhysAddr),
    /// A device-private page (a swap-like entry in Linux: not CPU
    /// accessible until migrated).
    DevicePrivate(PhysAddr),
    /// A page of a device's BAR (a `VM_PFNMAP` / device VMA).
    Bar(PhysAddr),
}

/// One page of a range walk's result.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HmmPfn {
    /// RAM, mapped for the CPU (after a migration if it was device-private).
    Ram(PhysAddr),
    /// The faulting device's own device-private page, left in place
    /// (`HMM_PFN_VALID` on a device-private pfn whose pagemap owner matches
    /// `range->dev_private_owner`).
    DevicePrivate(PhysAddr),
    /// A page the owner lets this device reach through its BAR alias, or a
    /// BAR page of a device VMA.
    PeerBar(PhysAddr),
}
