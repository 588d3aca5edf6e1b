//! p2pmem providers: BAR ranges registered for peer-to-peer use, a
//! page-granular allocator over them, and provider selection.
//!
//! Matches drivers/pci/p2pdma.c `pci_p2pdma_add_resource` (the BAR must be
//! memory, `offset < len`, `size == 0` means the rest of the BAR,
//! `offset + size <= len`), `pci_alloc_p2pmem` / `pci_free_p2pmem` (a
//! gen_pool with `PAGE_SHIFT` granularity: sizes round up to pages),
//! `pci_p2pmem_publish`, the sysfs `p2pmem/{size,available,published}`
//! numbers, and `pci_p2pmem_find_many`.
//!
//! Differences: a range overlapping one already registered is rejected
//! (Linux would fail later in `devm_memremap_pages`); ranges must be
//! page-aligned (Linux requires memory-hotplug alignment, typically 2 MiB,
//! which we do not model); and `find_many` breaks ties deterministically
//! (lowest total distance, then lowest BDF) where Linux picks uniformly at
//! random among the closest providers.

use super::oracle::{distance_many, DistanceError};
use crate::bdf::Bdf;
use crate::topology::{DeviceId, Topology};
use crate::types::{BusAddr, PhysAddr, PAGE_SHIFT, PAGE_SIZE};
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// Why a p2pmem operation failed; names the device and values.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum P2pMemError {
    /// No such device.
    UnknownDevice {
        /// The id asked for.
        id: DeviceId,
    },
    /// The BAR is not assigned.
    NoSuchBar {
        /// Device.
        bdf: Bdf,
        /// BAR index.
        bar: u8,
    },
    /// The BAR is I/O space (`!(flags & IORESOURCE_MEM)` → -EINVAL).
    NotMemoryBar {
        /// Device.
        bdf: Bdf,
        /// BAR index.
        bar: u8,
    },
    /// `offset >= len` or `offset + size > len` (-EINVAL).
    OutOfBar {
        /// Device.
        bdf: Bdf,
        /// BAR index.
        bar: u8,
        /// Offset asked for.
        offset: u64,
        /// Size asked for (after `0` → rest of BAR).
        size: u64,
        /// BAR length.
        len: u64,
    },
    /// Start or size not page-aligned.
    NotPageAligned {
        /// Device.
        bdf: Bdf,
        /// Start of the range.
        phys: PhysAddr,
        /// Its size.
        size: u64,
    },
    /// The range overlaps one already registered.
    AlreadyRegistered {
        /// Device.
        bdf: Bdf,
        /// Start of the new range.
        phys: PhysAddr,
        /// Its size.
        size: u64,
    },
    /// The device has no p2pmem.
    NoP2pMem {
        /// Device.
        bdf: Bdf,
    },
    /// An unregistration while part of the range is still allocated.
    InUse {
        /// Device.
        bdf: Bdf,
        /// Start of the range.
        phys: PhysAddr,
        /// Bytes still allocated from it.
        allocated: u64,
    },
    /// Not enough contiguous free memory.
    OutOfMemory {
        /// Device.
        bdf: Bdf,
        /// Bytes asked for.
        size: u64,
    },
    /// A free that does not match an allocation.
    BadFree {
        /// Device.
        bdf: Bdf,
        /// Start freed.
        phys: PhysAddr,
        /// Size freed.
        size: u64,
    },
    /// A zero-byte allocation.
    ZeroSize {
        /// Device.
        bdf: Bdf,
    },
}

impl fmt::Display for P2pMemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use P2pMemError::*;
        match self {
            UnknownDevice { id } => write!(f, "no device {id}"),
            NoSuchBar { bdf, bar } => write!(f, "{bdf} has no BAR {bar}"),
            NotMemoryBar { bdf, bar } => write!(f, "{bdf} BAR {bar} is not a memory BAR"),
            OutOfBar {
                bdf,
                bar,
                offset,
                size,
                len,
            } => write!(
                f,
                "{bdf} BAR {bar}: offset {offset:#x} size {size:#x} does not fit its {len:#x} bytes"
            ),
            NotPageAligned { bdf, phys, size } => {
                write!(
                    f,
                    "{bdf}: p2pmem range {phys} +{size:#x} is not page-aligned"
                )
            }
            AlreadyRegistered { bdf, phys, size } => {
                write!(
                    f,
                    "{bdf}: p2pmem range {phys} +{size:#x} is already registered"
                )
            }
            NoP2pMem { bdf } => write!(f, "{bdf} has no p2pmem"),
            InUse {
                bdf,
                phys,
                allocated,
            } => write!(
                f,
                "{bdf}: p2pmem range at {phys} still has {allocated:#x} bytes allocated"
            ),
            OutOfMemory { bdf, size } => write!(f, "{bdf}: no {size:#x} bytes of p2pmem free"),
            BadFree { bdf, phys, size } => {
                write!(f, "{bdf}: free of {phys} +{size:#x} matches no allocation")
            }
            ZeroSize { bdf } => write!(f, "{bdf}: zero-byte p2pmem allocation"),
        }
    }
}

impl core::error::Error for P2pMemError {}

/// One registered range.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct P2pResource {
    /// BAR index.
    pub bar: u8,
    /// CPU physical start.
    pub phys: PhysAddr,
    /// Bus address of `phys` (what the pool hands out, like Linux's gen_pool).
    pub bus: BusAddr,
    /// Size in bytes.
    pub size: u64,
    used: Vec<bool>,
    free_pages: u64,
}

impl P2pResource {
    /// True if `[phys, phys + len)` lies wholly inside this range.
    pub fn contains(&self, phys: PhysAddr, len: u64) -> bool {
        phys.offset_from(self.phys)
            .is_some_and(|off| off < self.size && len <= self.size - off)
    }

    /// Bytes of this range handed out by [`P2pMemRegistry::alloc`].
    pub fn allocated(&self) -> u64 {
        (self.used.len() as u64 - self.free_pages) << PAGE_SHIFT
    }
}

/// One allocation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct P2pAlloc {
    /// The provider.
    pub provider: DeviceId,
    /// CPU physical address.
    pub phys: PhysAddr,
    /// Bus address (`pci_p2pmem_virt_to_bus`).
    pub bus: BusAddr,
    /// Size asked for.
    pub size: u64,
}

/// sysfs `p2pmem/` numbers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct P2pMemStats {
    /// `size`: bytes registered.
    pub size: u64,
    /// `available`: bytes free.
    pub available: u64,
    /// `published`.
    pub published: bool,
}

#[derive(Clone, PartialEq, Eq, Debug, Default)]
struct P2pMem {
    resources: Vec<P2pResource>,
    published: bool,
}

/// All p2pmem providers of a machine.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct P2pMemRegistry {
    by_dev: BTreeMap<DeviceId, P2pMem>,
}

fn pages(size: u64) -> u64 {
    size.div_ceil(PAGE_SIZE)
}

impl P2pMemRegistry {
    /// No providers.
    pub fn new() -> Self {
        Self::default()
    }

    fn bdf(topo: &Topology, id: DeviceId) -> Result<Bdf, P2pMemError> {
        topo.device(id)
            .map(|d| d.bdf)
            .ok_or(P2pMemError::UnknownDevice { id })
    }

    /// `pci_p2pdma_add_resource(dev, bar, size, offset)`.
    pub fn add_resource(
        &mut self,
        topo: &Topology,
        id: DeviceId,
        bar: u8,
        size: u64,
        offset: u64,
    ) -> Result<(), P2pMemError> {
        let d = topo.device(id).ok_or(P2pMemError::UnknownDevice { id })?;
        let bdf = d.bdf;
        let b = d.bar(bar).ok_or(P2pMemError::NoSuchBar { bdf, bar })?;
        if !b.is_mem() {
            return Err(P2pMemError::NotMemoryBar { bdf, bar });
        }
        let len = b.size;
        let size = if size == 0 {
            len.saturating_sub(offset)
        } else {
            size
        };
        if offset >= len || size > len - offset {
            return Err(P2pMemError::OutOfBar {
                bdf,
                bar,
                offset,
                size,
                len,
            });
        }
        let phys = PhysAddr::new(b.addr.raw() + offset);
        if !phys.is_aligned(PAGE_SIZE) || size % PAGE_SIZE != 0 {
            return Err(P2pMemError::NotPageAligned { bdf, phys, size });
        }
        let bus_base = topo
            .bar_bus_addr(id, bar)
            .map_err(|_| P2pMemError::NoSuchBar { bdf, bar })?;
        let bus = BusAddr::new(bus_base.raw() + offset);
        let mem = self.by_dev.entry(id).or_default();
        let last = phys.raw() + (size - 1);
        if mem
            .resources
            .iter()
            .any(|r| r.phys.raw() <= last && phys.raw() <= r.phys.raw() + (r.size - 1))
        {
            return Err(P2pMemError::AlreadyRegistered { bdf, phys, size });
        }
        let n = (size >> PAGE_SHIFT) as usize;
        mem.resources.push(P2pResource {
            bar,
            phys,
            bus,
            size,
            used: vec![false; n],
            free_pages: n as u64,
        });
        Ok(())
    }

    /// `pci_p2pmem_publish(dev, publish)`.
    pub fn publish(
        &mut self,
        topo: &Topology,
        id: DeviceId,
        publish: bool,
    ) -> Result<(), P2pMemError> {
        let bdf = Self::bdf(topo, id)?;
        let mem = self
            .by_dev
            .get_mut(&id)
            .ok_or(P2pMemError::NoP2pMem { bdf })?;
        mem.published = publish;
        Ok(())
    }

    /// sysfs `p2pmem/` numbers for `id`, `None` without p2pmem.
    pub fn stats(&self, id: DeviceId) -> Option<P2pMemStats> {
        let m = self.by_dev.get(&id)?;
        Some(P2pMemStats {
            size: m.resources.iter().map(|r| r.size).sum(),
            available: m.resources.iter().map(|r| r.free_pages << PAGE_SHIFT).sum(),
            published: m.published,
        })
    }

    /// Registered ranges of `id`.
    pub fn resources(&self, id: DeviceId) -> &[P2pResource] {
        self.by_dev.get(&id).map_or(&[], |m| &m.resources)
    }

    /// The registered range of `id` holding all of `[phys, phys + len)`.
    pub fn resource_for(&self, id: DeviceId, phys: PhysAddr, len: u64) -> Option<&P2pResource> {
        self.by_dev
            .get(&id)?
            .resources
            .iter()
            .find(|r| r.contains(phys, len))
    }

    /// Unregisters the range of `id` starting at `phys` (the end of a
    /// `pci_p2pdma_add_resource` registration: its `devm` release). Refused
    /// while any of it is allocated, naming the range; a device left with no
    /// range stops being a provider.
    pub fn remove_resource(
        &mut self,
        topo: &Topology,
        id: DeviceId,
        phys: PhysAddr,
    ) -> Result<P2pResource, P2pMemError> {
        let bdf = Self::bdf(topo, id)?;
        let mem = self
            .by_dev
            .get_mut(&id)
            .ok_or(P2pMemError::NoP2pMem { bdf })?;
        let i = mem
            .resources
            .iter()
            .position(|r| r.phys == phys)
            .ok_or(P2pMemError::NoP2pMem { bdf })?;
        let r = &mem.resources[i];
        if r.allocated() != 0 {
            return Err(P2pMemError::InUse {
                bdf,
                phys,
                allocated: r.allocated(),
            });
        }
        let r = mem.resources.remove(i);
        if mem.resources.is_empty() {
            self.by_dev.remove(&id);
        }
        Ok(r)
    }

    /// Devices with p2pmem, in id order.
    pub fn providers(&self) -> impl Iterator<Item = DeviceId> + '_ {
        self.by_dev.keys().copied()
    }

    /// `pci_alloc_p2pmem`: first fit, page granular.
    pub fn alloc(
        &mut self,
        topo: &Topology,
        id: DeviceId,
        size: u64,
    ) -> Result<P2pAlloc, P2pMemError> {
        let bdf = Self::bdf(topo, id)?;
        if size == 0 {
            return Err(P2pMemError::ZeroSize { bdf });
        }
        let mem = self
            .by_dev
            .get_mut(&id)
            .ok_or(P2pMemError::NoP2pMem { bdf })?;
        let need = pages(size) as usize;
        for r in &mut mem.resources {
            if (r.free_pages as usize) < need {
                continue;
            }
            let mut run = 0usize;
            for i in 0..r.used.len() {
                run = if r.used[i] { 0 } else { run + 1 };
                if run == need {
                    let first = i + 1 - need;
                    r.used[first..=i].iter_mut().for_each(|u| *u = true);
                    r.free_pages -= need as u64;
                    let off = (first as u64) << PAGE_SHIFT;
                    return Ok(P2pAlloc {
                        provider: id,
                        phys: PhysAddr::new(r.phys.raw() + off),
                        bus: BusAddr::new(r.bus.raw() + off),
                        size,
                    });
                }
            }
        }
        Err(P2pMemError::OutOfMemory { bdf, size })
    }

    /// `pci_free_p2pmem`.
    pub fn free(&mut self, topo: &Topology, a: P2pAlloc) -> Result<(), P2pMemError> {
        let bdf = Self::bdf(topo, a.provider)?;
        let bad = P2pMemError::BadFree {
            bdf,
            phys: a.phys,
            size: a.size,
        };
        let mem = self.by_dev.get_mut(&a.provider).ok_or(bad.clone())?;
        let need = pages(a.size) as usize;
        let r = mem
            .resources
            .iter_mut()
            .find(|r| r.phys <= a.phys && a.phys.raw() - r.phys.raw() < r.size)
            .ok_or(bad.clone())?;
        let first = ((a.phys.raw() - r.phys.raw()) >> PAGE_SHIFT) as usize;
        let span = r.used.get(first..first + need).ok_or(bad.clone())?;
        if a.size == 0 || !span.iter().all(|u| *u) {
            return Err(bad);
        }
        r.used[first..first + need]
            .iter_mut()
            .for_each(|u| *u = false);
        r.free_pages += need as u64;
        Ok(())
    }

    /// Forgets a hot-removed device.
    pub fn remove_device(&mut self, id: DeviceId) {
        self.by_dev.remove(&id);
    }

    /// `pci_p2pmem_find_many(clients)`: among published providers whose
    /// `distance_many` succeeds, the one with the lowest total distance;
    /// ties go to the lowest BDF (Linux: uniformly random). Returns the
    /// provider and its distance.
    pub fn find_many(
        &self,
        topo: &Topology,
        clients: &[DeviceId],
    ) -> Result<Option<(DeviceId, u32)>, DistanceError> {
        if clients.is_empty() {
            return Err(DistanceError::NoClients);
        }
        let mut best: Option<(u32, Bdf, DeviceId)> = None;
        for (&id, m) in &self.by_dev {
            if !m.published {
                continue;
            }
            let Some(bdf) = topo.device(id).map(|d| d.bdf) else {
                continue;
            };
            match distance_many(topo, id, clients) {
                Ok(d) => {
                    if best.is_none_or(|(bd, bb, _)| (d, bdf) < (bd, bb)) {
                        best = Some((d, bdf, id));
                    }
                }
                Err(DistanceError::NotSupported { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(best.map(|(d, _, id)| (id, d)))
    }
}
