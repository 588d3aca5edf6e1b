//! The typed errors of buffer sharing. Each names the offending value; none
//! leaves anything half-done (an attach that fails leaves no attachment, a
//! map that fails leaves nothing mapped, an invalidation whose fence never
//! signals changes nothing).

use super::caps::Placement;
use super::ids::{AttachId, BufferId, MapId};
use super::reason::Reason;
use crate::bdf::Bdf;
use crate::direction::Direction;
use crate::error::DmaError;
use crate::mem::MemError;
use crate::types::{PhysAddr, SegKind};
use alloc::vec::Vec;
use core::fmt;

/// Every failure of the sharing protocol.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum ShareError {
    /// The DMA layer refused (the dispatcher, the backend, the memory map).
    Dma(DmaError),
    /// An export without ranges.
    EmptyExport,
    /// An exported range of zero bytes.
    ZeroLength {
        /// Its index in the export.
        index: usize,
        /// Where it starts.
        phys: PhysAddr,
    },
    /// A range of a multi-range export that is not page aligned (start and
    /// length): each range is linked at its own running IOVA offset, which
    /// only works for whole pages.
    Unaligned {
        /// Its index in the export.
        index: usize,
        /// Where it starts.
        phys: PhysAddr,
        /// Its length.
        len: u64,
    },
    /// An exported range the memory map does not describe as one range.
    UnknownMemory {
        /// Its index in the export.
        index: usize,
        /// Where it starts.
        phys: PhysAddr,
        /// Its length.
        len: u64,
    },
    /// An exported range that is not the exporter's to share: another
    /// device's memory, unregistered BAR space, or device-private memory.
    NotExportable {
        /// Its index in the export.
        index: usize,
        /// Where it starts.
        phys: PhysAddr,
        /// Its length.
        len: u64,
        /// What the memory map says it is.
        kind: SegKind,
    },
    /// The importer and the exporter found no placement both accept; the
    /// reasons say why each candidate failed, outermost first.
    NoCommonPlacement {
        /// The importing device.
        importer: Bdf,
        /// What the importer accepts, in preference order.
        accepts: Vec<Placement>,
        /// Why not.
        reasons: Vec<Reason>,
    },
    /// The exporter refused the attachment; its reason comes first, then
    /// the verdicts that led to it.
    Refused {
        /// The exporting device.
        exporter: Bdf,
        /// The importing device.
        importer: Bdf,
        /// Why, outermost first.
        reasons: Vec<Reason>,
    },
    /// A redirect to memory that is not system RAM (or the exporter's own
    /// carve-out), or that does not cover the buffer exactly.
    BadRedirect {
        /// The exporting device.
        exporter: Bdf,
        /// The offending range (or the first uncovered byte).
        phys: PhysAddr,
        /// Its length.
        len: u64,
    },
    /// A migration the exporter returned in a shape that does not match the
    /// buffer (one RAM range per exported range, same lengths).
    BadMigration {
        /// The exporting device.
        exporter: Bdf,
        /// The exported range index that has no matching RAM range.
        index: usize,
    },
    /// The CPU could not copy the buffer's bytes (a migration).
    Memory {
        /// Start of the access.
        phys: PhysAddr,
        /// Its length.
        len: u64,
        /// What the memory said.
        error: MemError,
    },
    /// The exporter cannot migrate the buffer to system RAM.
    MigrateUnsupported {
        /// The exporting device.
        exporter: Bdf,
    },
    /// A migration while an importer holds the buffer pinned.
    Pinned {
        /// The importer that pinned it.
        importer: Bdf,
    },
    /// `pin` on an exporter that does not declare the capability (Linux
    /// pins implicitly; here absence means "cannot be pinned"), or a
    /// non-dynamic importer (which needs a pin) attaching to one.
    PinUnsupported {
        /// The exporting device.
        exporter: Bdf,
    },
    /// `unpin` without `pin`, or `map` by a non-dynamic importer that has
    /// not pinned.
    NotPinned {
        /// The attachment.
        attachment: AttachId,
    },
    /// `pin` twice.
    AlreadyPinned {
        /// The attachment.
        attachment: AttachId,
    },
    /// A map in a direction the negotiated access does not cover.
    AccessDenied {
        /// The attachment.
        attachment: AttachId,
        /// The direction asked for.
        asked: Direction,
        /// The direction negotiated.
        negotiated: Direction,
    },
    /// A call on an attachment that was detached.
    Detached {
        /// The attachment.
        attachment: AttachId,
    },
    /// `detach` while mappings are live: unmap them first.
    StillMapped {
        /// The attachment.
        attachment: AttachId,
        /// Live mappings.
        live: usize,
    },
    /// An unmap of a mapping that is not live (never mapped, already
    /// unmapped, or torn down by a revocation).
    NotMapped {
        /// The mapping.
        mapping: MapId,
    },
    /// The buffer is revoked (or being revoked): no new attachment or map
    /// until the exporter restores it.
    Revoked {
        /// The buffer.
        buffer: BufferId,
    },
    /// `restore` of a buffer that is not revoked.
    NotRevoked {
        /// The buffer.
        buffer: BufferId,
    },
    /// A call made while the same thread (or the notified attachment) holds
    /// the buffer's reservation inside a callback: the rule in the module
    /// doc, enforced instead of deadlocking.
    ReEntrant {
        /// The call that was refused.
        call: &'static str,
    },
    /// A revocation the named importers did not acknowledge within the
    /// bounded wait: their mappings were torn down by force (their devices
    /// now fault), the buffer is revoked.
    RevokeUnacknowledged {
        /// The importers that did not acknowledge.
        importers: Vec<Bdf>,
    },
    /// A fence of this importer did not signal within the bounded wait;
    /// nothing was changed.
    FenceTimeout {
        /// The importer whose DMA is still in flight.
        importer: Bdf,
    },
}

impl From<DmaError> for ShareError {
    fn from(e: DmaError) -> Self {
        ShareError::Dma(e)
    }
}

fn reasons(f: &mut fmt::Formatter<'_>, r: &[Reason]) -> fmt::Result {
    for x in r {
        write!(f, "; {x}")?;
    }
    Ok(())
}

impl fmt::Display for ShareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ShareError::*;
        match self {
            Dma(e) => write!(f, "{e}"),
            EmptyExport => f.write_str("an export needs at least one range"),
            ZeroLength { index, phys } => write!(f, "exported range {index} at {phys} is empty"),
            Unaligned { index, phys, len } => write!(
                f,
                "exported range {index} ({phys}, {len:#x} bytes) is not page aligned (multi-range exports link whole pages)"
            ),
            UnknownMemory { index, phys, len } => write!(
                f,
                "exported range {index} ({phys}, {len:#x} bytes) is not one range of the memory map"
            ),
            NotExportable { index, phys, len, kind } => write!(
                f,
                "exported range {index} ({phys}, {len:#x} bytes, {kind:?}) is not the exporter's registered memory"
            ),
            NoCommonPlacement { importer, accepts, reasons: r } => {
                write!(f, "no placement for {importer} among {accepts:?}")?;
                reasons(f, r)
            }
            Refused { exporter, importer, reasons: r } => {
                write!(f, "{exporter} refuses {importer}")?;
                reasons(f, r)
            }
            BadRedirect { exporter, phys, len } => write!(
                f,
                "{exporter} redirects to {phys} ({len:#x} bytes), which is not system RAM covering the buffer"
            ),
            BadMigration { exporter, index } => write!(
                f,
                "{exporter} migrated range {index} to no RAM range of the same length"
            ),
            Memory { phys, len, error } => {
                write!(f, "copying [{phys}, +{len:#x}) failed: {error}")
            }
            MigrateUnsupported { exporter } => write!(f, "{exporter} cannot migrate to system RAM"),
            Pinned { importer } => write!(f, "the buffer is pinned by {importer}"),
            PinUnsupported { exporter } => write!(f, "{exporter} cannot pin (no pin capability)"),
            NotPinned { attachment } => write!(f, "{attachment} holds no pin"),
            AlreadyPinned { attachment } => write!(f, "{attachment} is already pinned"),
            AccessDenied { attachment, asked, negotiated } => write!(
                f,
                "{attachment} negotiated {negotiated:?}, cannot map {asked:?}"
            ),
            Detached { attachment } => write!(f, "{attachment} is detached"),
            StillMapped { attachment, live } => {
                write!(f, "{attachment} still has {live} live mapping(s)")
            }
            NotMapped { mapping } => write!(f, "{mapping} is not mapped"),
            Revoked { buffer } => write!(f, "{buffer} is revoked"),
            NotRevoked { buffer } => write!(f, "{buffer} is not revoked"),
            ReEntrant { call } => write!(
                f,
                "`{call}` called while the buffer's reservation is held by this caller (re-entrant call from a callback)"
            ),
            RevokeUnacknowledged { importers } => write!(
                f,
                "revocation not acknowledged by {importers:?} within the bounded wait; their mappings were torn down"
            ),
            FenceTimeout { importer } => write!(f, "a fence of {importer} did not signal"),
        }
    }
}

impl core::error::Error for ShareError {}
