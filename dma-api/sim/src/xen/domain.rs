//! One domain: its second-stage table, its page allocator, its grant table
//! and the grant mappings it holds.

use super::grant_table::GrantTable;
use dma_api::xdomain::{DomId, GrantError, GrantRef, GuestAddr};
use dma_api::{Iova, PhysAddr, PAGE_SIZE};
use dma_iommu::pgtable::{ArmLpae, ArmStage, BTreeMem, Granule, PageTable, Prot};
use std::collections::BTreeMap;

/// Guest-physical address where grant mappings are placed (above any
/// domain's RAM; Xen guests use ballooned-out or unpopulated ranges).
const GRANT_AREA: u64 = 0x80_0000_0000;

/// Stage-2 input and output address sizes.
const IAS: u32 = 40;
const OAS: u32 = 48;

pub(super) struct Domain {
    pub id: DomId,
    pub s2: PageTable<ArmLpae, BTreeMem>,
    /// The domain's RAM: guest `[0, ram)`.
    pub ram: u64,
    next_free: u64,
    freed: Vec<u64>,
    next_grant_slot: u64,
    freed_slots: Vec<u64>,
    pub grants: GrantTable,
    /// Grant mappings this domain holds: guest address → (granter, ref).
    pub mapped: BTreeMap<u64, (DomId, GrantRef)>,
}

fn mem_err(dom: DomId, why: impl Into<String>) -> GrantError {
    GrantError::Memory {
        dom,
        why: why.into(),
    }
}

impl Domain {
    /// A domain whose guest RAM `[0, len)` is host `[host, host + len)`.
    pub fn new(id: DomId, host: PhysAddr, len: u64) -> Result<Self, GrantError> {
        let fmt = ArmLpae::new(ArmStage::S2, Granule::G4K, IAS, OAS)
            .map_err(|e| mem_err(id, e.to_string()))?;
        let mut s2 =
            PageTable::with_mem(fmt, BTreeMem::new()).map_err(|e| mem_err(id, e.to_string()))?;
        if len == 0 || !len.is_multiple_of(PAGE_SIZE) || len > GRANT_AREA {
            return Err(mem_err(id, format!("bad RAM size {len:#x}")));
        }
        s2.map(
            Iova::new(0),
            host,
            len,
            Prot::READ | Prot::WRITE | Prot::CACHE,
        )
        .map_err(|e| mem_err(id, e.to_string()))?;
        Ok(Self {
            id,
            s2,
            ram: len,
            next_free: 0,
            freed: Vec::new(),
            next_grant_slot: GRANT_AREA,
            freed_slots: Vec::new(),
            grants: GrantTable::default(),
            mapped: BTreeMap::new(),
        })
    }

    /// The host page behind a guest page.
    pub fn to_host(&self, at: GuestAddr) -> Result<PhysAddr, GrantError> {
        self.s2
            .iova_to_phys(Iova::new(at.raw()))
            .ok_or(GrantError::NotOwned {
                dom: self.id,
                page: at,
            })
    }

    /// Whether the domain owns `page` (its own RAM, not a grant mapping).
    pub fn owns(&self, page: GuestAddr) -> bool {
        page.raw() < self.ram && page.raw().is_multiple_of(PAGE_SIZE)
    }

    pub fn alloc_page(&mut self) -> Result<GuestAddr, GrantError> {
        if let Some(p) = self.freed.pop() {
            return Ok(GuestAddr::new(p));
        }
        if self.next_free >= self.ram {
            return Err(mem_err(self.id, "out of pages"));
        }
        let p = self.next_free;
        self.next_free += PAGE_SIZE;
        Ok(GuestAddr::new(p))
    }

    pub fn free_page(&mut self, at: GuestAddr) -> Result<(), GrantError> {
        if !self.owns(at) || at.raw() >= self.next_free || self.freed.contains(&at.raw()) {
            return Err(mem_err(self.id, format!("{at} was not allocated")));
        }
        self.freed.push(at.raw());
        Ok(())
    }

    /// Installs a grant mapping of host page `host`; returns where.
    pub fn map_foreign(
        &mut self,
        host: PhysAddr,
        readonly: bool,
        from: (DomId, GrantRef),
    ) -> Result<GuestAddr, GrantError> {
        let at = match self.freed_slots.pop() {
            Some(a) => a,
            None => {
                let a = self.next_grant_slot;
                self.next_grant_slot += PAGE_SIZE;
                a
            }
        };
        let prot = if readonly {
            Prot::READ | Prot::CACHE
        } else {
            Prot::READ | Prot::WRITE | Prot::CACHE
        };
        if let Err(e) = self.s2.map(Iova::new(at), host, PAGE_SIZE, prot) {
            self.freed_slots.push(at);
            return Err(mem_err(self.id, e.to_string()));
        }
        self.mapped.insert(at, from);
        Ok(GuestAddr::new(at))
    }

    /// Removes a grant mapping; returns what it was.
    pub fn unmap_foreign(&mut self, at: GuestAddr) -> Result<(DomId, GrantRef), GrantError> {
        let from = self
            .mapped
            .remove(&at.raw())
            .ok_or(GrantError::NotMapped { dom: self.id, at })?;
        let (n, gather) = self.s2.unmap(Iova::new(at.raw()), PAGE_SIZE);
        // No TLB to flush in the model: the gather's tables go back at once.
        self.s2.release(gather);
        if n != PAGE_SIZE {
            return Err(mem_err(self.id, format!("{at}: stage-2 entry missing")));
        }
        self.freed_slots.push(at.raw());
        Ok(from)
    }

    /// Second-stage leaves mapping grants (what an import left behind).
    pub fn grant_leaves(&self) -> usize {
        let mut n = 0;
        self.s2
            .for_each_leaf(Iova::new(GRANT_AREA), 1 << 38, |_, _, _| n += 1);
        n
    }
}
