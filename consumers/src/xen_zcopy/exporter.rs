//! The exporting side: grants, directory pages, revocation.

use dma_api::xdomain::{
    directory_pages, Channel, DomId, GrantError, GrantOps, GrantRef, GuestAddr, Message,
    PageDirectory, Revoke, REFS_PER_PAGE,
};
use std::sync::Arc;

/// A buffer exported from one domain to another.
pub struct ZcopyExport {
    ops: Arc<dyn GrantOps>,
    dom: DomId,
    data_refs: Vec<GrantRef>,
    dir_refs: Vec<GrantRef>,
    dir_pages: Vec<GuestAddr>,
    revoking: bool,
}

impl core::fmt::Debug for ZcopyExport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ZcopyExport")
            .field("dom", &self.dom)
            .field("pages", &self.data_refs.len())
            .field("directory", &self.dir_refs.len())
            .finish()
    }
}

impl ZcopyExport {
    /// Grants `pages` (the buffer's pages in `dom`'s physical space, in
    /// order) to `grantee`, read-only if `readonly`, and builds the
    /// directory (⌈pages / REFS_PER_PAGE⌉ pages of `dom`'s memory, granted
    /// read-only). All or nothing: a page `dom` does not own ends every
    /// grant made so far and frees the directory.
    pub fn export(
        ops: Arc<dyn GrantOps>,
        dom: DomId,
        grantee: DomId,
        pages: &[GuestAddr],
        readonly: bool,
    ) -> Result<Self, GrantError> {
        if pages.is_empty() {
            return Err(GrantError::Empty);
        }
        let mut me = Self {
            ops,
            dom,
            data_refs: Vec::with_capacity(pages.len()),
            dir_refs: Vec::new(),
            dir_pages: Vec::new(),
            revoking: false,
        };
        match me.build(grantee, pages, readonly) {
            Ok(()) => Ok(me),
            Err(e) => {
                me.undo();
                Err(e)
            }
        }
    }

    fn build(
        &mut self,
        grantee: DomId,
        pages: &[GuestAddr],
        readonly: bool,
    ) -> Result<(), GrantError> {
        for &p in pages {
            let r = self.ops.grant_access(self.dom, grantee, p, readonly)?;
            self.data_refs.push(r);
        }
        let n = directory_pages(pages.len());
        for _ in 0..n {
            let p = self.ops.alloc_page(self.dom)?;
            self.dir_pages.push(p);
            let r = self.ops.grant_access(self.dom, grantee, p, true)?;
            self.dir_refs.push(r);
        }
        for (i, chunk) in self.data_refs.chunks(REFS_PER_PAGE).enumerate() {
            let dir = PageDirectory {
                next: self
                    .dir_refs
                    .get(i + 1)
                    .copied()
                    .unwrap_or(GrantRef::INVALID),
                refs: chunk.to_vec(),
            };
            self.ops
                .write(self.dom, self.dir_pages[i], &dir.encode()?)?;
        }
        Ok(())
    }

    /// Ends every grant that nobody mapped yet and frees the directory
    /// (the failure path of `export`).
    fn undo(&mut self) {
        for r in self.data_refs.drain(..).chain(self.dir_refs.drain(..)) {
            let _ = self.ops.end_access(self.dom, r);
        }
        for p in self.dir_pages.drain(..) {
            let _ = self.ops.free_page(self.dom, p);
        }
    }

    /// The one reference handed over: the first directory page's.
    pub fn first(&self) -> GrantRef {
        self.dir_refs.first().copied().unwrap_or(GrantRef::INVALID)
    }

    /// Buffer pages.
    pub fn pages(&self) -> usize {
        self.data_refs.len()
    }

    /// The directory pages' references, in chain order.
    pub fn directory_refs(&self) -> &[GrantRef] {
        &self.dir_refs
    }

    /// The buffer pages' references, in order.
    pub fn data_refs(&self) -> &[GrantRef] {
        &self.data_refs
    }

    /// The hypervisor interface (the exporter's CPU fills its pages through
    /// it, then signals a fence).
    pub fn ops(&self) -> &Arc<dyn GrantOps> {
        &self.ops
    }

    /// Announces the buffer on `ch`.
    pub fn announce(&self, ch: &Channel) {
        ch.send(Message::Export {
            first: self.first(),
            pages: self.data_refs.len() as u32,
        });
    }

    /// Starts revocation: ends every grant (those still mapped are
    /// deferred) and asks the importer on `ch` to unmap. Returns how many
    /// grants are still mapped.
    pub fn revoke(&mut self, ch: &Channel) -> Result<usize, GrantError> {
        if !self.revoking {
            self.revoking = true;
            ch.send(Message::Revoke {
                first: self.first(),
            });
            let mut pending = 0;
            for &r in self.data_refs.iter().chain(&self.dir_refs) {
                if let Revoke::Deferred { .. } = self.ops.end_access(self.dom, r)? {
                    pending += 1;
                }
            }
            return Ok(pending);
        }
        Ok(self.pending())
    }

    /// Grants of a revocation still mapped somewhere.
    pub fn pending(&self) -> usize {
        self.data_refs
            .iter()
            .chain(&self.dir_refs)
            .filter(|&&r| !self.ops.access_ended(self.dom, r))
            .count()
    }

    /// Whether revocation completed: every grant ended and unmapped. Then
    /// the directory pages are the exporter's again.
    pub fn revoked(&mut self) -> bool {
        if !self.revoking || self.pending() != 0 {
            return false;
        }
        for p in self.dir_pages.drain(..) {
            let _ = self.ops.free_page(self.dom, p);
        }
        true
    }
}

/// Dropping an export without revoking it ends every grant (Linux
/// `gnttab_end_foreign_access` on release): grants nobody maps are freed at
/// once, mapped ones when their importer unmaps. Directory pages whose grant
/// ended go back to the domain; one still mapped somewhere is left to the
/// domain (never reused while another domain may read it).
impl Drop for ZcopyExport {
    fn drop(&mut self) {
        if !self.revoking {
            for &r in self.data_refs.iter().chain(&self.dir_refs) {
                let _ = self.ops.end_access(self.dom, r);
            }
        }
        for (r, p) in self.dir_refs.iter().zip(self.dir_pages.drain(..)) {
            if self.ops.access_ended(self.dom, *r) {
                let _ = self.ops.free_page(self.dom, p);
            }
        }
    }
}
