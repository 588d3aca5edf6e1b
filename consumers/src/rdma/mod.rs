//! An RDMA NIC registering memory regions over shared-buffer attachments
//! (Linux `ib_umem_dmabuf_get` / `ib_umem_dmabuf_get_pinned`,
//! drivers/infiniband/core/umem_dmabuf.c):
//!
//! * a **revocable** MR is a dynamic attachment: on invalidation the NIC
//!   drops its mapping (the ODP-style MR faults and re-maps on next use,
//!   seeing the new placement); on revocation it drops the mapping,
//!   acknowledges, and the MR stays dead until re-registered;
//! * a **pinned** MR is a non-dynamic attachment that pins the buffer and
//!   maps it once (only exporters with the pin capability accept it).
//!
//! Lock order: the buffer's reservation, then the MR's own lock (taken in
//! the notifications). The MR never holds its lock while calling into the
//! buffer.

mod mr;

pub use mr::{MemoryRegion, MrKind, MrState};

use dma_api::share::{ShareAccess, ShareError, SharedBuffer};
use dma_api::DmaDevice;
use std::sync::Arc;

/// The NIC's memory-registration side.
#[derive(Debug)]
pub struct RdmaNic {
    dev: Arc<DmaDevice>,
}

impl RdmaNic {
    /// The NIC over its device.
    pub fn new(dev: Arc<DmaDevice>) -> Self {
        Self { dev }
    }

    /// The device.
    pub fn device(&self) -> &Arc<DmaDevice> {
        &self.dev
    }

    /// Registers `buf` for `access` (`ibv_reg_dmabuf_mr`).
    pub fn register(
        &self,
        buf: &SharedBuffer,
        access: ShareAccess,
        kind: MrKind,
    ) -> Result<MemoryRegion, ShareError> {
        MemoryRegion::register(self.dev.clone(), buf, access, kind)
    }
}
