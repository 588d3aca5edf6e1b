//! A minimal NVMe-like block driver model, written against `dma-api` only:
//! the shape of Linux drivers/nvme/host/pci.c's data path.
//!
//! * [`Nvme::probe`] sets the device's DMA constraints as
//!   `nvme_pci_alloc_dev` and the core's `nvme_set_ctrl_limits` do: 64-bit
//!   masks, min-align mask `NVME_CTRL_PAGE_SIZE - 1` (so swiotlb keeps
//!   offsets inside a controller page), max segment size `0xffffffff`, virt
//!   boundary `NVME_CTRL_PAGE_SIZE - 1` (the PRP rule, enforced on the
//!   request's buffers when it is mapped).
//! * A [`Request`] is a direction (read or write, at run time) and physical
//!   buffers: RAM or a peer's registered p2pmem, told apart by the memory
//!   map ([`DmaDevice::table_from_ranges`](dma_api::DmaDevice::table_from_ranges)).
//! * [`Nvme::submit`] maps it, builds PRP1/PRP2 or a PRP list in coherent
//!   memory from the DMA segments (`nvme_pci_setup_prps`), checks the PRP
//!   rules on the DMA side and returns the [`InFlight`] request with its
//!   [`Command`]; [`InFlight::complete`] unmaps and frees (`nvme_unmap_data`).
//!
//! * [`Nvme::import`] attaches to a shared buffer; [`NvmeImport::submit`]
//!   builds the command from the attachment's mapping (the same PRP path).
//!
//! Not modelled: completion queues and interrupts (a [`SubmissionQueue`] in
//! coherent memory carries commands the controller fetches; the status comes
//! back directly), metadata, the
//! single-segment fast paths (`nvme_setup_prp_simple`), DMA pools (each PRP
//! list is a whole coherent page).

mod block_io;
mod cmb;
mod command;
mod controller;
mod driver;
mod error;
mod import;
mod inflight;
pub mod prp;
mod queue;
mod request;
pub mod sgl;
pub mod sqe;

pub use block_io::{BlockIo, NVME_DMA_ALIGNMENT, NVME_MAX_SEGS};
pub use cmb::{Cmb, CmbError};
pub use command::{Command, Opcode, Psdt};
pub use controller::{ControllerError, Namespace, NvmeController, LBA_SIZE};
pub use driver::{Nvme, NVME_MAX_KB_SZ};
pub use error::NvmeError;
pub use import::{ImportedIo, NvmeImport};
pub use inflight::InFlight;
pub use prp::{PrpRule, NVME_CTRL_PAGE_SIZE};
pub use queue::SubmissionQueue;
pub use request::{Op, Request};
