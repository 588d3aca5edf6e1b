//! The registered device-private ranges, where each page's data lives now,
//! and the CPU's access to them.
//!
//! A CPU access ([`CpuMemory`] on the registry) to a page still on the
//! device migrates exactly that page first — the owner's
//! `migrate_to_ram` copies it with its own DMA — and then completes on the
//! RAM copy (mm/memory.c `do_swap_page` → `migrate_to_ram` for a
//! device-private swap entry). Pages never touched stay on the device.

use super::error::HmmError;
use super::owner::DevicePrivateOwner;
use crate::bdf::Bdf;
use crate::device::DmaContext;
use crate::mem::{CpuMemory, MemError};
use crate::sync::Mutex;
use crate::types::{PhysAddr, SegKind, PAGE_SIZE};
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// Told about every completed migration, after the page moved (the
/// `mmu_interval_notifier` of a process address space uses it to invalidate
/// device mappings of the page).
pub trait MigrationObserver: Send + Sync {
    /// `page` (device-private) now lives at `to` (RAM).
    fn migrated(&self, page: PhysAddr, to: PhysAddr);
}

struct Region {
    len: u64,
    owner: Arc<dyn DevicePrivateOwner>,
}

#[derive(Default)]
struct State {
    regions: BTreeMap<u64, Region>,
    /// Device-private page → its RAM copy.
    migrated: BTreeMap<u64, PhysAddr>,
}

/// Device-private memory of one machine: registrations, migrations, and the
/// CPU's view.
pub struct DevicePrivateMemory {
    ctx: Arc<DmaContext>,
    state: Mutex<State>,
    observers: Mutex<Vec<Arc<dyn MigrationObserver>>>,
}

impl core::fmt::Debug for DevicePrivateMemory {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = self.state.lock();
        f.debug_struct("DevicePrivateMemory")
            .field("regions", &s.regions.len())
            .field("migrated", &s.migrated.len())
            .finish()
    }
}

impl DevicePrivateMemory {
    /// An empty registry over `ctx`.
    pub fn new(ctx: Arc<DmaContext>) -> Arc<Self> {
        Arc::new(Self {
            ctx,
            state: Mutex::new(State::default()),
            observers: Mutex::new(Vec::new()),
        })
    }

    /// The context.
    pub fn context(&self) -> &Arc<DmaContext> {
        &self.ctx
    }

    /// Registers `[start, start + len)` for `owner` (Linux:
    /// `memremap_pages` with the owner's `dev_pagemap_ops`). The memory map
    /// must say the whole range is device-private memory of the owner's
    /// device; pages must be whole; ranges must not overlap.
    pub fn register(
        &self,
        owner: Arc<dyn DevicePrivateOwner>,
        start: PhysAddr,
        len: u64,
    ) -> Result<(), HmmError> {
        if len == 0 || !len.is_multiple_of(PAGE_SIZE) || !start.is_aligned(PAGE_SIZE) {
            return Err(HmmError::Unaligned { phys: start, len });
        }
        let bdf = owner.device();
        let not_dp = HmmError::NotDevicePrivate {
            owner: bdf,
            phys: start,
            len,
        };
        let provider = self.ctx.provider_of(bdf).map_err(|_| not_dp.clone())?;
        match self.ctx.memmap.read().kind_of_range(start, len) {
            Some((_, SegKind::DevicePrivate(p))) if p == provider => {}
            _ => return Err(not_dp),
        }
        let mut s = self.state.lock();
        let end = start.raw() + len;
        if let Some((&at, r)) = s.regions.range(..end).next_back() {
            if at + r.len > start.raw() {
                return Err(HmmError::Overlap {
                    phys: start,
                    existing: PhysAddr::new(at),
                });
            }
        }
        s.regions.insert(start.raw(), Region { len, owner });
        Ok(())
    }

    /// Adds an observer of migrations.
    pub fn observe(&self, o: Arc<dyn MigrationObserver>) {
        self.observers.lock().push(o);
    }

    /// The owner of the registered range holding `page`.
    pub fn owner_of(&self, page: PhysAddr) -> Result<Arc<dyn DevicePrivateOwner>, HmmError> {
        let s = self.state.lock();
        s.regions
            .range(..=page.raw())
            .next_back()
            .filter(|(&at, r)| page.raw() - at < r.len)
            .map(|(_, r)| r.owner.clone())
            .ok_or(HmmError::NotRegistered { page })
    }

    /// Whether `phys` lies in a registered device-private range.
    pub fn is_device_private(&self, phys: PhysAddr) -> bool {
        self.owner_of(phys).is_ok()
    }

    /// Where the page's data was migrated to, if it was.
    pub fn ram_copy(&self, page: PhysAddr) -> Option<PhysAddr> {
        let page = page.align_down(PAGE_SIZE)?;
        self.state.lock().migrated.get(&page.raw()).copied()
    }

    /// Every migrated page, ascending.
    pub fn migrated_pages(&self) -> Vec<PhysAddr> {
        self.state
            .lock()
            .migrated
            .keys()
            .map(|&p| PhysAddr::new(p))
            .collect()
    }

    /// Migrates the page holding `phys` to RAM (once: a migrated page
    /// returns its copy) and returns the RAM page. Linux:
    /// mm/migrate_device.c `migrate_vma_setup` → owner copy →
    /// `migrate_vma_pages` / `migrate_vma_finalize`. On failure the RAM
    /// page is freed and the page stays on the device.
    pub fn migrate_to_ram(&self, phys: PhysAddr) -> Result<PhysAddr, HmmError> {
        let page = phys.align_down(PAGE_SIZE).unwrap_or(phys);
        if let Some(to) = self.ram_copy(page) {
            return Ok(to);
        }
        let owner = self.owner_of(page)?;
        let to = self.ctx.alloc_ram(PAGE_SIZE).map_err(|e| HmmError::Dma {
            page,
            error: e,
            reasons: Vec::new(),
        })?;
        if let Err(e) = owner.migrate_to_ram(page, to) {
            if let Err(f) = self.ctx.free_ram(to) {
                self.ctx.report_drop_error(f);
            }
            return Err(e);
        }
        let raced = {
            let mut s = self.state.lock();
            match s.migrated.get(&page.raw()) {
                Some(&other) => Some(other),
                None => {
                    s.migrated.insert(page.raw(), to);
                    None
                }
            }
        };
        if let Some(other) = raced {
            // Another CPU migrated it meanwhile: its copy wins.
            if let Err(f) = self.ctx.free_ram(to) {
                self.ctx.report_drop_error(f);
            }
            return Ok(other);
        }
        let observers = self.observers.lock().clone();
        for o in observers {
            o.migrated(page, to);
        }
        Ok(to)
    }

    /// The owning device of the page holding `phys`.
    pub fn owner_device(&self, phys: PhysAddr) -> Result<Bdf, HmmError> {
        self.owner_of(phys).map(|o| o.device())
    }

    /// Splits `[phys, phys + len)` into pieces at page boundaries of
    /// device-private ranges and resolves each to where the CPU must access
    /// it, migrating device-private pages first.
    fn resolve(&self, phys: PhysAddr, len: usize) -> Result<Vec<(PhysAddr, usize)>, MemError> {
        let mut out = Vec::new();
        let mut at = 0usize;
        while at < len {
            let p = phys.checked_add(at as u64).ok_or(MemError::Overflow {
                addr: phys,
                len: len as u64,
            })?;
            let in_page = (PAGE_SIZE - p.page_offset()) as usize;
            let n = in_page.min(len - at);
            if self.is_device_private(p) {
                let ram = self.migrate_to_ram(p).map_err(|_| MemError::Unbacked {
                    addr: p,
                    len: n as u64,
                })?;
                out.push((PhysAddr::new(ram.raw() + p.page_offset()), n));
            } else {
                out.push((p, n));
            }
            at += n;
        }
        Ok(out)
    }
}

impl Drop for DevicePrivateMemory {
    fn drop(&mut self) {
        let migrated = core::mem::take(&mut self.state.lock().migrated);
        for to in migrated.into_values() {
            if let Err(e) = self.ctx.free_ram(to) {
                self.ctx.report_drop_error(e);
            }
        }
    }
}

/// The CPU's view: device-private pages are migrated before the access
/// completes; everything else is the context's memory.
impl CpuMemory for DevicePrivateMemory {
    fn read(&self, phys: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        let mut off = 0usize;
        for (p, n) in self.resolve(phys, buf.len())? {
            self.ctx.mem.read(p, &mut buf[off..off + n])?;
            off += n;
        }
        Ok(())
    }

    fn write(&self, phys: PhysAddr, data: &[u8]) -> Result<(), MemError> {
        let pieces = self.resolve(phys, data.len())?;
        let mut off = 0usize;
        for (p, n) in pieces {
            self.ctx.mem.write(p, &data[off..off + n])?;
            off += n;
        }
        Ok(())
    }
}
