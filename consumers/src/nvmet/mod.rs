//! An NVMe-oF target over RDMA, the copy-offload case the P2P debate
//! started with: the NIC moves host data into a target buffer, the NVMe
//! controller moves it between that buffer and the namespace. With the
//! buffer in a peer's p2pmem (an NVMe CMB), no data byte passes through
//! system RAM; with system memory, every byte crosses RAM twice.
//!
//! Linux: drivers/nvme/target/configfs.c (the `p2pmem` attribute, parsed by
//! drivers/pci/p2pdma.c `pci_p2pdma_enable_store`), core.c
//! (`nvmet_p2pmem_ns_add_p2p`: an explicit device must be within reach of
//! the clients, else `pci_p2pmem_find_many` over {NIC, namespace devices};
//! `nvmet_req_alloc_sgls`: p2pmem first, system memory when that fails),
//! rdma.c (`rdma_rw_ctx_init` over the request's buffer).
//!
//! * [`P2pMemSetting`] — "0", "1" or a device name, with the kernel's rules;
//! * [`NvmetPort`] — the setting, the NIC and the namespace devices; the
//!   provider choice;
//! * [`IoBuffer`] — one command's data buffer: p2pmem, or system memory
//!   with the [`Fallback`] reason said out loud;
//! * [`Target`] — the data path of one namespace: host write and host read,
//!   moved by the NIC and the controller models over a
//!   [`Wire`](crate::wire::Wire).

mod buffer;
mod error;
mod port;
mod setting;
mod target;

pub use buffer::{Fallback, IoBuffer, Source};
pub use error::NvmetError;
pub use port::{NvmetPort, ProviderChoice};
pub use setting::P2pMemSetting;
pub use target::{IoReport, Target};
