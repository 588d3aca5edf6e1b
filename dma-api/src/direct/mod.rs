//! The direct (no IOMMU) mapping backend: kernel/dma/direct.c and
//! kernel/dma/direct.h (`dma_direct_map_phys`, `dma_direct_unmap_phys`,
//! `dma_direct_map_sg`, `dma_direct_sync_single_for_*`,
//! `dma_direct_need_sync`, `dma_direct_max_mapping_size`).
//!
//! Per [`SegTarget`]:
//! * `Ram` — `phys_to_dma` through the device's dma-ranges (+ encryption
//!   bit) via [`ArchDma::ram_to_bus`]; if the result is out of the mask or
//!   outside every dma-range, or forced bouncing is on (confidential guest,
//!   `swiotlb=force`), bounce through [`Swiotlb`] (its DMA address is
//!   `phys_to_dma_unencrypted`). Non-coherent devices get the arch's cache
//!   program: map = for-device, unmap = for-CPU, neither with
//!   `SKIP_CPU_SYNC`; on a bounced mapping the maintenance covers the bounce
//!   buffer, like Linux.
//! * `PeerHostBridge` — MMIO: never bounced ([`DmaError::MmioNotBounceable`]
//!   under forced bouncing or when the mask cannot reach it), no cache
//!   maintenance. The DMA address is the BAR's *bus* address through the
//!   host bridge's MMIO windows ([`ArchDma::bar_to_bus`]). Linux
//!   (`DMA_ATTR_MMIO` in `dma_direct_map_phys`) uses the raw CPU physical
//!   address with no offset, which equals the bus address only where the
//!   windows are identity (x86). We translate where a window covers the BAR
//!   and fall back to the raw physical address (Linux) where none does
//!   (a BAR below another host bridge).
//! * `PeerBus(bus)` — the bus address itself, nothing mapped or unmapped.
//!   Unlike Linux we check it against the mask (`MaskUnreachable`, a
//!   fallback), since a device cannot emit an address above its mask.
//!
//! Coherent allocations ([`DmaBackend::map_coherent`]) follow
//! `dma_direct_alloc`, not the streaming path: never bounced, even under
//! forced bouncing; the address is `phys_to_dma_unencrypted` when
//! `force_dma_unencrypted` (a confidential guest), and a pool the device
//! cannot reach is a typed [`DmaError::CoherentUnreachable`].
//!
//! Scatterlists: every entry separately, DMA length = the entry's own
//! length, `nents = orig_nents` (direct never merges); on error everything
//! mapped so far is unmapped with `SKIP_CPU_SYNC`.

mod cache_log;
mod limits;

pub use cache_log::{CacheLog, CacheRecord, CACHE_LOG_KEEP};

use crate::arch_port::{ArchDevice, ArchDma, SyncPoint};
use crate::attrs::DmaAttrs;
use crate::bdf::Bdf;
use crate::device::DmaConstraints;
use crate::direction::Direction;
use crate::error::DmaError;
use crate::mask::DmaMask;
use crate::port::{
    map_sg_per_entry, map_sg_per_entry_within, map_sg_ram_per_entry, unmap_sg_per_entry,
    unmap_sg_ram_per_entry, SegmentRules,
};
use crate::port::{
    Bounce, BounceCause, CoherentRequest, ConstraintsRequest, DmaBackend, MapRequest, SegPlan,
    SegTarget,
};
use crate::swiotlb::{SegBoundary, Swiotlb};
use crate::sync::Mutex;
use crate::types::{BusAddr, DmaAddr, PhysAddr, SegKind};
use crate::window::WindowMap;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};
use scatterlist::{DmaFlags, SgTable};

/// Options of one device's direct backend. `min_align_mask` is the
/// starting value; the device's `dma_set_min_align_mask` replaces it
/// ([`DmaBackend::set_constraints`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct DirectConfig {
    /// `is_swiotlb_force_bounce`: every RAM mapping is bounced (confidential
    /// computing guests, `swiotlb=force`, restricted pools).
    pub force_bounce: bool,
    /// `dma_get_min_align_mask(dev)` (e.g. NVMe: 4 KiB − 1).
    pub min_align_mask: u64,
    /// The last byte of system RAM (`dma_direct_get_required_mask`), for
    /// `dma_addressing_limited` in [`DmaBackend::max_mapping_size`]; `None`
    /// means "unknown: assume limited unless the mask is 64-bit".
    pub ram_last: Option<PhysAddr>,
}

/// Counters of the direct backend.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct DirectStats {
    /// RAM mappings translated directly.
    pub direct: u64,
    /// RAM mappings bounced through swiotlb.
    pub bounced: u64,
    /// Peer mappings through the host bridge.
    pub host_bridge: u64,
    /// Peer bus-address segments.
    pub bus: u64,
    /// Unmaps that did work (RAM).
    pub unmaps: u64,
    /// Coherent allocations mapped (never bounced).
    pub coherent: u64,
}

#[derive(Default)]
struct Counters {
    direct: AtomicU64,
    bounced: AtomicU64,
    host_bridge: AtomicU64,
    bus: AtomicU64,
    unmaps: AtomicU64,
    coherent: AtomicU64,
}

/// The direct backend for one device.
pub struct DirectBackend {
    arch: &'static dyn ArchDma,
    /// The device for translation only: its `mask` is the widest; the
    /// current masks are in `lim` and applied here (`dma_capable`).
    dev: ArchDevice,
    /// The run-time limits, lock-free; written only by
    /// [`DmaBackend::set_constraints`].
    lim: limits::Limits,
    host_bridge_mmio: WindowMap,
    swiotlb: Option<Arc<Swiotlb>>,
    cfg: DirectConfig,
    coherent: bool,
    log: Mutex<CacheLog>,
    counters: Counters,
    name: String,
    /// The device's BDF when known ([`DirectBackend::for_device`]): table
    /// maps then screen their own DMA segments and name it in the error.
    bdf: Option<Bdf>,
}

impl core::fmt::Debug for DirectBackend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DirectBackend")
            .field("arch", &self.arch.name())
            .field("dev", &self.device())
            .field("cfg", &self.cfg)
            .finish()
    }
}

impl DirectBackend {
    /// A backend for the device described by `dev` on `arch`, with its host
    /// bridge's MMIO windows and an optional bounce pool.
    pub fn new(
        arch: &'static dyn ArchDma,
        dev: ArchDevice,
        host_bridge_mmio: WindowMap,
        swiotlb: Option<Arc<Swiotlb>>,
        cfg: DirectConfig,
    ) -> Self {
        let coherent = arch.coherent(&dev);
        Self {
            name: format!("direct({})", arch.name()),
            arch,
            lim: limits::Limits::new(dev.mask, cfg.min_align_mask),
            dev: ArchDevice {
                mask: DmaMask::BITS_64,
                ..dev
            },
            host_bridge_mmio,
            swiotlb,
            cfg,
            coherent,
            log: Mutex::new(CacheLog::default()),
            counters: Counters::default(),
            bdf: None,
        }
    }

    /// Names the device this backend serves: `map_sg` then refuses DMA
    /// segments that break its segment rules itself, in the mapping pass
    /// ([`DmaBackend::checks_mapped_segments`]), naming `bdf` in the error.
    #[must_use]
    pub fn for_device(mut self, bdf: Bdf) -> Self {
        self.bdf = Some(bdf);
        self
    }

    /// The device description, with its current streaming mask.
    pub fn device(&self) -> ArchDevice {
        ArchDevice {
            mask: self.lim.mask(),
            ..self.dev.clone()
        }
    }

    /// The bounce pool, if any.
    pub fn swiotlb(&self) -> Option<&Arc<Swiotlb>> {
        self.swiotlb.as_ref()
    }

    /// `dev_is_dma_coherent`.
    pub fn is_coherent(&self) -> bool {
        self.coherent
    }

    /// A copy of the cache-maintenance log.
    pub fn cache_log(&self) -> CacheLog {
        self.log.lock().clone()
    }

    /// Lowers every recorded program with the arch; returns the total code
    /// bytes, or the first lowering error.
    pub fn lower_recorded(&self) -> Result<usize, DmaError> {
        let log = self.cache_log();
        let mut total = 0;
        for r in &log.recent {
            total += self.arch.lower(&r.program)?.len();
        }
        Ok(total)
    }

    /// Counters.
    pub fn stats(&self) -> DirectStats {
        let c = &self.counters;
        DirectStats {
            direct: c.direct.load(Ordering::Relaxed),
            bounced: c.bounced.load(Ordering::Relaxed),
            host_bridge: c.host_bridge.load(Ordering::Relaxed),
            bus: c.bus.load(Ordering::Relaxed),
            unmaps: c.unmaps.load(Ordering::Relaxed),
            coherent: c.coherent.load(Ordering::Relaxed),
        }
    }

    /// `arch_sync_dma_for_{device,cpu}` for a non-coherent device: build,
    /// (in debug builds) lower, and record the program.
    fn cache_sync(
        &self,
        point: SyncPoint,
        phys: PhysAddr,
        len: u64,
        dir: Direction,
    ) -> Result<(), DmaError> {
        if self.coherent {
            return Ok(());
        }
        let Some(op) = self.arch.sync_op(point, dir) else {
            return Ok(());
        };
        let program = self.arch.cache_program(phys, len, SegKind::Ram, op)?;
        if program.is_empty() {
            return Ok(());
        }
        #[cfg(debug_assertions)]
        self.arch.lower(&program)?;
        self.log.lock().push(CacheRecord {
            point,
            op,
            phys,
            len,
            program,
        });
        Ok(())
    }

    fn check_len(phys: PhysAddr, len: u64) -> Result<(), DmaError> {
        if len == 0 {
            return Err(DmaError::ZeroLength { phys });
        }
        if phys.last_of(len).is_none() {
            return Err(DmaError::PhysOverflow { phys, len });
        }
        Ok(())
    }

    fn map_ram(&self, req: &MapRequest) -> Result<DmaAddr, DmaError> {
        let (phys, len, dir, attrs) = (req.phys, req.len, req.dir, req.attrs);
        let require_coherent = attrs.contains(DmaAttrs::REQUIRE_COHERENT);
        if require_coherent && !self.coherent {
            return Err(DmaError::RequireCoherent { phys, len });
        }
        let bounce_reason = if self.cfg.force_bounce {
            None
        } else {
            match self.ram_bus(self.lim.mask(), phys, len, attrs) {
                Ok(bus) => {
                    if !attrs.contains(DmaAttrs::SKIP_CPU_SYNC) {
                        self.cache_sync(SyncPoint::ForDevice, phys, len, dir)?;
                    }
                    self.counters.direct.fetch_add(1, Ordering::Relaxed);
                    return Ok(DmaAddr::from_bus(bus));
                }
                Err(e @ (DmaError::MaskUnreachable { .. } | DmaError::NotTranslatable { .. })) => {
                    Some(e)
                }
                Err(e) => return Err(e),
            }
        };
        // swiotlb_map.
        let Some(pool) = self.swiotlb.as_ref() else {
            return Err(bounce_reason.unwrap_or(DmaError::SwiotlbFull { len, slots: 0 }));
        };
        if require_coherent {
            return Err(DmaError::RequireCoherent { phys, len });
        }
        // The pool's first byte as this device addresses it: the boundary
        // is counted there (`phys_to_dma_unencrypted(dev, pool->start)`).
        let boundary = SegBoundary {
            mask: self.lim.constraints().seg_boundary_mask,
            pool_dma: self
                .arch
                .ram_to_bus(&self.dev, pool.start(), 1, DmaAttrs::CC_SHARED)
                .map_or(DmaAddr::new(pool.start().raw()), DmaAddr::from_bus),
        };
        let tlb = pool.map_bounded(phys, len, dir, attrs, self.lim.min_align_mask(), boundary)?;
        let bus = match self.ram_bus(self.lim.mask(), tlb, len, attrs | DmaAttrs::CC_SHARED) {
            Ok(b) => b,
            Err(e) => {
                let _ = pool.unmap(tlb, len, dir, DmaAttrs::SKIP_CPU_SYNC);
                return Err(e);
            }
        };
        if !attrs.contains(DmaAttrs::SKIP_CPU_SYNC) {
            if let Err(e) = self.cache_sync(SyncPoint::ForDevice, tlb, len, dir) {
                let _ = pool.unmap(tlb, len, dir, DmaAttrs::SKIP_CPU_SYNC);
                return Err(e);
            }
        }
        self.counters.bounced.fetch_add(1, Ordering::Relaxed);
        Ok(DmaAddr::from_bus(bus))
    }

    fn map_host_bridge(&self, req: &MapRequest) -> Result<DmaAddr, DmaError> {
        let bus = self.host_bridge_bus(req)?;
        self.counters.host_bridge.fetch_add(1, Ordering::Relaxed);
        Ok(DmaAddr::from_bus(bus))
    }

    /// The bus address of peer MMIO through the host bridge, or why it has
    /// none: MMIO is never bounced (`dma_direct_map_resource` refuses what
    /// the mask cannot reach; forced bouncing refuses all of it).
    fn host_bridge_bus(&self, req: &MapRequest) -> Result<BusAddr, DmaError> {
        let (phys, len) = (req.phys, req.len);
        if self.cfg.force_bounce {
            return Err(DmaError::MmioNotBounceable { phys, len });
        }
        let bus = match self.arch.bar_to_bus(&self.host_bridge_mmio, phys, len) {
            Ok(b) => b,
            Err(DmaError::NotTranslatable { .. }) => {
                // Outside the client's windows the CPU address is the DMA
                // address (`dma_direct_map_phys` with `DMA_ATTR_MMIO`), and
                // `dma_capable` holds it to `min_not_zero(mask,
                // bus_dma_limit)`: the limit is the top of the device's
                // dma-ranges (drivers/of/device.c `of_dma_configure_id`).
                let bus = BusAddr::new(phys.raw());
                let limit = self
                    .dev
                    .dma_ranges
                    .windows()
                    .iter()
                    .map(|w| w.bus_start.raw().saturating_add(w.size - 1))
                    .max();
                if limit.is_some_and(|l| bus.raw().saturating_add(len.saturating_sub(1)) > l) {
                    return Err(DmaError::MmioNotBounceable { phys, len });
                }
                bus
            }
            Err(e) => return Err(e),
        };
        if limits::reach(self.lim.mask(), bus, len).is_err() {
            return Err(DmaError::MmioNotBounceable { phys, len });
        }
        Ok(bus)
    }

    /// The CPU physical address behind a RAM DMA address (`dma_to_phys`).
    fn ram_phys(&self, dma: DmaAddr, len: u64) -> Result<PhysAddr, DmaError> {
        self.arch
            .bus_to_ram(&self.dev, dma.as_bus(), len)
            .map_err(|_| DmaError::NotMapped { dma, len })
    }

    fn pool_of(&self, phys: PhysAddr) -> Option<&Arc<Swiotlb>> {
        self.swiotlb.as_ref().filter(|p| p.contains(phys))
    }

    /// Linux `force_dma_unencrypted` (arch/x86/mm/mem_encrypt.c): the
    /// device's DMA must use shared (unencrypted) memory. True under forced
    /// bouncing, which models a confidential guest (`CC_ATTR_GUEST_MEM_ENCRYPT`),
    /// and on a memory-encrypting host whose device mask cannot carry the
    /// encryption bit (`dma_dev_mask <= DMA_BIT_MASK(__ffs64(sme_me_mask))`).
    pub fn force_dma_unencrypted(&self) -> bool {
        if self.cfg.force_bounce {
            return true;
        }
        match self.arch.info().mem_encrypt_bit {
            Some(bit) if self.dev.mem_encrypt => self.lim.mask().bits() <= u32::from(bit),
            _ => false,
        }
    }
}

impl DmaBackend for DirectBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self, req: &MapRequest) -> Result<(), DmaError> {
        Self::check_len(req.phys, req.len)?;
        match req.target {
            // RAM can always be bounced (a full pool is transient).
            SegTarget::Ram => Ok(()),
            SegTarget::PeerHostBridge => self.host_bridge_bus(req).map(|_| ()),
            SegTarget::PeerBus(bus) => limits::reach(self.lim.mask(), bus, req.len),
        }
    }

    fn map(&self, req: &MapRequest) -> Result<DmaAddr, DmaError> {
        Self::check_len(req.phys, req.len)?;
        match req.target {
            SegTarget::Ram => self.map_ram(req),
            SegTarget::PeerHostBridge => self.map_host_bridge(req),
            SegTarget::PeerBus(bus) => {
                limits::reach(self.lim.mask(), bus, req.len)?;
                self.counters.bus.fetch_add(1, Ordering::Relaxed);
                Ok(DmaAddr::from_bus(bus))
            }
        }
    }

    fn unmap(&self, dma: DmaAddr, req: &MapRequest) -> Result<(), DmaError> {
        if req.target != SegTarget::Ram {
            // MMIO and bus addresses: nothing was mapped (Linux: MMIO unmap is
            // a no-op, BUS_ADDR is never unmapped).
            return Ok(());
        }
        let len = req.len;
        let phys = self.ram_phys(dma, len)?;
        if !req.attrs.contains(DmaAttrs::SKIP_CPU_SYNC) {
            self.sync_for_cpu(dma, len, req.dir)?;
        }
        if let Some(pool) = self.pool_of(phys) {
            pool.unmap(phys, len, req.dir, DmaAttrs::SKIP_CPU_SYNC)
                .map_err(|_| DmaError::NotMapped { dma, len })?;
        }
        self.counters.unmaps.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// `dma_direct_alloc` (kernel/dma/direct.c) once the pages exist: the
    /// address is `phys_to_dma_direct`, i.e. `phys_to_dma_unencrypted` (no
    /// memory-encryption bit, [`DmaAttrs::CC_SHARED`]) when
    /// [`DirectBackend::force_dma_unencrypted`] — Linux has decrypted the
    /// pages with `set_memory_decrypted` — else `phys_to_dma`; and
    /// `dma_coherent_ok` must hold, else the allocation fails with
    /// [`DmaError::CoherentUnreachable`] naming the device, the range and
    /// the mask. Never bounced, under forced bouncing included: Linux never
    /// takes a coherent allocation from swiotlb for `swiotlb=force` or a
    /// confidential guest (only restricted-DMA pools allocate there, which
    /// is not modelled). No cache maintenance; the uncached remap Linux
    /// gives non-coherent devices is not modelled either (the simulated RAM
    /// has no CPU caches).
    fn map_coherent(&self, req: &CoherentRequest) -> Result<DmaAddr, DmaError> {
        Self::check_len(req.phys, req.len)?;
        let mut attrs = req.attrs | DmaAttrs::SKIP_CPU_SYNC;
        if self.force_dma_unencrypted() {
            attrs |= DmaAttrs::CC_SHARED;
        }
        // `dma_coherent_ok` checks the coherent mask.
        let mask = self.lim.coherent_mask();
        let unreachable = |bus| DmaError::CoherentUnreachable {
            device: req.device,
            phys: req.phys,
            len: req.len,
            mask,
            bus,
        };
        match self.ram_bus(mask, req.phys, req.len, attrs) {
            Ok(bus) => {
                self.counters.coherent.fetch_add(1, Ordering::Relaxed);
                Ok(DmaAddr::from_bus(bus))
            }
            Err(DmaError::MaskUnreachable { bus, .. }) => Err(unreachable(Some(bus))),
            Err(DmaError::NotTranslatable { .. }) => Err(unreachable(None)),
            Err(e) => Err(e),
        }
    }

    /// `dma_direct_free`: nothing was mapped, so nothing is undone; `dma`
    /// must translate back to `req`'s range ([`DmaError::NotMapped`]
    /// otherwise).
    fn unmap_coherent(&self, dma: DmaAddr, req: &CoherentRequest) -> Result<(), DmaError> {
        match self.ram_phys(dma, req.len) {
            Ok(phys) if phys == req.phys => Ok(()),
            _ => Err(DmaError::NotMapped { dma, len: req.len }),
        }
    }

    fn map_sg(
        &self,
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<usize, DmaError> {
        // dma-direct does not merge: one DMA segment per CPU entry.
        match self.bdf {
            Some(device) => {
                let rules = SegmentRules::new(device, &self.lim.constraints());
                map_sg_per_entry_within(self, table, plan, dir, attrs, rules)
            }
            None => map_sg_per_entry(self, table, plan, dir, attrs, DmaFlags::EMPTY),
        }
    }

    fn unmap_sg(
        &self,
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        unmap_sg_per_entry(self, table, plan, dir, attrs)
    }

    fn map_sg_ram(
        &self,
        table: &mut SgTable,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Option<Result<usize, DmaError>> {
        let rules = self
            .bdf
            .map(|device| SegmentRules::new(device, &self.lim.constraints()));
        Some(map_sg_ram_per_entry(
            self,
            table,
            dir,
            attrs,
            DmaFlags::EMPTY,
            rules,
        ))
    }

    fn unmap_sg_ram(
        &self,
        table: &mut SgTable,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Option<Result<(), DmaError>> {
        Some(unmap_sg_ram_per_entry(self, table, dir, attrs))
    }

    fn sync_for_cpu(&self, dma: DmaAddr, len: u64, dir: Direction) -> Result<(), DmaError> {
        let phys = self.ram_phys(dma, len)?;
        self.cache_sync(SyncPoint::ForCpu, phys, len, dir)?;
        if let Some(pool) = self.pool_of(phys) {
            pool.sync_for_cpu(phys, len, dir)
                .map_err(|_| DmaError::NotMapped { dma, len })?;
        }
        Ok(())
    }

    fn sync_for_device(&self, dma: DmaAddr, len: u64, dir: Direction) -> Result<(), DmaError> {
        let phys = self.ram_phys(dma, len)?;
        if let Some(pool) = self.pool_of(phys) {
            pool.sync_for_device(phys, len, dir)
                .map_err(|_| DmaError::NotMapped { dma, len })?;
        }
        self.cache_sync(SyncPoint::ForDevice, phys, len, dir)
    }

    fn need_sync(&self, dma: DmaAddr) -> bool {
        !self.coherent || self.bounce_of(dma).is_some()
    }

    /// `is_swiotlb_buffer(dev, dma_to_phys(dev, dma))`.
    fn bounce_of(&self, dma: DmaAddr) -> Option<Bounce> {
        let slot = self
            .ram_phys(dma, 1)
            .ok()
            .filter(|p| self.pool_of(*p).is_some())?;
        let cause = if self.cfg.force_bounce {
            BounceCause::Forced
        } else {
            BounceCause::Unreachable
        };
        Some(Bounce { slot, cause })
    }

    fn max_mapping_size(&self) -> u64 {
        let Some(pool) = self.swiotlb.as_ref() else {
            return u64::MAX;
        };
        let mask = self.lim.mask();
        let limited = match self.cfg.ram_last {
            Some(last) => match self.dev.dma_ranges.phys_to_bus(last, 1) {
                Ok(bus) => !mask.covers(bus, 1),
                Err(_) => true,
            },
            None => mask.bits() < 64,
        };
        if limited || self.cfg.force_bounce {
            pool.max_mapping_size(self.lim.min_align_mask())
        } else {
            u64::MAX
        }
    }

    fn opt_mapping_size(&self) -> u64 {
        // dma_opt_mapping_size: min(dma_max_mapping_size, ops hint = none).
        self.max_mapping_size()
    }

    fn checks_mapped_segments(&self) -> bool {
        self.bdf.is_some()
    }

    fn merge_boundary(&self) -> u64 {
        0
    }

    fn constraints(&self) -> Option<DmaConstraints> {
        Some(self.lim.constraints())
    }

    /// `dma_direct_supported` for each mask (see [`DirectBackend::adopt`]),
    /// then the new masks and min-align mask take effect for every later
    /// map, bounce decision and coherent allocation.
    fn set_constraints(&self, req: &ConstraintsRequest) -> Result<(), DmaError> {
        self.adopt(req)
    }
}

#[cfg(test)]
mod coherent_tests;
#[cfg(test)]
mod tests;
