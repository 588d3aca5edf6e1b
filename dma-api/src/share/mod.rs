//! Buffer sharing: a dma-buf-like handshake between an exporting driver and
//! importing drivers, with negotiation, redirect, migration and revocation.
//!
//! An exporter publishes a [`SharedBuffer`] over ranges of its memory (RAM,
//! its registered peer memory, its stolen-RAM carve-out), each classified by
//! the memory map. An importer [`attach`](SharedBuffer::attach)es with its
//! device and [`ImporterCaps`]: the placements it accepts in preference
//! order, the access it needs, whether it handles invalidation. The
//! dispatcher judges every range for that device (oracle, arch veto,
//! policy); if the result does not suit the importer, the [`Exporter`]
//! answers with an [`Action`]: redirect to RAM ranges it names, migrate to
//! RAM, or refuse — the typed error carries the [`Reason`] chain. Maps go
//! through the importer device's normal dispatcher and return DMA-only
//! [`ShareMapping`]s whose segments keep their route and length (see
//! [`map`] for the IOVA layout of multi-range buffers).
//!
//! The buffer owns the provider policy of the peer ranges it exports, so a
//! migration (redirect to the copy) or a revocation (refuse) changes what
//! the dispatcher allows in the same step as the importers are notified.
//!
//! Linux: drivers/dma-buf/dma-buf.c (`dma_buf_export`,
//! `dma_buf_dynamic_attach`, `dma_buf_map_attachment`, `dma_buf_pin`,
//! `dma_buf_move_notify`), drivers/vfio/pci/vfio_pci_dmabuf.c (revoke);
//! RFC §5.10 says where this differs.
//!
//! # Locking and callback rules
//!
//! * Every buffer has one **reservation** (Linux `dma_resv`). `attach`,
//!   `map`, `unmap`, `pin`, `unpin`, `detach`, `add_fence`, `ack_revoke`,
//!   `migrate`, `revoke` and `restore` take it for their whole run.
//! * The exporter's [`Exporter::answer`] and [`Exporter::migrate`] and the
//!   importers' [`ImporterOps::invalidate`] and [`ImporterOps::revoke`] are
//!   called **with the reservation held**. The dispatcher's locks (topology,
//!   memory map, policies, p2pmem registry) are taken inside it and released
//!   before any callback; the buffer's provider policy has its own leaf
//!   lock. Order: reservation → context locks → policy rules.
//! * From a notification an importer may only use its [`Notice`]: unmap its
//!   own mappings ([`Notice::unmap`]) and acknowledge ([`Notice::ack`]).
//!   Anything else on the buffer — any attachment's `map`, `detach`, a new
//!   `attach`, the exporter's `revoke` — is [`ShareError::ReEntrant`]
//!   (detected by the holding thread with `std`, and by the notified
//!   attachment always), never a deadlock. The same holds for an exporter
//!   calling into the buffer from `answer` or `migrate`.
//! * **Invalidation** ([`SharedBuffer::migrate`]) first waits (bounded) for
//!   the fences of the dynamic importers; on a timeout nothing changes
//!   ([`ShareError::FenceTimeout`]). Then the data moves, the policies
//!   change and every dynamic importer is notified. Existing mappings stay
//!   valid until their importer unmaps them; new maps see the new
//!   placement. Pinned buffers do not move.
//! * **Revocation** ([`SharedBuffer::revoke`]) refuses new maps and peer
//!   mappings at once, notifies every importer, then releases the
//!   reservation between bounded waits so importers on other threads can
//!   unmap ([`Attachment::unmap`]) and acknowledge
//!   ([`Attachment::ack_revoke`]). It completes only when every importer
//!   has done both; an importer that does not within the budget is named in
//!   [`ShareError::RevokeUnacknowledged`] and its mappings are torn down.
//!   Maps fail with [`ShareError::Revoked`] until [`SharedBuffer::restore`].
//! * **Pinning** exists only where the exporter declares
//!   [`ExporterCaps::pin`]; without it `pin` is refused and a non-dynamic
//!   importer cannot attach (Linux pins implicitly instead).

mod action;
mod attach;
mod buffer;
mod caps;
mod error;
mod exporter;
mod fence;
mod ids;
mod importer;
pub mod map;
mod policy;
mod reason;
mod resv;

pub use action::{Action, AttachAsk, Negotiation, RangeVerdict};
pub use attach::Attachment;
pub use buffer::{ExportRange, Phase, SharedBuffer, WeakBuffer, SHARE_PAGE};
pub use caps::{ExporterCaps, ImporterCaps, Placement, ShareAccess};
pub use error::ShareError;
pub use exporter::Exporter;
#[cfg(feature = "std")]
pub use fence::YieldWait;
pub use fence::{Fence, SpinWait, Wait, WaitBudget};
pub use ids::{AttachId, BufferId, MapId};
pub use importer::{ImporterOps, NoOps, Notice, NoticeKind};
pub use map::{LinkOffsets, ShareMapping};
pub use reason::{Reason, ReasonSource};
