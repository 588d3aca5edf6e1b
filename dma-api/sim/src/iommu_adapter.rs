//! The IOMMU at the root complex: [`RootComplexIommu`] over a `dma-iommu`
//! [`Iommu`](dma_iommu::Iommu).
//!
//! A request from a requester ID is looked up to its IOMMU group, the group to
//! its domain, and translated the way hardware does it: the IOTLB first, then
//! the hardware walker reading the page tables from memory (never the table
//! writer's own lookup), with the leaf's read/write permission checked.
//! Identity domains are not translated (`Ok(None)`: the address is a bus
//! address); a group with no domain or a blocking domain faults `Blocked`
//! (Linux attaches such groups to the blocking domain); a requester the IOMMU
//! does not know at all (no context entry: never registered, or hot-removed)
//! faults `NoContext`, as hardware blocks it.
//!
//! Requesters are registered at assembly and by hot-plug
//! (`Assembly::hot_add` / `hot_remove`), while the fabric holds the adapter:
//! the map is behind its own lock (never the topology lock, so `translate`
//! may run under the topology read lock).

use std::collections::BTreeMap;
use std::sync::RwLock;

use crate::fabric::{RcFault, RcFaultReason, RootComplexIommu};
use dma_api::{Bdf, DmaAddr, PhysAddr};

use dma_iommu::dma::SharedIommu;
use dma_iommu::domain::{DomainType, GroupId, IommuFault};
use dma_iommu::walker::{Access, Fault};

/// The root complex's view of one IOMMU: which requester belongs to which
/// group (its context entries).
#[derive(Debug)]
pub struct RcIommu {
    iommu: SharedIommu,
    groups: RwLock<BTreeMap<Bdf, GroupId>>,
}

impl Clone for RcIommu {
    fn clone(&self) -> Self {
        Self {
            iommu: self.iommu.clone(),
            groups: RwLock::new(self.read().clone()),
        }
    }
}

impl RcIommu {
    /// An IOMMU with no requesters yet.
    pub fn new(iommu: SharedIommu) -> Self {
        Self {
            iommu,
            groups: RwLock::new(BTreeMap::new()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Bdf, GroupId>> {
        self.groups
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Puts `bdf` behind this IOMMU in `group` (its context entry points at
    /// the group's domain). Returns the group it was in before, if any.
    pub fn add_requester(&self, bdf: Bdf, group: GroupId) -> Option<GroupId> {
        self.groups
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(bdf, group)
    }

    /// Clears the context entry of `bdf` (hot-remove): its requests fault
    /// `NoContext` from now on. Returns the group it was in.
    pub fn remove_requester(&self, bdf: Bdf) -> Option<GroupId> {
        self.groups
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&bdf)
    }

    /// The group of `bdf`, if it is behind this IOMMU.
    pub fn group_of(&self, bdf: Bdf) -> Option<GroupId> {
        self.read().get(&bdf).copied()
    }

    /// Every registered requester with its group, in BDF order.
    pub fn requesters(&self) -> Vec<(Bdf, GroupId)> {
        self.read().iter().map(|(b, g)| (*b, *g)).collect()
    }

    /// The IOMMU.
    pub fn iommu(&self) -> &SharedIommu {
        &self.iommu
    }
}

fn page_of(x: u64) -> u64 {
    x >> 12
}

impl RootComplexIommu for RcIommu {
    fn translate(
        &self,
        requester: Bdf,
        addr: DmaAddr,
        len: u64,
        write: bool,
    ) -> Result<Option<PhysAddr>, RcFault> {
        let fault = |reason| RcFault {
            requester,
            addr,
            write,
            reason,
        };
        let Some(group) = self.group_of(requester) else {
            return Err(fault(RcFaultReason::NoContext));
        };
        if len == 0
            || addr
                .raw()
                .checked_add(len - 1)
                .is_none_or(|last| page_of(last) != page_of(addr.raw()))
        {
            return Err(fault(RcFaultReason::Other(format!(
                "request of {len:#x} bytes crosses a page boundary or is empty"
            ))));
        }
        let mut io = self
            .iommu
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ty = io.group_domain(group).and_then(|d| io.domain_type(d));
        match ty {
            None | Some(DomainType::Blocked) => return Err(fault(RcFaultReason::Blocked)),
            Some(DomainType::Identity) => return Ok(None),
            Some(DomainType::Dma | DomainType::DmaFq) => {}
        }
        let access = if write { Access::Write } else { Access::Read };
        match io.translate(group, addr.as_iova(), access) {
            Ok(pa) => Ok(Some(pa)),
            Err(IommuFault::NoDomain { .. } | IommuFault::Blocked { .. }) => {
                Err(fault(RcFaultReason::Blocked))
            }
            Err(IommuFault::Walk(Fault::NotPresent { .. } | Fault::AddressSize { .. })) => {
                Err(fault(RcFaultReason::NotPresent))
            }
            Err(IommuFault::Walk(Fault::Permission { .. })) => {
                Err(fault(RcFaultReason::Permission))
            }
            Err(IommuFault::Walk(other)) => Err(fault(RcFaultReason::Other(other.to_string()))),
        }
    }
}
