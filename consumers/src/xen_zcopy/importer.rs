//! The importing side: walk the directory, map the grants, DMA-map them.

use dma_api::xdomain::{
    directory_pages, DomId, DomainDma, DomainMapping, GrantError, GrantOps, GrantRef, GuestAddr,
    PageDirectory, REFS_PER_PAGE,
};
use dma_api::{Direction, PAGE_SIZE};
use std::collections::BTreeSet;
use std::sync::Arc;

/// A buffer of another domain, mapped into this one.
pub struct ZcopyImport {
    ops: Arc<dyn GrantOps>,
    dom: DomId,
    granter: DomId,
    first: GrantRef,
    pages: Vec<GuestAddr>,
}

impl core::fmt::Debug for ZcopyImport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ZcopyImport")
            .field("dom", &self.dom)
            .field("granter", &self.granter)
            .field("first", &self.first)
            .field("pages", &self.pages.len())
            .finish()
    }
}

impl ZcopyImport {
    /// Reads the directory chain starting at `first` (granted by
    /// `granter`) for `pages` buffer pages, then maps every page into
    /// `dom` read-only if `readonly`. Refused, typed, with nothing left
    /// mapped: a bad, foreign or revoked reference, a chain that loops,
    /// or one whose length does not match `pages`.
    pub fn import(
        ops: Arc<dyn GrantOps>,
        dom: DomId,
        granter: DomId,
        first: GrantRef,
        pages: usize,
        readonly: bool,
    ) -> Result<Self, GrantError> {
        if pages == 0 {
            return Err(GrantError::Empty);
        }
        let refs = walk(&*ops, dom, granter, first, pages)?;
        let mut me = Self {
            ops,
            dom,
            granter,
            first,
            pages: Vec::with_capacity(pages),
        };
        for r in refs {
            match me.ops.map_grant(dom, granter, r, readonly) {
                Ok(at) => me.pages.push(at),
                Err(e) => {
                    // The refusal is what the caller needs; the unmaps of
                    // mappings made a moment ago cannot find them missing.
                    let _ = me.unmap_all();
                    return Err(e);
                }
            }
        }
        Ok(me)
    }

    /// Where the buffer's pages are in this domain, in order.
    pub fn pages(&self) -> &[GuestAddr] {
        &self.pages
    }

    /// The host pages behind the buffer (what a udmabuf-like export of the
    /// imported buffer shares, [`crate::udmabuf::Udmabuf`]).
    pub fn host_pages(&self) -> Result<Vec<dma_api::PhysAddr>, GrantError> {
        self.pages
            .iter()
            .map(|&p| self.ops.to_host(self.dom, p))
            .collect()
    }

    /// The reference the buffer was announced with.
    pub fn first(&self) -> GrantRef {
        self.first
    }

    /// Maps the buffer for a device assigned to this domain.
    pub fn dma_map(&self, dma: &DomainDma, dir: Direction) -> Result<DomainMapping, GrantError> {
        if dma.domain() != self.dom {
            return Err(GrantError::UnknownDomain { dom: dma.domain() });
        }
        dma.map_pages(&self.pages, dir)
    }

    /// The importer's CPU reads the buffer at `offset`.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), GrantError> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let page =
                self.pages
                    .get((at / PAGE_SIZE) as usize)
                    .ok_or(GrantError::DirectoryLength {
                        expected: self.pages.len(),
                        found: (at / PAGE_SIZE) as usize,
                    })?;
            let n = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(buf.len() - done);
            let g = GuestAddr::new(page.raw() + at % PAGE_SIZE);
            self.ops.read(self.dom, g, &mut buf[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    /// Unmaps every page (the device mappings must be gone first).
    pub fn unmap(mut self) -> Result<(), GrantError> {
        self.unmap_all()
    }

    fn unmap_all(&mut self) -> Result<(), GrantError> {
        let mut first = Ok(());
        for p in self.pages.drain(..) {
            let r = self.ops.unmap_grant(self.dom, p);
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}

impl Drop for ZcopyImport {
    fn drop(&mut self) {
        let _ = self.unmap_all();
    }
}

/// The buffer's references, read from the chain. Each directory page is
/// mapped, read and unmapped before the next is looked at.
fn walk(
    ops: &dyn GrantOps,
    dom: DomId,
    granter: DomId,
    first: GrantRef,
    pages: usize,
) -> Result<Vec<GrantRef>, GrantError> {
    let mut refs = Vec::with_capacity(pages);
    let mut seen = BTreeSet::new();
    let mut cur = first;
    let want_dirs = directory_pages(pages);
    while refs.len() < pages {
        if cur == GrantRef::INVALID {
            return Err(GrantError::DirectoryLength {
                expected: pages,
                found: refs.len(),
            });
        }
        if !seen.insert(cur) {
            return Err(GrantError::DirectoryLoop { gref: cur });
        }
        let at = ops.map_grant(dom, granter, cur, true)?;
        let mut page = vec![0u8; PAGE_SIZE as usize];
        let read = ops.read(dom, at, &mut page);
        ops.unmap_grant(dom, at)?;
        read?;
        let dir = PageDirectory::decode(&page)?;
        let take = (pages - refs.len()).min(REFS_PER_PAGE);
        refs.extend_from_slice(&dir.refs[..take]);
        cur = dir.next;
    }
    if cur != GrantRef::INVALID {
        // The chain goes on after the last page: a loop back to a visited
        // directory page, or a longer chain than the buffer needs.
        if seen.contains(&cur) {
            return Err(GrantError::DirectoryLoop { gref: cur });
        }
        return Err(GrantError::DirectoryLength {
            expected: pages,
            found: want_dirs + 1,
        });
    }
    Ok(refs)
}
