//! A simulated process address space: virtual pages backed by RAM,
//! device-private memory or a device's BAR (a device VMA), with
//!
//! * [`ProcessMm::range_fault`] — mm/hmm.c `hmm_range_fault`: per-page
//!   results; the faulting device's own device-private pages stay in place,
//!   anyone else's are migrated to RAM unless their owner lets this
//!   (device, access) pair through its BAR alias;
//! * [`ProcessMm::map_for_device`] — the 2019 device-VMA idea: a virtual
//!   range mapped for a peer device page by page through the owning driver's
//!   decision, then the normal dispatcher;
//! * interval notifiers — mm/mmu_notifier.c `mmu_interval_notifier`: every
//!   change of a range (unmap, migration, a CPU fault migrating a page)
//!   reaches every device mapping of it, which is torn down at once; the
//!   driver re-maps and reaches the new place.

mod mapping;

pub use mapping::DeviceVmaMapping;

use dma_api::device::DmaDevice;
use dma_api::hmm::{
    Backing, DevicePrivateMemory, HmmError, HmmPfn, MigrationObserver, PeerAnswer, PeerAsk,
    VirtAddr,
};
use dma_api::mem::CpuMemory;
use dma_api::{Bdf, Direction, PhysAddr, SegKind, PAGE_SIZE};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

#[derive(Default)]
struct State {
    pages: BTreeMap<u64, Backing>,
    notifiers: Vec<Weak<DeviceVmaMapping>>,
}

/// One process's address space.
pub struct ProcessMm {
    dp: Arc<DevicePrivateMemory>,
    state: Mutex<State>,
}

impl std::fmt::Debug for ProcessMm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessMm")
            .field("pages", &self.lock().pages.len())
            .finish()
    }
}

struct Observer(Weak<ProcessMm>);

impl MigrationObserver for Observer {
    fn migrated(&self, page: PhysAddr, to: PhysAddr) {
        if let Some(mm) = self.0.upgrade() {
            mm.page_moved(page, to);
        }
    }
}

fn unaligned(va: VirtAddr, len: u64) -> HmmError {
    HmmError::Unaligned {
        phys: PhysAddr::new(va.raw()),
        len,
    }
}

fn pages_of(va: VirtAddr, len: u64) -> Result<impl Iterator<Item = u64>, HmmError> {
    if len == 0 || !len.is_multiple_of(PAGE_SIZE) || !va.raw().is_multiple_of(PAGE_SIZE) {
        return Err(unaligned(va, len));
    }
    let end = va.raw().checked_add(len).ok_or(unaligned(va, len))?;
    Ok((va.raw()..end).step_by(PAGE_SIZE as usize))
}

impl ProcessMm {
    /// An empty address space over the machine's device-private memory.
    pub fn new(dp: Arc<DevicePrivateMemory>) -> Arc<Self> {
        let mm = Arc::new(Self {
            dp: dp.clone(),
            state: Mutex::new(State::default()),
        });
        dp.observe(Arc::new(Observer(Arc::downgrade(&mm))));
        mm
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Maps `[va, va + len)` to consecutive pages starting at `backing`.
    /// The memory map must agree with the claimed kind (RAM, a registered
    /// device-private range, a device BAR); nothing may be mapped there.
    pub fn mmap(&self, va: VirtAddr, backing: Backing, len: u64) -> Result<(), HmmError> {
        let vpages: Vec<u64> = pages_of(va, len)?.collect();
        let (start, kind_ok) = match backing {
            Backing::Ram(p) => (p, self.kind_is(p, len, |k| k == SegKind::Ram)),
            Backing::Bar(p) => (
                p,
                self.kind_is(p, len, |k| matches!(k, SegKind::PeerBar(_))),
            ),
            Backing::DevicePrivate(p) => (
                p,
                (0..len / PAGE_SIZE).all(|i| {
                    self.dp
                        .is_device_private(PhysAddr::new(p.raw() + i * PAGE_SIZE))
                }),
            ),
        };
        if start.raw() % PAGE_SIZE != 0 {
            return Err(HmmError::Unaligned { phys: start, len });
        }
        if !kind_ok {
            return Err(HmmError::WrongKind { phys: start, len });
        }
        let mut s = self.lock();
        if let Some(&v) = vpages.iter().find(|v| s.pages.contains_key(v)) {
            return Err(HmmError::Mapped { va: v });
        }
        for (i, v) in vpages.into_iter().enumerate() {
            let p = PhysAddr::new(start.raw() + i as u64 * PAGE_SIZE);
            let b = match backing {
                Backing::Ram(_) => Backing::Ram(p),
                Backing::Bar(_) => Backing::Bar(p),
                Backing::DevicePrivate(_) => Backing::DevicePrivate(p),
            };
            s.pages.insert(v, b);
        }
        Ok(())
    }

    fn kind_is(&self, p: PhysAddr, len: u64, ok: impl Fn(SegKind) -> bool) -> bool {
        self.dp
            .context()
            .memmap
            .read()
            .kind_of_range(p, len)
            .is_some_and(|(_, k)| ok(k))
    }

    /// What backs the page at `va`.
    pub fn backing(&self, va: VirtAddr) -> Option<Backing> {
        self.lock()
            .pages
            .get(&(va.raw() & !(PAGE_SIZE - 1)))
            .copied()
    }

    /// Unmaps `[va, va + len)`; every device mapping of the range is
    /// invalidated first (`munmap` → `mmu_notifier_invalidate_range_start`).
    pub fn munmap(&self, va: VirtAddr, len: u64) -> Result<(), HmmError> {
        let vpages: Vec<u64> = pages_of(va, len)?.collect();
        let hit = {
            let mut s = self.lock();
            if let Some(&v) = vpages.iter().find(|v| !s.pages.contains_key(v)) {
                return Err(HmmError::Unmapped { va: v });
            }
            for v in &vpages {
                s.pages.remove(v);
            }
            Self::overlapping(&mut s, va.raw(), len)
        };
        for m in hit {
            m.invalidate();
        }
        Ok(())
    }

    fn overlapping(s: &mut State, start: u64, len: u64) -> Vec<Arc<DeviceVmaMapping>> {
        s.notifiers.retain(|w| w.strong_count() > 0);
        s.notifiers
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|m| m.overlaps(start, len))
            .collect()
    }

    /// A device-private page moved: every virtual page backed by it now
    /// points at the RAM copy, and the device mappings of those pages are
    /// invalidated.
    fn page_moved(&self, page: PhysAddr, to: PhysAddr) {
        let hit = {
            let mut s = self.lock();
            let moved: Vec<u64> = s
                .pages
                .iter()
                .filter(|(_, b)| **b == Backing::DevicePrivate(page))
                .map(|(&v, _)| v)
                .collect();
            let mut hit = Vec::new();
            for v in moved {
                s.pages.insert(v, Backing::Ram(to));
                hit.extend(Self::overlapping(&mut s, v, PAGE_SIZE));
            }
            hit
        };
        for m in hit {
            m.invalidate();
        }
    }

    /// Migrates the device-private pages of `[va, va + len)` to RAM
    /// (mm/migrate_device.c `migrate_vma_setup`/`_pages`/`_finalize`).
    /// Returns how many pages moved.
    pub fn migrate_to_ram(&self, va: VirtAddr, len: u64) -> Result<usize, HmmError> {
        let mut n = 0;
        for v in pages_of(va, len)? {
            match self.backing(VirtAddr::new(v)) {
                Some(Backing::DevicePrivate(p)) => {
                    self.dp.migrate_to_ram(p)?;
                    n += 1;
                }
                Some(_) => {}
                None => return Err(HmmError::Unmapped { va: v }),
            }
        }
        Ok(n)
    }

    /// `hmm_range_fault` for `device` doing `access`: one result per page.
    /// The device's own device-private pages stay; another owner's are
    /// migrated unless the owner answers this exact (provider, client,
    /// access) triple with a BAR alias; a refusal fails the walk (Linux:
    /// `-EFAULT`).
    pub fn range_fault(
        &self,
        va: VirtAddr,
        len: u64,
        device: Bdf,
        access: Direction,
    ) -> Result<Vec<HmmPfn>, HmmError> {
        let mut out = Vec::new();
        for v in pages_of(va, len)? {
            let b = self
                .backing(VirtAddr::new(v))
                .ok_or(HmmError::Unmapped { va: v })?;
            out.push(match b {
                Backing::Ram(p) => HmmPfn::Ram(p),
                Backing::Bar(p) => HmmPfn::PeerBar(p),
                Backing::DevicePrivate(p) => {
                    let owner = self.dp.owner_of(p)?;
                    if owner.device() == device {
                        HmmPfn::DevicePrivate(p)
                    } else {
                        let ask = PeerAsk {
                            provider: owner.device(),
                            client: device,
                            access,
                            page: p,
                        };
                        match owner.peer_access(&ask) {
                            PeerAnswer::BarAlias(a) => HmmPfn::PeerBar(a),
                            PeerAnswer::Migrate => HmmPfn::Ram(self.dp.migrate_to_ram(p)?),
                            PeerAnswer::Refuse(why) => {
                                return Err(HmmError::Refused {
                                    owner: owner.device(),
                                    client: device,
                                    page: p,
                                    reasons: vec![dma_api::share::Reason::new(
                                        dma_api::share::ReasonSource::Policy,
                                        why,
                                    )],
                                })
                            }
                        }
                    }
                }
            });
        }
        Ok(out)
    }

    /// The CPU reads `buf.len()` bytes at `va` (a device-private page is
    /// migrated first: the CPU fault path).
    pub fn cpu_read(&self, va: VirtAddr, buf: &mut [u8]) -> Result<(), HmmError> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = va.raw() + done as u64;
            let n = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(buf.len() - done);
            let phys = match self.backing(VirtAddr::new(at)) {
                Some(Backing::Ram(p) | Backing::Bar(p)) => p,
                Some(Backing::DevicePrivate(p)) => self.dp.migrate_to_ram(p)?,
                None => return Err(HmmError::Unmapped { va: at }),
            };
            let p = PhysAddr::new(phys.raw() + at % PAGE_SIZE);
            self.dp.read(p, &mut buf[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    /// Maps `[va, va + len)` for `client` page by page: RAM and BAR pages
    /// through the dispatcher (a BAR's owner policy and the oracle decide),
    /// device-private pages through their owner's per-pair answer first.
    /// The mapping is registered as an interval notifier of the range.
    pub fn map_for_device(
        &self,
        client: &Arc<DmaDevice>,
        va: VirtAddr,
        len: u64,
        dir: Direction,
    ) -> Result<Arc<DeviceVmaMapping>, HmmError> {
        let m = DeviceVmaMapping::build(self, client, va, len, dir)?;
        self.lock().notifiers.push(Arc::downgrade(&m));
        Ok(m)
    }

    pub(crate) fn device_private(&self) -> &Arc<DevicePrivateMemory> {
        &self.dp
    }
}
