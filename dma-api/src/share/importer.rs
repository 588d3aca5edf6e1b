//! The importing driver's side: the notifications it receives and what it
//! may do from them.
//!
//! Linux `struct dma_buf_attach_ops.move_notify` (called with the
//! reservation held; the importer drops its mappings and re-maps later)
//! and the revoke handshake of the VFIO dma-buf exporter. Here a
//! notification receives a [`Notice`]: the only door into the buffer while
//! the reservation is held. Through it the importer may unmap its own
//! mappings and acknowledge; any other call into the buffer from the
//! callback is [`ShareError::ReEntrant`].

use super::buffer::State;
use super::error::ShareError;
use super::ids::{AttachId, MapId};
use super::map;

/// Why an importer is notified.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum NoticeKind {
    /// The placement changed (migration): existing mappings stay valid
    /// until the importer unmaps them; new maps see the new placement.
    Invalidate,
    /// The buffer is being revoked: unmap everything, then acknowledge.
    /// The revocation completes only when every importer has done both.
    Revoke,
}

/// Implemented by the importing driver; called with the buffer's
/// reservation held.
pub trait ImporterOps: Send + Sync {
    /// `move_notify`: sent to dynamic importers only.
    fn invalidate(&self, notice: &mut Notice<'_>) {
        let _ = notice;
    }

    /// Revocation: sent to every importer. Unmap (through `notice`, or
    /// later from any thread through the attachment) and acknowledge
    /// ([`Notice::ack`] or [`Attachment::ack_revoke`](super::Attachment::ack_revoke)).
    fn revoke(&self, notice: &mut Notice<'_>) {
        let _ = notice;
    }
}

/// An importer that does nothing when notified (a test's stuck importer,
/// or one that only ever maps for the duration of a call).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoOps;

impl ImporterOps for NoOps {}

/// The importer's handle inside a notification.
pub struct Notice<'a> {
    pub(super) st: &'a mut State,
    pub(super) att: AttachId,
    pub(super) kind: NoticeKind,
}

impl core::fmt::Debug for Notice<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Notice")
            .field("attachment", &self.att)
            .field("kind", &self.kind)
            .finish()
    }
}

impl Notice<'_> {
    /// The attachment notified.
    pub fn attachment(&self) -> AttachId {
        self.att
    }

    /// Why.
    pub fn kind(&self) -> NoticeKind {
        self.kind
    }

    /// Unmaps one of this attachment's mappings (`dma_buf_unmap_attachment`
    /// from `move_notify`).
    pub fn unmap(&mut self, mapping: MapId) -> Result<(), ShareError> {
        map::unmap_locked(self.st, self.att, mapping)
    }

    /// Acknowledges a revocation (after unmapping).
    pub fn ack(&mut self) {
        if let Some(a) = self.st.atts.get_mut(&self.att) {
            a.acked = true;
        }
    }
}
