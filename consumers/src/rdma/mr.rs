//! One memory region over an attachment.

use dma_api::share::{
    Attachment, ImporterCaps, ImporterOps, Negotiation, Notice, ShareAccess, ShareError,
    ShareMapping, SharedBuffer,
};
use dma_api::{DmaAddr, DmaDevice};
use std::sync::{Arc, Mutex, MutexGuard};

/// How the MR holds the buffer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MrKind {
    /// Dynamic attachment; invalidation and revocation are handled.
    Revocable,
    /// Non-dynamic attachment with a pin.
    Pinned,
}

/// Where the MR stands.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MrState {
    /// Mapped and usable.
    Valid,
    /// Invalidated: the next use re-maps (the new placement).
    Invalidated,
    /// Revoked: dead until re-registered.
    Revoked,
}

struct Shared {
    mapping: Option<ShareMapping>,
    state: MrState,
    invalidations: u32,
}

/// The notification side of an MR.
struct MrOps(Arc<Mutex<Shared>>);

fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MrOps {
    fn drop_mapping(&self, n: &mut Notice<'_>, state: MrState) {
        let mut s = lock(&self.0);
        if let Some(m) = s.mapping.take() {
            // The mapping is this MR's own and live: an error here would be
            // a protocol bug, kept for the next use to report.
            if n.unmap(m.id()).is_err() {
                s.mapping = Some(m);
            }
        }
        s.state = state;
    }
}

impl ImporterOps for MrOps {
    fn invalidate(&self, n: &mut Notice<'_>) {
        self.drop_mapping(n, MrState::Invalidated);
        lock(&self.0).invalidations += 1;
    }

    fn revoke(&self, n: &mut Notice<'_>) {
        self.drop_mapping(n, MrState::Revoked);
        n.ack();
    }
}

/// A registered memory region.
#[derive(Debug)]
pub struct MemoryRegion {
    att: Attachment,
    shared: Arc<Mutex<Shared>>,
    kind: MrKind,
    access: ShareAccess,
}

impl core::fmt::Debug for Shared {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Shared")
            .field("state", &self.state)
            .field("mapped", &self.mapping.is_some())
            .finish()
    }
}

impl MemoryRegion {
    pub(super) fn register(
        dev: Arc<DmaDevice>,
        buf: &SharedBuffer,
        access: ShareAccess,
        kind: MrKind,
    ) -> Result<Self, ShareError> {
        let shared = Arc::new(Mutex::new(Shared {
            mapping: None,
            state: MrState::Invalidated,
            invalidations: 0,
        }));
        let caps = ImporterCaps::any(access, kind == MrKind::Revocable);
        let mut att = buf.attach(dev, caps, Arc::new(MrOps(shared.clone())))?;
        if kind == MrKind::Pinned {
            if let Err(e) = att.pin() {
                att.detach()?;
                return Err(e);
            }
        }
        let mr = Self {
            att,
            shared,
            kind,
            access,
        };
        mr.fault_in()?;
        Ok(mr)
    }

    /// The attachment.
    pub fn attachment(&self) -> &Attachment {
        &self.att
    }

    /// What was negotiated.
    pub fn negotiation(&self) -> Result<Negotiation, ShareError> {
        self.att.negotiation()
    }

    /// Its kind.
    pub fn kind(&self) -> MrKind {
        self.kind
    }

    /// Its state.
    pub fn state(&self) -> MrState {
        lock(&self.shared).state
    }

    /// Invalidations received.
    pub fn invalidations(&self) -> u32 {
        lock(&self.shared).invalidations
    }

    /// Maps the buffer if the MR was invalidated (the ODP fault path); a
    /// revoked MR is [`ShareError::Revoked`].
    pub fn fault_in(&self) -> Result<(), ShareError> {
        match self.state() {
            MrState::Valid => return Ok(()),
            MrState::Revoked => {
                return Err(ShareError::Revoked {
                    buffer: self.att.buffer().id(),
                })
            }
            MrState::Invalidated => {}
        }
        // Not holding the MR's lock across the buffer call (lock order).
        let m = self.att.map(self.access.direction())?;
        let mut s = lock(&self.shared);
        if s.mapping.is_some() || s.state == MrState::Revoked {
            drop(s);
            return self.att.unmap(m.id());
        }
        s.mapping = Some(m);
        s.state = MrState::Valid;
        Ok(())
    }

    /// The current mapping (after [`MemoryRegion::fault_in`]).
    pub fn mapping(&self) -> Option<ShareMapping> {
        lock(&self.shared).mapping.clone()
    }

    /// The DMA address the NIC uses for byte `offset` of the MR, faulting
    /// the MR in first.
    pub fn dma_at(&self, offset: u64) -> Result<DmaAddr, ShareError> {
        self.fault_in()?;
        let s = lock(&self.shared);
        s.mapping
            .as_ref()
            .and_then(|m| m.dma_at(offset))
            .ok_or(ShareError::Revoked {
                buffer: self.att.buffer().id(),
            })
    }

    /// `ibv_dereg_mr`: unmaps, unpins and detaches.
    pub fn deregister(mut self) -> Result<(), ShareError> {
        let m = lock(&self.shared).mapping.take();
        if let Some(m) = m {
            self.att.unmap(m.id())?;
        }
        if self.kind == MrKind::Pinned {
            self.att.unpin()?;
        }
        self.att.detach()
    }
}
