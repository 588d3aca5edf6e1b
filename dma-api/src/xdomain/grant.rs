//! The hypervisor interface a domain's driver uses (Linux
//! drivers/xen/grant-table.c over the `GNTTABOP_*` hypercalls,
//! include/xen/interface/grant_table.h).

use super::error::GrantError;
use super::ids::{DomId, GrantRef, GuestAddr};
use crate::types::PhysAddr;

/// The outcome of ending a grant.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Revoke {
    /// Nobody had it mapped: the entry is free now.
    Done,
    /// Still mapped by `maps` importers: new maps are refused at once, the
    /// entry is freed when the last one unmaps (Linux
    /// `gnttab_end_foreign_access` deferring a busy entry).
    Deferred {
        /// Live mappings.
        maps: usize,
    },
}

/// Grant tables, guest memory and the second-stage translation, as a
/// domain's drivers reach them.
pub trait GrantOps: Send + Sync {
    /// `gnttab_grant_foreign_access`: `granter` lets `grantee` map its page
    /// at `page` (which it must own).
    fn grant_access(
        &self,
        granter: DomId,
        grantee: DomId,
        page: GuestAddr,
        readonly: bool,
    ) -> Result<GrantRef, GrantError>;

    /// `gnttab_end_foreign_access`: revokes the grant; deferred while mapped.
    fn end_access(&self, granter: DomId, gref: GrantRef) -> Result<Revoke, GrantError>;

    /// Whether a grant's entry is free (ended, and no mapping left).
    fn access_ended(&self, granter: DomId, gref: GrantRef) -> bool;

    /// `GNTTABOP_map_grant_ref`: maps `granter`'s granted page into
    /// `mapper`'s physical space; returns where.
    fn map_grant(
        &self,
        mapper: DomId,
        granter: DomId,
        gref: GrantRef,
        readonly: bool,
    ) -> Result<GuestAddr, GrantError>;

    /// `GNTTABOP_unmap_grant_ref` of the mapping at `at`.
    fn unmap_grant(&self, mapper: DomId, at: GuestAddr) -> Result<(), GrantError>;

    /// The domain's CPU reads its own physical memory.
    fn read(&self, dom: DomId, at: GuestAddr, buf: &mut [u8]) -> Result<(), GrantError>;

    /// The domain's CPU writes its own physical memory.
    fn write(&self, dom: DomId, at: GuestAddr, data: &[u8]) -> Result<(), GrantError>;

    /// The host page behind the domain's page (the second-stage walk; Xen
    /// `pfn_to_bfn`).
    fn to_host(&self, dom: DomId, at: GuestAddr) -> Result<PhysAddr, GrantError>;

    /// A free page of the domain's own memory (its `alloc_page`).
    fn alloc_page(&self, dom: DomId) -> Result<GuestAddr, GrantError>;

    /// Returns a page of [`GrantOps::alloc_page`].
    fn free_page(&self, dom: DomId, at: GuestAddr) -> Result<(), GrantError>;
}
