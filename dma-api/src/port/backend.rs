//! The mapping backend port.
//!
//! The dispatcher (per device) decides *what* each segment is and *which way*
//! it travels — RAM, peer MMIO through the host bridge, or peer MMIO by bus
//! address through a switch — after asking the P2P oracle, the provider's
//! policy and the arch. A backend only executes that decision: translate or
//! allocate IOVA, write page tables, bounce, do cache maintenance. This is the
//! split Linux has between `pci_p2pdma_state()` and `dma_map_ops`, made explicit
//! (kernel/dma/mapping.c, kernel/dma/direct.c, drivers/iommu/dma-iommu.c).

use crate::attrs::DmaAttrs;
use crate::bdf::Bdf;
use crate::device::DmaConstraints;
use crate::direction::Direction;
use crate::error::DmaError;
use crate::types::{BusAddr, DmaAddr, Iova, PhysAddr};
use scatterlist::SgTable;

/// A mapping bounced through swiotlb: where, and why
/// ([`DmaBackend::bounce_of`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Bounce {
    /// The bounce buffer's CPU physical address (the swiotlb slot).
    pub slot: PhysAddr,
    /// Why the backend bounced.
    pub cause: BounceCause,
}

/// Why a mapping bounced.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BounceCause {
    /// dma-direct under `is_swiotlb_force_bounce` (`swiotlb=force`, a
    /// confidential guest): every RAM mapping bounces (kernel/dma/direct.h
    /// `dma_direct_map_phys`).
    Forced,
    /// dma-direct: the device cannot address the buffer (DMA mask or
    /// dma-ranges: `dma_capable` failed).
    Unreachable,
    /// dma-iommu: an untrusted device's range that does not fill whole IOVA
    /// granules (drivers/iommu/dma-iommu.c `dev_use_swiotlb`).
    Untrusted,
}

impl core::fmt::Display for BounceCause {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Forced => "forced (swiotlb=force)",
            Self::Unreachable => "the device cannot address the buffer (DMA mask or dma-ranges)",
            Self::Untrusted => "untrusted device, range not aligned to the IOVA granule",
        })
    }
}

/// How one range reaches memory; decided before a backend sees it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SegTarget {
    /// System RAM, including stolen RAM its owner redirected to the RAM it is:
    /// translate (dma-ranges or IOMMU), bounce when the mask or the platform
    /// demands it, cache maintenance for non-coherent devices.
    Ram,
    /// Peer MMIO reached through the root complex
    /// (`PCI_P2PDMA_MAP_THRU_HOST_BRIDGE`): mapped like `DMA_ATTR_MMIO` — IOMMU
    /// `MMIO` protection, no cache maintenance, never bounced.
    PeerHostBridge,
    /// Peer MMIO reached through a switch (`PCI_P2PDMA_MAP_BUS_ADDR`): the DMA
    /// address *is* this bus address. Backends must not map, sync or unmap it;
    /// in a table the segment carries `DmaFlags::BUS_ADDRESS`.
    PeerBus(BusAddr),
}

impl SegTarget {
    /// True for both peer targets (never cache-maintained, never bounced).
    pub const fn is_mmio(self) -> bool {
        !matches!(self, SegTarget::Ram)
    }
}

/// One range to map: the *effective* physical range (after any redirect),
/// its direction, attributes and target.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct MapRequest {
    /// Physical start of the range actually mapped.
    pub phys: PhysAddr,
    /// Length in bytes (> 0).
    pub len: u64,
    /// Direction of the transfer.
    pub dir: Direction,
    /// Linux `DMA_ATTR_*` bits.
    pub attrs: DmaAttrs,
    /// How the range is reached.
    pub target: SegTarget,
}

/// A coherent allocation to map: the mapping half of Linux `dma_alloc_attrs`
/// (kernel/dma/mapping.c). The raw layer took the page-aligned RAM from the
/// context's pool; the backend gives the device an address for it that is
/// coherent with the CPU (no bounce, no sync ever needed).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct CoherentRequest {
    /// The device the allocation is for (named by
    /// [`DmaError::CoherentUnreachable`]).
    pub device: Bdf,
    /// Physical start of the allocation (page aligned).
    pub phys: PhysAddr,
    /// Its length in bytes (whole pages, > 0).
    pub len: u64,
    /// The caller's `DMA_ATTR_*` bits (`dma_alloc_attrs`' `attrs`).
    pub attrs: DmaAttrs,
}

impl CoherentRequest {
    /// The same range as a streaming request: bidirectional RAM with
    /// `SKIP_CPU_SYNC` (what `dma_alloc_attrs` asks of the mapping). Used by
    /// backends whose `map` never bounces RAM, and by dma-debug for its
    /// records.
    pub fn as_map_request(&self) -> MapRequest {
        MapRequest {
            phys: self.phys,
            len: self.len,
            dir: Direction::Bidirectional,
            attrs: self.attrs | DmaAttrs::SKIP_CPU_SYNC,
            target: SegTarget::Ram,
        }
    }
}

/// What [`DmaBackend::set_constraints`] is asked to adopt for a running
/// device. Linux keeps these in `struct device` (`dma_mask`,
/// `coherent_dma_mask`, `dma_parms`), where every `dma_map_ops` call reads
/// them afresh; here a backend that caches them (the IOMMU's IOVA limit,
/// the direct backend's `dma_capable` mask) is told when they change.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ConstraintsRequest {
    /// The device (named by the errors).
    pub device: Bdf,
    /// The new constraints, already validated field by field. Backends
    /// ignore `virt_boundary_mask` (the mapping layer checks it).
    pub constraints: DmaConstraints,
    /// The RAM coherent allocations come from (the context's pool,
    /// [`DmaContext::ram_pool`](crate::device::DmaContext::ram_pool)): the
    /// coherent mask must reach it where nothing translates.
    pub coherent_pool: (PhysAddr, u64),
}

/// The dispatcher's decision for one CPU entry of a table, in CPU order
/// (`plan[i]` belongs to the `i`-th entry of `SgTable::iter()`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SegPlan {
    /// Effective physical start (differs from the entry's when redirected).
    pub phys: PhysAddr,
    /// How it is reached.
    pub target: SegTarget,
}

/// Opaque state of a two-step IOVA mapping (Linux `struct dma_iova_state`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct IovaState {
    /// Base of the IOVA allocation.
    pub base: Iova,
    /// Bytes reserved.
    pub size: u64,
    /// Offset of the first byte inside its granule (only the first link may
    /// be unaligned).
    pub first_offset: u64,
}

/// The two-step IOVA API (Linux ≥ 6.14 `dma_iova_try_alloc` / `link` / `sync` /
/// `unlink` / `destroy`, drivers/iommu/dma-iommu.c). Only IOMMU backends have
/// it; [`DmaBackend::iova_ops`] returns `None` otherwise, which is the explicit
/// form of Linux's "try_alloc returned false".
pub trait IovaOps: Send + Sync {
    /// Reserves IOVA space for `size` bytes whose first byte is at `phys`'s
    /// in-granule offset.
    fn try_alloc(&self, phys: PhysAddr, size: u64) -> Result<IovaState, DmaError>;
    /// Maps `[phys, phys + size)` at `offset` inside the reservation.
    fn link(
        &self,
        state: &IovaState,
        phys: PhysAddr,
        offset: u64,
        size: u64,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError>;
    /// Makes links in `[offset, offset + size)` visible to the device (one
    /// IOTLB sync per batch).
    fn sync(&self, state: &IovaState, offset: u64, size: u64) -> Result<(), DmaError>;
    /// Unmaps `[offset, offset + size)`.
    fn unlink(
        &self,
        state: &IovaState,
        offset: u64,
        size: u64,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError>;
    /// Unlinks the first `mapped_len` bytes and frees the reservation.
    fn destroy(
        &self,
        state: IovaState,
        mapped_len: u64,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError>;
}

/// A mapping backend. Implementations: the direct (arch) backend with its
/// bounce buffer, the IOMMU backend, and decorators (dma-debug, tracing, fault
/// injection) that wrap any backend.
pub trait DmaBackend: Send + Sync {
    /// Short name for reports (`direct`, `iommu`, `debug(iommu)`, ...).
    fn name(&self) -> &str;

    /// Maps one range (Linux `dma_map_phys`). For [`SegTarget::PeerBus`] the
    /// answer is the bus address and nothing is mapped.
    fn map(&self, req: &MapRequest) -> Result<DmaAddr, DmaError>;

    /// Whether [`DmaBackend::map`] could map `req` at all, without mapping
    /// anything: the permanent refusals only (MMIO that would need bouncing,
    /// a mask nothing can reach), never a transient shortage. What a plan
    /// query asks so a driver bounces exactly the entries that need it.
    /// The default accepts everything.
    fn check(&self, req: &MapRequest) -> Result<(), DmaError> {
        let _ = req;
        Ok(())
    }

    /// Undoes [`DmaBackend::map`]; `req` is the request that produced `dma`.
    fn unmap(&self, dma: DmaAddr, req: &MapRequest) -> Result<(), DmaError>;

    /// Maps a coherent allocation: the mapping half of Linux
    /// `dma_alloc_attrs` (kernel/dma/mapping.c), i.e. `dma_direct_alloc`'s
    /// `phys_to_dma_direct` + `dma_coherent_ok` (kernel/dma/direct.c) or
    /// `iommu_dma_alloc`'s `__iommu_dma_map` (drivers/iommu/dma-iommu.c).
    ///
    /// Unlike [`DmaBackend::map`] the result must be coherent in every
    /// mode: CPU and device see the same bytes with no sync, so the range
    /// is **never bounced** (a swiotlb slot is a copy, not the memory). A
    /// backend that cannot give the device such an address fails
    /// ([`DmaError::CoherentUnreachable`]).
    ///
    /// The default maps [`CoherentRequest::as_map_request`] with
    /// [`DmaBackend::map`], which is right only for a backend whose `map`
    /// never bounces RAM. A backend that may bounce must override it, and a
    /// decorator must forward it to the backend it wraps (else the default
    /// would route the allocation through the wrapped backend's `map`).
    fn map_coherent(&self, req: &CoherentRequest) -> Result<DmaAddr, DmaError> {
        self.map(&req.as_map_request())
    }

    /// Undoes [`DmaBackend::map_coherent`]: the unmapping half of Linux
    /// `dma_free_attrs` (`dma_direct_free`, `iommu_dma_free`); `req` is the
    /// request that produced `dma`. The default unmaps
    /// [`CoherentRequest::as_map_request`]; overriding rules as for
    /// [`DmaBackend::map_coherent`].
    fn unmap_coherent(&self, dma: DmaAddr, req: &CoherentRequest) -> Result<(), DmaError> {
        self.unmap(dma, &req.as_map_request())
    }

    /// Maps a table (Linux `dma_map_sgtable`): writes the DMA side of the
    /// entries and `set_nents`; returns the number of DMA segments.
    /// `plan.len()` equals `table.orig_nents()`. `PeerBus` segments get their
    /// bus address, `DmaFlags::BUS_ADDRESS` and **their own** length.
    fn map_sg(
        &self,
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<usize, DmaError>;

    /// Undoes [`DmaBackend::map_sg`] (skipping `BUS_ADDRESS` segments) and
    /// clears the DMA side.
    fn unmap_sg(
        &self,
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError>;

    /// [`DmaBackend::map_sg`] of a table whose every CPU entry is system RAM
    /// reached at its own address — the plan would say
    /// `SegPlan { phys: entry.phys(), target: SegTarget::Ram }` for every
    /// entry — without that plan: the dispatcher has checked every entry's
    /// kind against the memory map and need not write a plan the backend
    /// would only read back. `None`: this backend wants the plan (the
    /// caller writes it and calls `map_sg`), the default. A decorator must
    /// keep the default (forwarding would skip its own `map_sg`); pointers
    /// forward it. Linux has no plan to skip: `dma_map_sg_attrs` hands the
    /// backend the scatterlist alone.
    fn map_sg_ram(
        &self,
        table: &mut SgTable,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Option<Result<usize, DmaError>> {
        let _ = (table, dir, attrs);
        None
    }

    /// Undoes [`DmaBackend::map_sg_ram`] as [`DmaBackend::unmap_sg`] undoes
    /// `map_sg`; `None` (the default) if this backend has no `map_sg_ram`.
    fn unmap_sg_ram(
        &self,
        table: &mut SgTable,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Option<Result<(), DmaError>> {
        let _ = (table, dir, attrs);
        None
    }

    /// Hands `[dma, dma + len)` (a sub-range of a mapping is allowed) back to
    /// the CPU: invalidate caches / copy out of the bounce buffer.
    fn sync_for_cpu(&self, dma: DmaAddr, len: u64, dir: Direction) -> Result<(), DmaError>;

    /// Hands `[dma, dma + len)` to the device: clean caches / copy into the
    /// bounce buffer.
    fn sync_for_device(&self, dma: DmaAddr, len: u64, dir: Direction) -> Result<(), DmaError>;

    /// Linux `dma_need_sync`: whether syncs on this address do anything.
    fn need_sync(&self, dma: DmaAddr) -> bool;

    /// The swiotlb slot a live mapping at `dma` bounces through and why,
    /// or `None` if it is not bounced: Linux `is_swiotlb_buffer(dev, phys)`
    /// on the address behind `dma` (`dma_to_phys` for dma-direct,
    /// `iommu_iova_to_phys` for dma-iommu), which their sync paths ask.
    /// The default, for backends without a bounce pool, is `None`.
    fn bounce_of(&self, dma: DmaAddr) -> Option<Bounce> {
        let _ = dma;
        None
    }

    /// Linux `dma_max_mapping_size`.
    fn max_mapping_size(&self) -> u64;

    /// Linux `dma_opt_mapping_size`.
    fn opt_mapping_size(&self) -> u64;

    /// Linux `dma_get_merge_boundary` (0: cannot merge).
    fn merge_boundary(&self) -> u64;

    /// True if [`map_sg`](DmaBackend::map_sg) itself refuses a DMA segment
    /// that breaks the segment rules of the constraints it applies (longer
    /// than the max segment size, crossing the segment boundary) with
    /// [`DmaError::ConstraintViolated`] naming the entry, undoing the rest.
    /// [`DmaDevice`](crate::device::DmaDevice) then skips its own pass over
    /// the mapped segments. Linux has no such check outside dma-debug
    /// (kernel/dma/debug.c `check_sg_segment`); dma-iommu's `__finalise_sg`
    /// honours both rules by construction, dma-direct relies on the block
    /// layer having built conforming entries. The default, `false`, makes
    /// the device check every mapped table.
    fn checks_mapped_segments(&self) -> bool {
        false
    }

    /// The two-step IOVA API, if this backend has an IOMMU behind it.
    fn iova_ops(&self) -> Option<&dyn IovaOps> {
        None
    }

    /// The device constraints this backend applies now (its masks, min-align
    /// mask, segment limits; `virt_boundary_mask` is 0), or `None` if it
    /// keeps none (the default). [`DmaDevice`](crate::DmaDevice) starts from
    /// them, so what it reports is what the backend does.
    fn constraints(&self) -> Option<DmaConstraints> {
        None
    }

    /// Adopts new constraints for a running device — the backend half of
    /// Linux `dma_set_mask`, `dma_set_coherent_mask`,
    /// `dma_set_min_align_mask`, `dma_set_max_seg_size`,
    /// `dma_set_seg_boundary` (include/linux/dma-mapping.h): first its
    /// `dma_supported` check (kernel/dma/mapping.c; a mask that cannot reach
    /// what the device must reach is [`DmaError::MaskNotSupported`]), then
    /// all of them at once, or none. The caller guarantees nothing is mapped.
    ///
    /// The default refuses with [`DmaError::ConstraintsFixed`]; a decorator
    /// must forward it (and [`DmaBackend::constraints`]) to the backend it
    /// wraps.
    fn set_constraints(&self, req: &ConstraintsRequest) -> Result<(), DmaError> {
        Err(DmaError::ConstraintsFixed {
            device: req.device,
            backend: alloc::string::String::from(self.name()),
        })
    }

    /// The raw (C-style) layer tells the stack that the driver checked `dma`
    /// with `dma_mapping_error` (Linux `debug_dma_mapping_error`,
    /// kernel/dma/debug.c). Only dma-debug records it; decorators forward it;
    /// every other backend ignores it.
    fn note_mapping_error_check(&self, dma: DmaAddr) {
        let _ = dma;
    }
}
