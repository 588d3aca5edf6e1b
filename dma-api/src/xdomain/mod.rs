//! Buffers that cross virtual-machine domains: what a driver in a domain
//! sees of the hypervisor's grant tables (Xen semantics,
//! drivers/xen/grant-table.c and include/xen/interface/grant_table.h), the
//! chained page directory that hands a whole buffer over with one
//! reference (drivers/xen/xen-front-pgdir-shbuf.c, the layout the
//! xen-zcopy and hyper_dmabuf designs share), a domain's DMA context (guest
//! physical → host physical before the device's own mapping, like
//! drivers/xen/swiotlb-xen.c `xen_phys_to_dma`), and the notification
//! channel that carries fences and revocations between domains.
//!
//! The hypervisor itself (second-stage tables, grant tables, domains) is
//! simulated machinery and lives in `dma-sim`; the exporting and importing
//! drivers live in `dma-consumers`.

mod channel;
mod dir;
mod dma;
mod error;
mod grant;
mod ids;

pub use channel::{Channel, Message};
pub use dir::{directory_pages, PageDirectory, REFS_PER_PAGE};
pub use dma::{DomainDma, DomainMapping};
pub use error::GrantError;
pub use grant::{GrantOps, Revoke};
pub use ids::{DomId, GrantRef, GuestAddr};
