//! Peer memory is what a provider registered: the p2pmem registry of a
//! context, with run-time registration, allocation and per-range policies.
//!
//! Linux: drivers/pci/p2pdma.c `pci_p2pdma_add_resource` creates the
//! `ZONE_DEVICE` pages a peer may map (and their pgmap, which is what makes
//! a page P2P); `pci_alloc_p2pmem` / `pci_free_p2pmem` hand out pieces;
//! `pci_p2pmem_publish` makes the provider visible to `pci_p2pmem_find`. A
//! BAR range nobody registered is not DMA-able peer memory, and mapping it
//! here is [`DmaError::NotPeerMemory`]. Registration ends with the
//! [`P2pMemRegistration`] handle (Linux: the `devm` release at unbind).

use super::context::DmaContext;
use crate::bdf::Bdf;
use crate::error::DmaError;
use crate::p2p::{P2pAlloc, P2pMemStats};
use crate::port::ProviderPolicy;
use crate::topology::DeviceId;
use crate::types::{PhysAddr, ProviderId};
use alloc::sync::{Arc, Weak};

/// A live registration of one p2pmem range; dropping it unregisters the
/// range and its policy.
///
/// # Invariants
/// While it lives, `[phys, phys + size)` of `provider` is in its context's
/// registry (unless the device was hot-removed, which drops its ranges).
#[must_use = "dropping the registration unregisters the range at once"]
#[derive(Debug)]
pub struct P2pMemRegistration {
    ctx: Weak<DmaContext>,
    provider: DeviceId,
    phys: PhysAddr,
    size: u64,
}

impl P2pMemRegistration {
    /// Start of the registered range.
    pub fn phys(&self) -> PhysAddr {
        self.phys
    }

    /// Its size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Unregisters now, reporting why not (e.g. pieces still allocated).
    pub fn unregister(mut self) -> Result<(), DmaError> {
        let r = self.release();
        core::mem::forget(self);
        r
    }

    fn release(&mut self) -> Result<(), DmaError> {
        let Some(ctx) = self.ctx.upgrade() else {
            return Ok(());
        };
        self.ctx = Weak::new();
        ctx.remove_p2pmem(self.provider, self.phys)
    }
}

impl Drop for P2pMemRegistration {
    fn drop(&mut self) {
        // A range with live allocations stays registered (its pieces are
        // still in use by peers); the context records why.
        let ctx = self.ctx.upgrade();
        if let (Err(e), Some(ctx)) = (self.release(), ctx) {
            ctx.report_drop_error(e);
        }
    }
}

fn p2p_err(e: crate::p2p::P2pMemError) -> DmaError {
    DmaError::P2pMem(e)
}

impl DmaContext {
    fn device_id(&self, bdf: Bdf) -> Result<DeviceId, DmaError> {
        self.topology
            .read()
            .lookup(bdf)
            .ok_or(DmaError::UnknownDevice { bdf })
    }

    /// `pci_p2pdma_add_resource(provider, bar, size, offset)`: registers
    /// `size` bytes (0: the rest of the BAR) at `offset` of memory BAR `bar`
    /// as peer memory, with `policy` deciding every peer mapping of it
    /// (`None`: the owner's policy, else allow).
    pub fn add_p2pmem(
        self: &Arc<Self>,
        provider: Bdf,
        bar: u8,
        size: u64,
        offset: u64,
        policy: Option<Arc<dyn ProviderPolicy>>,
    ) -> Result<P2pMemRegistration, DmaError> {
        let topo = self.topology.read();
        let id = topo
            .lookup(provider)
            .ok_or(DmaError::UnknownDevice { bdf: provider })?;
        let mut reg = self.p2pmem.write();
        let before = reg.resources(id).len();
        reg.add_resource(&topo, id, bar, size, offset)
            .map_err(p2p_err)?;
        let r = reg.resources(id)[before].clone();
        if let Some(p) = policy {
            self.range_policies
                .write()
                .insert((id.provider_id(), r.phys.raw()), p);
        }
        Ok(P2pMemRegistration {
            ctx: Arc::downgrade(self),
            provider: id,
            phys: r.phys,
            size: r.size,
        })
    }

    fn remove_p2pmem(&self, id: DeviceId, phys: PhysAddr) -> Result<(), DmaError> {
        let topo = self.topology.read();
        self.p2pmem
            .write()
            .remove_resource(&topo, id, phys)
            .map_err(p2p_err)?;
        self.range_policies
            .write()
            .remove(&(id.provider_id(), phys.raw()));
        Ok(())
    }

    /// Sets the policy of the registered range of `provider` starting at
    /// `phys`, returning the one it replaces.
    pub fn set_range_policy(
        &self,
        provider: Bdf,
        phys: PhysAddr,
        policy: Arc<dyn ProviderPolicy>,
    ) -> Result<Option<Arc<dyn ProviderPolicy>>, DmaError> {
        let id = self.device_id(provider)?;
        let known = self
            .p2pmem
            .read()
            .resources(id)
            .iter()
            .any(|r| r.phys == phys);
        if !known {
            return Err(DmaError::NotPeerMemory {
                provider,
                bar: None,
                phys,
                len: 0,
            });
        }
        Ok(self
            .range_policies
            .write()
            .insert((id.provider_id(), phys.raw()), policy))
    }

    /// `pci_alloc_p2pmem`: page-granular first fit from `provider`'s ranges.
    pub fn alloc_p2pmem(&self, provider: Bdf, size: u64) -> Result<P2pAlloc, DmaError> {
        let topo = self.topology.read();
        let id = topo
            .lookup(provider)
            .ok_or(DmaError::UnknownDevice { bdf: provider })?;
        self.p2pmem.write().alloc(&topo, id, size).map_err(p2p_err)
    }

    /// `pci_free_p2pmem`.
    pub fn free_p2pmem(&self, a: P2pAlloc) -> Result<(), DmaError> {
        let topo = self.topology.read();
        self.p2pmem.write().free(&topo, a).map_err(p2p_err)
    }

    /// `pci_p2pmem_publish`.
    pub fn publish_p2pmem(&self, provider: Bdf, publish: bool) -> Result<(), DmaError> {
        let topo = self.topology.read();
        let id = topo
            .lookup(provider)
            .ok_or(DmaError::UnknownDevice { bdf: provider })?;
        self.p2pmem
            .write()
            .publish(&topo, id, publish)
            .map_err(p2p_err)
    }

    /// The sysfs `p2pmem/` numbers of `provider`, `None` if it registered
    /// nothing.
    pub fn p2pmem_stats(&self, provider: Bdf) -> Result<Option<P2pMemStats>, DmaError> {
        let id = self.device_id(provider)?;
        Ok(self.p2pmem.read().stats(id))
    }

    /// True if `[phys, phys + len)` lies in one range `owner` registered.
    pub fn is_peer_memory(&self, owner: ProviderId, phys: PhysAddr, len: u64) -> bool {
        self.p2pmem
            .read()
            .resource_for(DeviceId::from_provider(owner), phys, len)
            .is_some()
    }
}
