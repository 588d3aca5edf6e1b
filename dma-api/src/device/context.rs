//! The machine-wide state every [`DmaDevice`](super::DmaDevice) shares.

use super::ram_alloc::RamAllocator;
use crate::arch_port::{ArchDevice, ArchDma};
use crate::bdf::Bdf;
use crate::direct::{DirectBackend, DirectConfig};
use crate::error::DmaError;
use crate::mem::{CpuMem, MemError};
use crate::memmap::MemoryMap;
use crate::p2p::{P2pMemRegistry, RouteCache};
use crate::port::ProviderPolicy;
use crate::swiotlb::Swiotlb;
use crate::sync::{Mutex, RwLock};
use crate::topology::Topology;
use crate::types::{PhysAddr, ProviderId, SegKind};
use crate::window::WindowMap;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// Shared machine context: topology, memory map, the P2P route cache,
/// provider policies, the arch backend, simulated RAM and a RAM allocator
/// (for coherent allocations and fallback bounce buffers).
///
/// Lock order (never taken the other way round): `topology` → `memmap` →
/// `route_cache` → `policies` → `p2pmem` → `range_policies`. Provider policies are called with the
/// topology read lock held, so a policy must not write the topology.
pub struct DmaContext {
    /// The PCI topology (hot-plug and ACS changes take the write lock and bump
    /// its generation, which invalidates `route_cache`).
    pub topology: Arc<RwLock<Topology>>,
    /// What every physical range is.
    pub memmap: Arc<RwLock<MemoryMap>>,
    /// P2P verdicts keyed by topology generation.
    pub route_cache: Mutex<RouteCache>,
    /// Owner policies by the provider's id: the default for every range the
    /// provider owns (stolen RAM, device-private memory, and p2pmem ranges
    /// registered without a policy of their own); without one, allow.
    pub policies: RwLock<BTreeMap<ProviderId, Arc<dyn ProviderPolicy>>>,
    /// The registered peer memory (`pci_p2pdma_add_resource`): a BAR range
    /// is peer memory only while it is registered here.
    pub p2pmem: RwLock<P2pMemRegistry>,
    /// Policies of single registered p2pmem ranges, by (owner, range start).
    pub(crate) range_policies: RwLock<BTreeMap<(ProviderId, u64), Arc<dyn ProviderPolicy>>>,
    /// The CPU architecture.
    pub arch: &'static dyn ArchDma,
    /// CPU physical memory (the simulator's RAM, or a kernel's accessor).
    pub mem: CpuMem,
    ram: Mutex<RamAllocator>,
    ram_pool: (PhysAddr, u64),
    drop_errors: Mutex<Vec<DmaError>>,
}

impl core::fmt::Debug for DmaContext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DmaContext")
            .field("arch", &self.arch.name())
            .finish_non_exhaustive()
    }
}

impl DmaContext {
    /// A context over `topology` and `memmap`. `ram_pool` is the RAM range the
    /// context allocates coherent buffers and fallback bounce buffers from;
    /// it must be system RAM in `memmap` (else [`DmaError::UnknownMemory`])
    /// and, like Linux's `ZONE_DMA32`, reachable by every device that uses
    /// [`DmaDevice::alloc_coherent`](super::DmaDevice::alloc_coherent)
    /// (coherent memory is never bounced: a device that cannot reach the pool
    /// gets [`DmaError::CoherentUnreachable`]).
    ///
    /// No BAR is peer memory until its owner registers it
    /// ([`DmaContext::add_p2pmem`]); [`DmaContext::with_p2pmem`] starts from
    /// a machine's registrations.
    pub fn new(
        topology: Topology,
        memmap: MemoryMap,
        arch: &'static dyn ArchDma,
        mem: CpuMem,
        ram_pool: (PhysAddr, u64),
    ) -> Result<Arc<Self>, DmaError> {
        Self::with_p2pmem(topology, memmap, P2pMemRegistry::new(), arch, mem, ram_pool)
    }

    /// [`DmaContext::new`] with the p2pmem ranges already registered (a
    /// machine description's, or what the platform registered at boot).
    pub fn with_p2pmem(
        topology: Topology,
        memmap: MemoryMap,
        p2pmem: P2pMemRegistry,
        arch: &'static dyn ArchDma,
        mem: CpuMem,
        ram_pool: (PhysAddr, u64),
    ) -> Result<Arc<Self>, DmaError> {
        let (start, len) = ram_pool;
        if !matches!(memmap.kind_of_range(start, len), Some((_, SegKind::Ram))) {
            return Err(DmaError::UnknownMemory { phys: start, len });
        }
        Ok(Arc::new(Self {
            topology: Arc::new(RwLock::new(topology)),
            memmap: Arc::new(RwLock::new(memmap)),
            route_cache: Mutex::new(RouteCache::new()),
            policies: RwLock::new(BTreeMap::new()),
            p2pmem: RwLock::new(p2pmem),
            range_policies: RwLock::new(BTreeMap::new()),
            arch,
            mem,
            ram: Mutex::new(RamAllocator::new(start, len)?),
            ram_pool: (start, len),
            drop_errors: Mutex::new(Vec::new()),
        }))
    }

    /// Records an error that a `Drop` (of a mapping, a registration, an
    /// allocation) could not return, so none is lost; the oldest are kept
    /// when more than [`DmaContext::MAX_DROP_ERRORS`] pile up.
    pub fn report_drop_error(&self, e: DmaError) {
        let mut v = self.drop_errors.lock();
        if v.len() < Self::MAX_DROP_ERRORS {
            v.push(e);
        }
    }

    /// How many drop errors are kept.
    pub const MAX_DROP_ERRORS: usize = 1024;

    /// Takes the errors recorded by [`DmaContext::report_drop_error`].
    pub fn take_drop_errors(&self) -> Vec<DmaError> {
        core::mem::take(&mut *self.drop_errors.lock())
    }

    /// Sets the owner policy of `provider` and returns the one it replaces,
    /// so a replacement is never silent.
    pub fn set_policy(
        &self,
        provider: ProviderId,
        policy: Arc<dyn ProviderPolicy>,
    ) -> Option<Arc<dyn ProviderPolicy>> {
        self.policies.write().insert(provider, policy)
    }

    /// The policy of `provider`, if one is registered.
    pub fn policy(&self, provider: ProviderId) -> Option<Arc<dyn ProviderPolicy>> {
        self.policies.read().get(&provider).cloned()
    }

    /// The provider id of the device at `bdf`.
    pub fn provider_of(&self, bdf: Bdf) -> Result<ProviderId, DmaError> {
        self.topology
            .read()
            .lookup(bdf)
            .map(|id| id.provider_id())
            .ok_or(DmaError::UnknownDevice { bdf })
    }

    /// Allocates `size` bytes (rounded up to pages) of zeroed RAM from the
    /// context's pool.
    pub fn alloc_ram(&self, size: u64) -> Result<PhysAddr, DmaError> {
        let phys = self.ram.lock().alloc(size)?;
        if let Err(e) = self.mem.zero(phys, size) {
            // Nothing half-done: the pool gets the range back.
            let _ = self.ram.lock().free(phys);
            return Err(mem_error(e, phys, size));
        }
        Ok(phys)
    }

    /// Returns an allocation of [`DmaContext::alloc_ram`].
    pub fn free_ram(&self, phys: PhysAddr) -> Result<(), DmaError> {
        self.ram.lock().free(phys)
    }

    /// The pool [`DmaContext::alloc_ram`] allocates from, `(start, length)`:
    /// where every coherent allocation lives, so what a coherent DMA mask
    /// must reach on an untranslated path (Linux: the zone
    /// `dma_direct_alloc` picks for `coherent_dma_mask`).
    pub fn ram_pool(&self) -> (PhysAddr, u64) {
        self.ram_pool
    }

    /// Bytes currently allocated from the pool.
    pub fn ram_in_use(&self) -> u64 {
        self.ram.lock().in_use()
    }

    /// What the arch needs to know about the device at `bdf` (its mask,
    /// coherency, its host bridge's dma-ranges) and its host bridge's MMIO
    /// windows.
    pub fn arch_device(&self, bdf: Bdf) -> Result<(ArchDevice, WindowMap), DmaError> {
        let topo = self.topology.read();
        let id = topo.lookup(bdf).ok_or(DmaError::UnknownDevice { bdf })?;
        let d = topo.device(id).ok_or(DmaError::UnknownDevice { bdf })?;
        let hb = topo
            .host_bridge(d.host_bridge)
            .ok_or(DmaError::UnknownDevice { bdf })?;
        Ok((
            ArchDevice::new(hb.dma_ranges.clone(), d.coherent, d.dma_mask),
            hb.mmio.clone(),
        ))
    }

    /// A direct backend for the device at `bdf` (its RAM end for
    /// `dma_addressing_limited` taken from the memory map).
    pub fn direct_backend(
        &self,
        bdf: Bdf,
        swiotlb: Option<Arc<Swiotlb>>,
        mut cfg: DirectConfig,
    ) -> Result<DirectBackend, DmaError> {
        let (dev, mmio) = self.arch_device(bdf)?;
        if cfg.ram_last.is_none() {
            cfg.ram_last = self.memmap.read().ram_last();
        }
        Ok(DirectBackend::new(self.arch, dev, mmio, swiotlb, cfg).for_device(bdf))
    }
}

/// A memory-port failure as the mapping layer reports it: the range that
/// could not be accessed.
/// The range is the one the memory names when it says where it failed, else
/// the caller's.
pub(crate) fn mem_error(e: MemError, phys: PhysAddr, len: u64) -> DmaError {
    match e {
        MemError::Overflow { addr, len } | MemError::Unbacked { addr, len } => {
            DmaError::PhysOverflow { phys: addr, len }
        }
        _ => DmaError::PhysOverflow { phys, len },
    }
}
