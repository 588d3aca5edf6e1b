//! The hypervisor: domains, their grant tables, and guest memory access.

use super::domain::Domain;
use super::grant_table::Entry;
use dma_api::xdomain::{DomId, GrantError, GrantOps, GrantRef, GuestAddr, Revoke};
use dma_api::{CpuMem, PhysAddr, PAGE_SIZE};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// Domains on one machine, over the host's physical memory `mem`.
pub struct Hypervisor {
    mem: CpuMem,
    domains: Mutex<BTreeMap<DomId, Domain>>,
}

impl std::fmt::Debug for Hypervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hypervisor")
            .field("domains", &self.lock().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Hypervisor {
    /// A hypervisor over host memory `mem` (the machine's RAM port).
    pub fn new(mem: CpuMem) -> Self {
        Self {
            mem,
            domains: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<DomId, Domain>> {
        self.domains.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates domain `id` with guest RAM `[0, len)` backed by host
    /// `[host, host + len)` (the caller hands over host RAM it owns).
    pub fn create_domain(&self, id: DomId, host: PhysAddr, len: u64) -> Result<(), GrantError> {
        let mut d = self.lock();
        if d.contains_key(&id) {
            return Err(GrantError::Memory {
                dom: id,
                why: "domain exists".into(),
            });
        }
        d.insert(id, Domain::new(id, host, len)?);
        Ok(())
    }

    /// Live grants of `dom`'s table.
    pub fn live_grants(&self, dom: DomId) -> usize {
        self.lock().get(&dom).map_or(0, |d| d.grants.live())
    }

    /// Grant mappings `dom` holds, counted from its second-stage table.
    pub fn grant_mappings(&self, dom: DomId) -> usize {
        self.lock().get(&dom).map_or(0, |d| d.grant_leaves())
    }

    /// The live mappings of `dom`'s grant `gref` (`None`: no such grant).
    pub fn grant_maps(&self, dom: DomId, gref: GrantRef) -> Option<usize> {
        self.lock().get(&dom)?.grants.get(gref).map(|e| e.maps)
    }

    fn access(
        &self,
        dom: DomId,
        at: GuestAddr,
        len: usize,
        mut f: impl FnMut(PhysAddr, usize, usize) -> Result<(), GrantError>,
    ) -> Result<(), GrantError> {
        let pieces = {
            let d = self.lock();
            let d = d.get(&dom).ok_or(GrantError::UnknownDomain { dom })?;
            let mut v = Vec::new();
            let mut off = 0usize;
            while off < len {
                let g = at
                    .checked_add(off as u64)
                    .ok_or(GrantError::NotOwned { dom, page: at })?;
                let n = ((PAGE_SIZE - g.raw() % PAGE_SIZE) as usize).min(len - off);
                v.push((d.to_host(g)?, off, n));
                off += n;
            }
            v
        };
        for (h, off, n) in pieces {
            f(h, off, n)?;
        }
        Ok(())
    }
}

fn mem_fail(dom: DomId) -> impl Fn(dma_api::mem::MemError) -> GrantError {
    move |e| GrantError::Memory {
        dom,
        why: e.to_string(),
    }
}

impl GrantOps for Hypervisor {
    fn grant_access(
        &self,
        granter: DomId,
        grantee: DomId,
        page: GuestAddr,
        readonly: bool,
    ) -> Result<GrantRef, GrantError> {
        let mut d = self.lock();
        if !d.contains_key(&grantee) {
            return Err(GrantError::UnknownDomain { dom: grantee });
        }
        let g = d
            .get_mut(&granter)
            .ok_or(GrantError::UnknownDomain { dom: granter })?;
        if !g.owns(page) {
            return Err(GrantError::NotOwned { dom: granter, page });
        }
        Ok(g.grants.insert(Entry {
            grantee,
            page,
            readonly,
            ending: false,
            maps: 0,
        }))
    }

    fn end_access(&self, granter: DomId, gref: GrantRef) -> Result<Revoke, GrantError> {
        let mut d = self.lock();
        let g = d
            .get_mut(&granter)
            .ok_or(GrantError::UnknownDomain { dom: granter })?;
        let bad = GrantError::BadRef { granter, gref };
        let e = g.grants.get_mut(gref).ok_or(bad.clone())?;
        if e.ending {
            return Err(bad);
        }
        if e.maps == 0 {
            g.grants.remove(gref);
            return Ok(Revoke::Done);
        }
        e.ending = true;
        Ok(Revoke::Deferred { maps: e.maps })
    }

    fn access_ended(&self, granter: DomId, gref: GrantRef) -> bool {
        self.lock()
            .get(&granter)
            .is_some_and(|g| g.grants.get(gref).is_none())
    }

    fn map_grant(
        &self,
        mapper: DomId,
        granter: DomId,
        gref: GrantRef,
        readonly: bool,
    ) -> Result<GuestAddr, GrantError> {
        let mut d = self.lock();
        if !d.contains_key(&mapper) {
            return Err(GrantError::UnknownDomain { dom: mapper });
        }
        let g = d
            .get_mut(&granter)
            .ok_or(GrantError::UnknownDomain { dom: granter })?;
        let e = *g
            .grants
            .get(gref)
            .ok_or(GrantError::BadRef { granter, gref })?;
        if e.ending {
            return Err(GrantError::Revoked { granter, gref });
        }
        if e.grantee != mapper {
            return Err(GrantError::NotGrantee {
                granter,
                gref,
                mapper,
            });
        }
        if e.readonly && !readonly {
            return Err(GrantError::ReadOnly { granter, gref });
        }
        let host = g.to_host(e.page)?;
        let m = d
            .get_mut(&mapper)
            .ok_or(GrantError::UnknownDomain { dom: mapper })?;
        let at = m.map_foreign(host, readonly, (granter, gref))?;
        if let Some(e) = d.get_mut(&granter).and_then(|g| g.grants.get_mut(gref)) {
            e.maps += 1;
        }
        Ok(at)
    }

    fn unmap_grant(&self, mapper: DomId, at: GuestAddr) -> Result<(), GrantError> {
        let mut d = self.lock();
        let m = d
            .get_mut(&mapper)
            .ok_or(GrantError::UnknownDomain { dom: mapper })?;
        let (granter, gref) = m.unmap_foreign(at)?;
        if let Some(g) = d.get_mut(&granter) {
            if let Some(e) = g.grants.get_mut(gref) {
                e.maps = e.maps.saturating_sub(1);
                if e.ending && e.maps == 0 {
                    g.grants.remove(gref);
                }
            }
        }
        Ok(())
    }

    fn read(&self, dom: DomId, at: GuestAddr, buf: &mut [u8]) -> Result<(), GrantError> {
        let len = buf.len();
        self.access(dom, at, len, |h, off, n| {
            self.mem
                .read(h, &mut buf[off..off + n])
                .map_err(mem_fail(dom))
        })
    }

    fn write(&self, dom: DomId, at: GuestAddr, data: &[u8]) -> Result<(), GrantError> {
        self.access(dom, at, data.len(), |h, off, n| {
            self.mem
                .write(h, &data[off..off + n])
                .map_err(mem_fail(dom))
        })
    }

    fn to_host(&self, dom: DomId, at: GuestAddr) -> Result<PhysAddr, GrantError> {
        self.lock()
            .get(&dom)
            .ok_or(GrantError::UnknownDomain { dom })?
            .to_host(at)
    }

    fn alloc_page(&self, dom: DomId) -> Result<GuestAddr, GrantError> {
        self.lock()
            .get_mut(&dom)
            .ok_or(GrantError::UnknownDomain { dom })?
            .alloc_page()
    }

    fn free_page(&self, dom: DomId, at: GuestAddr) -> Result<(), GrantError> {
        self.lock()
            .get_mut(&dom)
            .ok_or(GrantError::UnknownDomain { dom })?
            .free_page(at)
    }
}
