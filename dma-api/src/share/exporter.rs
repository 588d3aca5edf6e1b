//! The exporting driver's side: its capabilities, its answer to an attach
//! that the buffer as it is does not suit, and the migration to RAM.
//!
//! Linux `struct dma_buf_ops` (`attach`, `pin`, `unpin`, `map_dma_buf`,
//! `move_notify` on the importer side). Every method here is called with
//! the buffer's reservation held (see the module doc of [`share`](super)):
//! an exporter must not call back into the buffer from them.

use super::action::{Action, AttachAsk};
use super::caps::ExporterCaps;
use super::error::ShareError;
use super::ExportRange;
use crate::bdf::Bdf;
use crate::types::PhysAddr;
use alloc::vec::Vec;

/// Implemented by the driver that owns the memory it shares.
pub trait Exporter: Send + Sync {
    /// The exporting device.
    fn device(&self) -> Bdf;

    /// What it can do besides sharing ranges.
    fn caps(&self) -> ExporterCaps;

    /// The answer to an importer the buffer as it is does not suit (an
    /// unreachable range, or a placement the importer does not accept).
    /// The default does nothing, which ends in
    /// [`ShareError::NoCommonPlacement`].
    fn answer(&self, ask: &AttachAsk<'_>) -> Action {
        let _ = ask;
        Action::None
    }

    /// Moves the data of `ranges` to system RAM and returns one RAM range
    /// per exported range, same lengths, in order (Linux: the TTM move an
    /// exporter does before `move_notify`). Only called when
    /// [`ExporterCaps::migrate`] is set.
    fn migrate(&self, ranges: &[ExportRange]) -> Result<Vec<(PhysAddr, u64)>, ShareError> {
        let _ = ranges;
        Err(ShareError::MigrateUnsupported {
            exporter: self.device(),
        })
    }
}
