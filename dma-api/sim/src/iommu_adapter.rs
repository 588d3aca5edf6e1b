//! The IOMMU at the root complex: [`RootComplexIommu`] over a `dma-iommu`
//! [`dma_iommu::Iommu`].
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

use crate::fabric::{RcFault, RcFaultReason, RcRun, RootComplexIommu};
use dma_api::types::PAGE_SIZE;
use dma_api::{Bdf, DmaAddr, PhysAddr};

use dma_iommu::dma::SharedIommu;
use dma_iommu::domain::{DomainType, GroupId, IommuFault};
use dma_iommu::walker::{Access, Fault};
use dma_iommu::Iommu;

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

/// Why the walker refused, as the root complex reports it.
fn rc_reason(e: IommuFault) -> RcFaultReason {
    match e {
        IommuFault::NoDomain { .. } | IommuFault::Blocked { .. } => RcFaultReason::Blocked,
        IommuFault::Walk(Fault::NotPresent { .. } | Fault::AddressSize { .. }) => {
            RcFaultReason::NotPresent
        }
        IommuFault::Walk(Fault::Permission { .. }) => RcFaultReason::Permission,
        IommuFault::Walk(other) => RcFaultReason::Other(other.to_string()),
    }
}

impl RcIommu {
    /// The requester's group and the IOMMU, locked, after the checks every
    /// request starts with: a context entry, a domain that is not blocking.
    /// `Ok(None)` for an identity domain (not translated).
    fn context(
        &self,
        requester: Bdf,
    ) -> Result<Option<(GroupId, std::sync::MutexGuard<'_, Iommu>)>, RcFaultReason> {
        let group = self.group_of(requester).ok_or(RcFaultReason::NoContext)?;
        let io = self
            .iommu
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match io.group_domain(group).and_then(|d| io.domain_type(d)) {
            None | Some(DomainType::Blocked) => Err(RcFaultReason::Blocked),
            Some(DomainType::Identity) => Ok(None),
            Some(DomainType::Dma | DomainType::DmaFq) => Ok(Some((group, io))),
        }
    }
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
        if self.group_of(requester).is_none() {
            return Err(fault(RcFaultReason::NoContext));
        }
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
        let Some((group, mut io)) = self.context(requester).map_err(fault)? else {
            return Ok(None);
        };
        let access = if write { Access::Write } else { Access::Read };
        io.translate(group, addr.as_iova(), access)
            .map(Some)
            .map_err(|e| fault(rc_reason(e)))
    }

    /// One context lookup and one IOMMU lock for the run; then one IOTLB
    /// lookup (or walk) per page, as the device's TLPs would cause.
    fn translate_run(
        &self,
        requester: Bdf,
        addr: DmaAddr,
        len: u64,
        write: bool,
    ) -> Result<RcRun, RcFault> {
        let fault = |reason| RcFault {
            requester,
            addr,
            write,
            reason,
        };
        if len == 0 || addr.raw().checked_add(len - 1).is_none() {
            return Err(fault(RcFaultReason::Other(format!(
                "run of {len:#x} bytes is empty or wraps"
            ))));
        }
        let Some((group, mut io)) = self.context(requester).map_err(fault)? else {
            return Ok(RcRun { phys: None, len });
        };
        let access = if write { Access::Write } else { Access::Read };
        let first = io
            .translate(group, addr.as_iova(), access)
            .map_err(|e| fault(rc_reason(e)))?;
        let mut run = RcRun {
            phys: Some(first),
            len: len.min(PAGE_SIZE - addr.page_offset()),
        };
        while run.len < len {
            // Cannot wrap: checked above.
            let at = DmaAddr::new(addr.raw() + run.len);
            match io.translate(group, at.as_iova(), access) {
                Ok(p) if Some(p) == run.phys_at(run.len) => {
                    run.len += (len - run.len).min(PAGE_SIZE);
                }
                _ => break,
            }
        }
        Ok(run)
    }
}
