//! A GPU owning device-private memory (Linux: nouveau's `nouveau_dmem.c`,
//! amdgpu's `kfd_migrate.c`): at probe it reserves a free physical range and
//! registers it as device-private, each page backed by a page of VRAM
//! behind its BAR. It migrates pages to RAM with its own copy engine on the
//! bus, and answers every peer per (client, access) pair from a table its
//! user configures: BAR alias, migrate, or refuse. Unlisted pairs migrate,
//! as Linux always does.

mod pairs;

pub use pairs::PairRule;

use dma_api::hmm::{
    release_region, request_free_region, DeviceEngine, DevicePrivateMemory, DevicePrivateOwner,
    HmmError, PeerAnswer, PeerAsk,
};
use dma_api::{Bdf, Direction, DmaAttrs, DmaDevice, PhysAddr, PAGE_SIZE};
use pairs::Pairs;
use std::sync::Arc;

/// The GPU driver's device-private memory.
pub struct HmmGpu {
    dev: Arc<DmaDevice>,
    engine: Arc<dyn DeviceEngine>,
    private: PhysAddr,
    vram: PhysAddr,
    pages: u64,
    pairs: Pairs,
}

impl core::fmt::Debug for HmmGpu {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HmmGpu")
            .field("bdf", &self.dev.bdf())
            .field("private", &self.private)
            .field("vram", &self.vram)
            .field("pages", &self.pages)
            .finish()
    }
}

impl HmmGpu {
    /// Probes: reserves `pages` device-private pages backed by the VRAM at
    /// `vram` (the BAR's CPU address of the first backing page) and
    /// registers them with `mem`.
    pub fn probe(
        mem: &Arc<DevicePrivateMemory>,
        dev: Arc<DmaDevice>,
        engine: Arc<dyn DeviceEngine>,
        vram: PhysAddr,
        pages: u64,
    ) -> Result<Arc<Self>, HmmError> {
        let len = pages.checked_mul(PAGE_SIZE).ok_or(HmmError::Unaligned {
            phys: vram,
            len: u64::MAX,
        })?;
        let private = request_free_region(mem.context(), dev.bdf(), len)?;
        let me = Arc::new(Self {
            dev,
            engine,
            private,
            vram,
            pages,
            pairs: Pairs::default(),
        });
        if let Err(e) = mem.register(me.clone(), private, len) {
            // Nothing half-done: the reserved range goes back.
            release_region(mem.context(), me.bdf(), private)?;
            return Err(e);
        }
        Ok(me)
    }

    /// The device.
    pub fn bdf(&self) -> Bdf {
        self.dev.bdf()
    }

    /// The device-private address of page `i` (`None` past the end).
    pub fn page(&self, i: u64) -> Option<PhysAddr> {
        (i < self.pages).then(|| PhysAddr::new(self.private.raw() + i * PAGE_SIZE))
    }

    /// Number of pages.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// The VRAM (BAR) address backing a device-private page.
    pub fn vram_of(&self, page: PhysAddr) -> Option<PhysAddr> {
        let off = page.offset_from(self.private)?;
        (off < self.pages * PAGE_SIZE).then(|| PhysAddr::new(self.vram.raw() + off))
    }

    /// The GPU writes its own memory: `data` at page `i` + `offset` (a
    /// shader store; local, not on the bus).
    pub fn write_local(&self, i: u64, offset: u64, data: &[u8]) -> Result<(), HmmError> {
        let page = self
            .page(i)
            .ok_or(HmmError::NotRegistered { page: self.private })?;
        if offset.saturating_add(data.len() as u64) > PAGE_SIZE {
            return Err(HmmError::Unaligned {
                phys: page,
                len: data.len() as u64,
            });
        }
        let at = self.vram_of(page).ok_or(HmmError::NotRegistered { page })?;
        Ok(self
            .engine
            .local_write(PhysAddr::new(at.raw() + offset), data)?)
    }

    /// The GPU reads page `i` of its own memory (local).
    pub fn read_local(&self, i: u64) -> Result<Vec<u8>, HmmError> {
        let page = self
            .page(i)
            .ok_or(HmmError::NotRegistered { page: self.private })?;
        let at = self.vram_of(page).ok_or(HmmError::NotRegistered { page })?;
        let mut b = vec![0u8; PAGE_SIZE as usize];
        self.engine.local_read(at, &mut b)?;
        Ok(b)
    }

    /// Sets the answer for `client` asking `access`.
    pub fn set_rule(&self, client: Bdf, access: Direction, rule: PairRule) {
        self.pairs.set(client, access, rule);
    }
}

impl DevicePrivateOwner for HmmGpu {
    fn device(&self) -> Bdf {
        self.dev.bdf()
    }

    /// Reads the page from VRAM and writes it with the copy engine to a
    /// mapping of `to` for the GPU itself (nouveau: `nouveau_dmem_copy_one`
    /// into a `dma_map_page` of the destination).
    fn migrate_to_ram(&self, page: PhysAddr, to: PhysAddr) -> Result<(), HmmError> {
        let at = self.vram_of(page).ok_or(HmmError::NotRegistered { page })?;
        let mut buf = vec![0u8; PAGE_SIZE as usize];
        self.engine.local_read(at, &mut buf)?;
        let dir = Direction::FromDevice;
        let dma = self
            .dev
            .map_phys(to, PAGE_SIZE, dir, DmaAttrs::empty())
            .map_err(|error| HmmError::Dma {
                page,
                reasons: dma_api::share::Reason::chain_of(&error),
                error,
            })?;
        let copied = self.engine.dma_write(dma, &buf);
        let unmapped = self.dev.unmap_phys(dma, PAGE_SIZE, dir, DmaAttrs::empty());
        copied.map_err(|why| HmmError::DeviceDma {
            device: self.bdf(),
            why,
        })?;
        unmapped.map_err(|error| HmmError::Dma {
            page,
            reasons: Vec::new(),
            error,
        })
    }

    fn peer_access(&self, ask: &PeerAsk) -> PeerAnswer {
        match self.pairs.get(ask.client, ask.access) {
            Some(PairRule::Alias) => match self.vram_of(ask.page) {
                Some(a) => PeerAnswer::BarAlias(a),
                None => {
                    PeerAnswer::Refuse(format!("{} is not a page of {}", ask.page, ask.provider))
                }
            },
            Some(PairRule::Refuse) => PeerAnswer::Refuse(format!(
                "{} does not share its device memory with {} ({})",
                ask.provider, ask.client, ask.access
            )),
            Some(PairRule::Migrate) | None => PeerAnswer::Migrate,
        }
    }
}
