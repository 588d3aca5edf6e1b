//! The IOMMU backend for one device: single-range map/unmap, syncs, limits.
//!
//! drivers/iommu/dma-iommu.c `iommu_dma_map_phys` / `__iommu_dma_map` /
//! `__iommu_dma_unmap`, `iommu_dma_sync_single_for_*`,
//! `iommu_dma_opt_mapping_size`, `iommu_dma_max_mapping_size`,
//! `iommu_dma_get_merge_boundary`.
//!
//! Bouncing (`iommu_dma_map_swiotlb`, `dev_use_swiotlb`): with a swiotlb
//! pool attached ([`IommuDmaBackend::with_swiotlb`]), a RAM range of an
//! untrusted device that does not start and end on an IOVA granule
//! (`iova_offset(iovad, phys | size) != 0`) is copied into pool slots that
//! own whole granules; the pre- and post-padding of those granules is zeroed
//! and the granules are mapped instead of the original, so the device never
//! sees the data sharing the original's granules. Without a pool the backend
//! behaves like Linux with `CONFIG_SWIOTLB=n` (`dev_use_swiotlb` false): the
//! original is mapped in whole granules.

// `DmaError` has drop glue (some variants own a `String`): an eagerly built
// error is dropped on the success path, which showed up in profiles.
#![allow(clippy::unnecessary_lazy_evaluations)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use dma_api::device::DmaConstraints;
use dma_api::port::{
    Bounce, BounceCause, CoherentRequest, ConstraintsRequest, DmaBackend, IovaOps, MapRequest,
    SegPlan, SegTarget,
};
use dma_api::swiotlb::Swiotlb;
use dma_api::{Direction, DmaAddr, DmaAttrs, DmaError, Iova, PhysAddr};
use scatterlist::{SgTable, PAGE_SIZE};

use super::device::IommuDevice;
use super::domain::{lock, DmaDomain};
use super::limits::Limits;
use super::{dma_info_to_prot, dom_err};
use crate::domain::{FlushToken, Iommu, QueueOutcome};
use crate::iova::{DeviceIovaPolicy, IovaRange, IOVA_RANGE_CACHE_MAX_SIZE};
use crate::pgtable::{Prot, Pte};

/// The calling thread's CPU slot (for the IOVA magazines and flush queues).
pub(crate) fn cpu_slot() -> usize {
    use std::sync::atomic::AtomicUsize;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    std::thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    SLOT.with(|s| *s)
}

/// SWIOTLB's largest mapping (`IO_TLB_SEGSIZE` × `IO_TLB_SIZE` = 128 × 2 KiB),
/// the `dma_max_mapping_size` of an untrusted device.
const SWIOTLB_MAX_MAPPING: u64 = 128 * 2048;

/// Cache maintenance a non-coherent device needs, as the arch would be asked
/// to do it (this backend has no arch; the dispatcher or a test replays it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncRecord {
    /// Physical start.
    pub phys: PhysAddr,
    /// Length in bytes.
    pub len: u64,
    /// Direction of the transfer.
    pub dir: Direction,
    /// True for "hand to the CPU" (unmap, `sync_for_cpu`), false for "hand to
    /// the device" (map, `sync_for_device`).
    pub for_cpu: bool,
}

/// Counters of an [`IommuDmaBackend`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct IommuDmaStats {
    /// IOVA allocations made (one per single map, one per table).
    pub iova_allocs: u64,
    /// Page-table map calls.
    pub pt_maps: u64,
    /// Unmaps completed by a synchronous IOTLB flush.
    pub strict_flushes: u64,
    /// Unmaps handed to the flush queue.
    pub lazy_queued: u64,
    /// Two-step `sync` calls (one IOTLB sync per batch).
    pub iotlb_syncs: u64,
    /// Single maps bounced through swiotlb (untrusted devices).
    pub bounced: u64,
}

#[derive(Default)]
struct Counters {
    iova_allocs: AtomicU64,
    pt_maps: AtomicU64,
    strict_flushes: AtomicU64,
    lazy_queued: AtomicU64,
    iotlb_syncs: AtomicU64,
    bounced: AtomicU64,
}

/// The IOMMU DMA backend of one device whose group is attached to a `Dma` or
/// `DmaFq` domain. Several backends (devices) may share one [`DmaDomain`]
/// and one IOMMU.
pub struct IommuDmaBackend {
    pub(crate) dom: Arc<DmaDomain>,
    pub(crate) dev: IommuDevice,
    policy: DeviceIovaPolicy,
    pub(crate) lim: Limits,
    name: String,
    counters: Counters,
    sync_log: Mutex<Vec<SyncRecord>>,
    swiotlb: Option<Arc<Swiotlb>>,
}

impl std::fmt::Debug for IommuDmaBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IommuDmaBackend")
            .field("device", &self.dev)
            .field("domain", &self.dom.id())
            .field("limit", &self.dma_limit())
            .field("swiotlb", &self.swiotlb.as_ref().map(|p| p.start()))
            .finish()
    }
}

impl IommuDmaBackend {
    /// The backend of `dev`, whose group must be attached to `dom`.
    /// Refuses a segment boundary that is not `2^n - 1`.
    pub fn new(dom: Arc<DmaDomain>, dev: IommuDevice) -> Result<Self, DmaError> {
        let m = dev.seg_boundary_mask;
        if m.wrapping_add(1) & m != 0 {
            return Err(DmaError::InvalidMaskValue { value: m });
        }
        let attached = lock(dom.iommu()).group_domain(dev.group);
        if attached != Some(dom.id()) {
            return Err(DmaError::IommuDomain {
                domain: dom.id().0,
                reason: format!(
                    "group {} of {} is attached to {:?}, not to it",
                    dev.group.0,
                    dev.bdf,
                    attached.map(|d| d.0)
                ),
            });
        }
        Ok(Self {
            policy: DeviceIovaPolicy::new(dev.is_pci, dev.forcedac),
            lim: Limits::new(&dev),
            name: "iommu".into(),
            counters: Counters::default(),
            sync_log: Mutex::new(Vec::new()),
            swiotlb: None,
            dom,
            dev,
        })
    }

    /// Attaches the swiotlb pool this backend bounces through
    /// (`is_swiotlb_active`). Only untrusted devices bounce; the pool must
    /// live in the same memory the IOMMU translates into.
    pub fn with_swiotlb(mut self, pool: Arc<Swiotlb>) -> Self {
        self.swiotlb = Some(pool);
        self
    }

    /// The bounce pool, if one is attached.
    pub fn swiotlb(&self) -> Option<&Arc<Swiotlb>> {
        self.swiotlb.as_ref()
    }

    /// The domain cookie.
    pub fn domain(&self) -> &Arc<DmaDomain> {
        &self.dom
    }

    /// The device's sticky 32-bit-first policy.
    pub fn iova_policy(&self) -> &DeviceIovaPolicy {
        &self.policy
    }

    /// Counters so far.
    pub fn stats(&self) -> IommuDmaStats {
        let c = &self.counters;
        IommuDmaStats {
            iova_allocs: c.iova_allocs.load(Ordering::Relaxed),
            pt_maps: c.pt_maps.load(Ordering::Relaxed),
            strict_flushes: c.strict_flushes.load(Ordering::Relaxed),
            lazy_queued: c.lazy_queued.load(Ordering::Relaxed),
            iotlb_syncs: c.iotlb_syncs.load(Ordering::Relaxed),
            bounced: c.bounced.load(Ordering::Relaxed),
        }
    }

    /// Takes the cache maintenance recorded so far (non-coherent devices).
    pub fn take_sync_log(&self) -> Vec<SyncRecord> {
        std::mem::take(&mut *self.sync_log.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Linux `dev_use_swiotlb(dev) && iova_unaligned(phys, size)`: whether
    /// Linux would bounce this range (untrusted device, start or length not
    /// on a granule).
    pub fn needs_bounce(&self, phys: PhysAddr, len: u64) -> bool {
        !self.dev.trusted && (phys.raw() | len) & (self.granule() - 1) != 0
    }

    pub(crate) fn granule(&self) -> u64 {
        self.dom.granule()
    }

    /// `iova_align`: rounds up to whole granules, `None` on overflow.
    pub(crate) fn iova_align(&self, x: u64) -> Option<u64> {
        let g = self.granule();
        x.checked_add(g - 1).map(|v| v & !(g - 1))
    }

    /// Refuses what Linux refuses when a bounce would be needed: MMIO
    /// (`-EPERM`/`DMA_MAPPING_ERROR`) and `REQUIRE_COHERENT`; and
    /// `REQUIRE_COHERENT` RAM on a non-coherent device (it would need cache
    /// maintenance).
    pub(crate) fn check_reach(
        &self,
        phys: PhysAddr,
        len: u64,
        mmio: bool,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        let coherent_req = attrs.contains(DmaAttrs::REQUIRE_COHERENT);
        if self.needs_bounce(phys, len) {
            if mmio {
                return Err(DmaError::MmioNotBounceable { phys, len });
            }
            if coherent_req {
                return Err(DmaError::CoherenceRequired { phys, len });
            }
        }
        if coherent_req && !mmio && !self.dev.coherent {
            return Err(DmaError::CoherenceRequired { phys, len });
        }
        Ok(())
    }

    /// `iommu_dma_alloc_iova` for `size` bytes (whole granules) below the
    /// streaming DMA limit.
    pub(crate) fn alloc_iova(&self, size: u64) -> Result<IovaRange, DmaError> {
        self.alloc_iova_below(size, self.dma_limit())
    }

    /// `iommu_dma_alloc_iova` for `size` bytes at or below `limit`.
    pub(crate) fn alloc_iova_below(&self, size: u64, limit: Iova) -> Result<IovaRange, DmaError> {
        let pages = size >> self.granule().trailing_zeros();
        let r = self
            .policy
            .alloc_on(self.dom.iovad(), cpu_slot(), pages, limit)?;
        self.counters.iova_allocs.fetch_add(1, Ordering::Relaxed);
        Ok(r)
    }

    /// Frees an allocation nothing was mapped in (error paths).
    pub(crate) fn free_iova_now(&self, range: IovaRange) {
        // The range came from `alloc_iova` just before: the free cannot be
        // refused.
        let _ = self.dom.iovad().free_fast_on(cpu_slot(), range);
    }

    /// Maps into the domain, counting.
    pub(crate) fn pt_map(
        &self,
        io: &mut Iommu,
        iova: Iova,
        phys: PhysAddr,
        len: u64,
        prot: Prot,
    ) -> Result<(), DmaError> {
        self.counters.pt_maps.fetch_add(1, Ordering::Relaxed);
        io.map(self.dom.id(), iova, phys, len, prot)
            .map_err(dom_err)
    }

    /// Completes an unmap: strict → flush now (the IOVA is freed after the
    /// invalidation completed); lazy → the flush queue (freed when the queue
    /// releases the entry). Untrusted devices are always strict.
    pub(crate) fn complete(&self, io: &mut Iommu, token: FlushToken) -> Result<(), DmaError> {
        let outcome = if self.dev.trusted {
            io.queue(token, cpu_slot()).map_err(dom_err)?
        } else {
            io.flush(token).map_err(dom_err)?;
            QueueOutcome::FlushedNow
        };
        let c = match outcome {
            QueueOutcome::Queued => &self.counters.lazy_queued,
            QueueOutcome::FlushedNow => &self.counters.strict_flushes,
        };
        c.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn count_bounce(&self) {
        self.counters.bounced.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_sync(&self) {
        self.counters.iotlb_syncs.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether maps with `attrs` need cache maintenance at all.
    #[inline]
    pub(crate) fn syncs(&self, attrs: DmaAttrs) -> bool {
        !self.dev.coherent && !attrs.contains(DmaAttrs::SKIP_CPU_SYNC)
    }

    /// Records cache maintenance for a non-coherent device (skipped for
    /// coherent devices, MMIO and `SKIP_CPU_SYNC`).
    pub(crate) fn record_sync(
        &self,
        phys: PhysAddr,
        len: u64,
        dir: Direction,
        for_cpu: bool,
        mmio: bool,
        attrs: DmaAttrs,
    ) {
        if self.dev.coherent || mmio || attrs.contains(DmaAttrs::SKIP_CPU_SYNC) {
            return;
        }
        self.sync_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(SyncRecord {
                phys,
                len,
                dir,
                for_cpu,
            });
    }

    /// `__iommu_dma_map` of the range itself: IOVA of
    /// `iova_align(len + iova_offset(phys))`, one page-table map with `prot`;
    /// the DMA address keeps the in-granule offset; the IOVA is at or below
    /// `limit`.
    fn map_in_place(
        &self,
        req: &MapRequest,
        prot: Prot,
        mmio: bool,
        limit: Iova,
    ) -> Result<DmaAddr, DmaError> {
        let g = self.granule();
        let off = req.phys.raw() & (g - 1);
        let size = self
            .iova_align(req.len + off)
            .ok_or_else(|| DmaError::PhysOverflow {
                phys: req.phys,
                len: req.len,
            })?;
        self.record_sync(req.phys, req.len, req.dir, false, mmio, req.attrs);
        let range = self.alloc_iova_below(size, limit)?;
        let res = {
            let mut io = lock(self.dom.iommu());
            self.pt_map(
                &mut io,
                range.start(),
                PhysAddr::new(req.phys.raw() - off),
                size,
                prot,
            )
        };
        if let Err(e) = res {
            self.free_iova_now(range);
            return Err(e);
        }
        Ok(DmaAddr::new(range.start().raw() + off))
    }

    /// Translates `[dma, dma + len)` granule by granule through the page
    /// table and records the maintenance of each physically contiguous run
    /// (MMIO leaves are skipped).
    fn sync_range(
        &self,
        dma: DmaAddr,
        len: u64,
        dir: Direction,
        for_cpu: bool,
    ) -> Result<(), DmaError> {
        if self.dev.coherent || len == 0 {
            return Ok(());
        }
        let end = dma
            .raw()
            .checked_add(len)
            .ok_or_else(|| DmaError::IovaRangeInvalid {
                iova: dma.as_iova(),
                len,
            })?;
        let g = self.granule();
        let io = lock(self.dom.iommu());
        let pt = io
            .page_table(self.dom.id())
            .ok_or_else(|| dom_err(crate::DomainError::UnknownDomain(self.dom.id())))?;
        let mut runs: Vec<(PhysAddr, u64)> = Vec::new();
        let mut pos = dma.raw();
        while pos < end {
            let chunk_end = ((pos & !(g - 1)).saturating_add(g)).min(end);
            let iova = Iova::new(pos);
            let phys = pt
                .iova_to_phys(iova)
                .ok_or_else(|| DmaError::IovaNotAllocated { iova })?;
            let mmio = matches!(
                pt.leaf_entry(iova),
                Some((_, _, Pte::Leaf { prot, .. })) if prot.contains(Prot::MMIO)
            );
            let n = chunk_end - pos;
            if !mmio {
                match runs.last_mut() {
                    Some((p, l)) if p.raw() + *l == phys.raw() => *l += n,
                    _ => runs.push((phys, n)),
                }
            }
            pos = chunk_end;
        }
        drop(io);
        for (p, l) in runs {
            self.record_sync(p, l, dir, for_cpu, false, DmaAttrs::empty());
        }
        Ok(())
    }
}

impl DmaBackend for IommuDmaBackend {
    fn name(&self) -> &str {
        &self.name
    }

    /// `iommu_dma_map_phys`: IOVA of `iova_align(len + iova_offset(phys))`,
    /// one `iommu_map` with `dma_info_to_prot`; the DMA address keeps the
    /// in-granule offset. `PeerBus` returns its bus address untouched.
    fn map(&self, req: &MapRequest) -> Result<DmaAddr, DmaError> {
        if req.len == 0 {
            return Err(DmaError::ZeroLength { phys: req.phys });
        }
        if req.phys.last_of(req.len).is_none() {
            return Err(DmaError::PhysOverflow {
                phys: req.phys,
                len: req.len,
            });
        }
        let mmio = match req.target {
            SegTarget::PeerBus(bus) => return Ok(DmaAddr::from_bus(bus)),
            SegTarget::PeerHostBridge => true,
            SegTarget::Ram => req.attrs.contains(DmaAttrs::MMIO),
        };
        self.check_reach(req.phys, req.len, mmio, req.attrs)?;
        let prot = dma_info_to_prot(req.dir, self.dev.coherent, req.attrs, mmio);
        if !mmio && self.bounces(req.phys, req.len) {
            return self.map_bounced(req, prot);
        }
        self.map_in_place(req, prot, mmio, self.dma_limit())
    }

    /// `iommu_dma_alloc` (drivers/iommu/dma-iommu.c) once the pages exist:
    /// `__iommu_dma_map` of the allocation with
    /// `dma_info_to_prot(DMA_BIDIRECTIONAL, coherent, attrs)`, never through
    /// swiotlb — untrusted devices included, since the allocation is page
    /// aligned and owns its pages. (Were the IOMMU granule larger than a
    /// page, whole granules would be mapped, as Linux does without
    /// `dev_use_swiotlb`; every simulated IOMMU uses 4 KiB.) Zero or
    /// wrapping lengths are refused like [`Self::map`].
    fn map_coherent(&self, req: &CoherentRequest) -> Result<DmaAddr, DmaError> {
        let m = req.as_map_request();
        if m.len == 0 {
            return Err(DmaError::ZeroLength { phys: m.phys });
        }
        if m.phys.last_of(m.len).is_none() {
            return Err(DmaError::PhysOverflow {
                phys: m.phys,
                len: m.len,
            });
        }
        let prot = dma_info_to_prot(m.dir, self.dev.coherent, m.attrs, false);
        // `iommu_dma_alloc` allocates below `coherent_dma_mask`.
        self.map_in_place(&m, prot, false, self.coherent_limit())
    }

    /// `iommu_dma_free`: `__iommu_dma_unmap` of the whole allocation (strict
    /// flush or flush queue, as [`Self::unmap`]).
    fn unmap_coherent(&self, dma: DmaAddr, req: &CoherentRequest) -> Result<(), DmaError> {
        self.unmap(dma, &req.as_map_request())
    }

    /// `iommu_dma_unmap_phys` / `__iommu_dma_unmap`: unmap the whole
    /// granules, then strict flush or flush queue; the IOVA is freed only
    /// after the invalidation. A bounced mapping then goes back to swiotlb
    /// (copy back, free the slots) — after the device lost access.
    fn unmap(&self, dma: DmaAddr, req: &MapRequest) -> Result<(), DmaError> {
        let mmio = match req.target {
            SegTarget::PeerBus(_) => return Ok(()),
            SegTarget::PeerHostBridge => true,
            SegTarget::Ram => req.attrs.contains(DmaAttrs::MMIO),
        };
        if req.len == 0 {
            return Err(DmaError::ZeroLength { phys: req.phys });
        }
        let g = self.granule();
        let off = dma.raw() & (g - 1);
        let base = Iova::new(dma.raw() - off);
        let size = off
            .checked_add(req.len)
            .and_then(|t| self.iova_align(t))
            .ok_or_else(|| DmaError::IovaRangeInvalid {
                iova: base,
                len: req.len,
            })?;
        // Linux trusts the caller's length; we check it against the IOVA
        // allocation, so a too-long unmap cannot take the neighbouring
        // mapping (issue 11, bug 7). Allocations are rounded up to a power
        // of two at most.
        let alloc = self.dom.iovad().with_domain(|d| d.find(base));
        match alloc {
            Some(r)
                if r.start() == base
                    && (r.len() == size || r.len() == size.next_power_of_two()) => {}
            Some(r) if r.start() == base => {
                return Err(DmaError::UnmapLengthMismatch {
                    dma,
                    len: req.len,
                    mapped: r.len() - off,
                })
            }
            _ => return Err(DmaError::IovaNotAllocated { iova: base }),
        }
        let mut io = lock(self.dom.iommu());
        let phys = io
            .page_table(self.dom.id())
            .and_then(|pt| pt.iova_to_phys(dma.as_iova()))
            .ok_or_else(|| DmaError::IovaNotAllocated { iova: base })?;
        self.record_sync(phys, req.len, req.dir, true, mmio, req.attrs);
        let token = io.unmap(self.dom.id(), base, size).map_err(dom_err)?;
        let unmapped = token.unmapped();
        self.complete(&mut io, token)?;
        drop(io);
        let bounce = if mmio {
            Ok(())
        } else {
            self.unmap_bounce(dma, phys, req)
        };
        if unmapped != size {
            return Err(DmaError::IovaRangeInvalid {
                iova: base,
                len: size,
            });
        }
        bounce
    }

    fn map_sg(
        &self,
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<usize, DmaError> {
        self.map_sg_impl(table, plan, dir, attrs)
    }

    fn unmap_sg(
        &self,
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        self.unmap_sg_impl(table, plan, dir, attrs)
    }

    /// `iommu_dma_sync_single_for_cpu`: nothing for coherent devices;
    /// otherwise translate (`iommu_iova_to_phys`) and invalidate. Unlike
    /// Linux, which translates only the first byte, every granule is
    /// translated (a two-step mapping need not be physically contiguous).
    /// A bounced address then copies bounce → original
    /// (`swiotlb_sync_single_for_cpu`).
    fn sync_for_cpu(&self, dma: DmaAddr, len: u64, dir: Direction) -> Result<(), DmaError> {
        self.sync_range(dma, len, dir, true)?;
        self.sync_bounce(dma, len, dir, true)
    }

    /// `iommu_dma_sync_single_for_device`: a bounced address first copies
    /// original → bounce (`swiotlb_sync_single_for_device`); then, as
    /// [`Self::sync_for_cpu`], clean.
    fn sync_for_device(&self, dma: DmaAddr, len: u64, dir: Direction) -> Result<(), DmaError> {
        self.sync_bounce(dma, len, dir, false)?;
        self.sync_range(dma, len, dir, false)
    }

    /// True for non-coherent devices (coherent ones skip syncs) and for
    /// bounced addresses (the first swiotlb use clears `dma_skip_sync`).
    fn need_sync(&self, dma: DmaAddr) -> bool {
        !self.dev.coherent || self.bounce_phys(dma).is_some()
    }

    /// `is_swiotlb_buffer(dev, iommu_iova_to_phys(domain, dma))`: only
    /// untrusted devices' unaligned ranges bounce (`dev_use_swiotlb`).
    fn bounce_of(&self, dma: DmaAddr) -> Option<Bounce> {
        self.bounce_phys(dma).map(|slot| Bounce {
            slot,
            cause: BounceCause::Untrusted,
        })
    }

    /// `iommu_dma_max_mapping_size`: unlimited, except untrusted devices
    /// (bounced through SWIOTLB in Linux: 256 KiB).
    fn max_mapping_size(&self) -> u64 {
        if self.dev.trusted {
            u64::MAX
        } else {
            SWIOTLB_MAX_MAPPING
        }
    }

    /// `iommu_dma_opt_mapping_size` = `iova_rcache_range()`:
    /// `PAGE_SIZE << (IOVA_RANGE_CACHE_MAX_SIZE - 1)` = 128 KiB.
    fn opt_mapping_size(&self) -> u64 {
        PAGE_SIZE << (IOVA_RANGE_CACHE_MAX_SIZE - 1)
    }

    /// `iommu_dma_get_merge_boundary`: smallest IOMMU page − 1.
    fn merge_boundary(&self) -> u64 {
        self.granule() - 1
    }

    fn iova_ops(&self) -> Option<&dyn IovaOps> {
        Some(self)
    }

    fn constraints(&self) -> Option<DmaConstraints> {
        Some(self.current_constraints())
    }

    /// See `IommuDmaBackend::adopt` (dma/limits.rs): any mask holding an
    /// IOVA granule (Linux `dma_supported` is true for dma-iommu); the IOVA
    /// limit, the coherent IOVA limit and `map_sg`'s segment limits follow.
    fn set_constraints(&self, req: &ConstraintsRequest) -> Result<(), DmaError> {
        self.adopt(req)
    }
}
