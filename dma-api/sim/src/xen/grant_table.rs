//! One domain's grant table: entries indexed by reference; the first
//! `RESERVED` references are never handed out
//! (include/xen/interface/grant_table.h `GNTTAB_NR_RESERVED_ENTRIES`), so
//! [`GrantRef::INVALID`] (0) never names a grant.

use dma_api::xdomain::{DomId, GrantRef, GuestAddr};

/// References 0..8 are reserved.
pub(super) const RESERVED: u32 = 8;

/// One grant.
#[derive(Clone, Copy, Debug)]
pub(super) struct Entry {
    pub grantee: DomId,
    pub page: GuestAddr,
    pub readonly: bool,
    /// The granter ended it; freed when `maps` reaches 0.
    pub ending: bool,
    pub maps: usize,
}

#[derive(Debug, Default)]
pub(super) struct GrantTable {
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
}

impl GrantTable {
    pub(super) fn insert(&mut self, e: Entry) -> GrantRef {
        if let Some(i) = self.free.pop() {
            self.entries[(i - RESERVED) as usize] = Some(e);
            return GrantRef(i);
        }
        self.entries.push(Some(e));
        GrantRef(RESERVED + self.entries.len() as u32 - 1)
    }

    fn slot(&mut self, r: GrantRef) -> Option<&mut Option<Entry>> {
        let i = r.0.checked_sub(RESERVED)?;
        self.entries.get_mut(i as usize)
    }

    pub(super) fn get_mut(&mut self, r: GrantRef) -> Option<&mut Entry> {
        self.slot(r)?.as_mut()
    }

    pub(super) fn get(&self, r: GrantRef) -> Option<&Entry> {
        let i = r.0.checked_sub(RESERVED)?;
        self.entries.get(i as usize)?.as_ref()
    }

    /// Frees the entry (it must exist).
    pub(super) fn remove(&mut self, r: GrantRef) {
        if let Some(s) = self.slot(r) {
            if s.take().is_some() {
                self.free.push(r.0);
            }
        }
    }

    /// Live entries.
    pub(super) fn live(&self) -> usize {
        self.entries.iter().filter(|e| e.is_some()).count()
    }
}
