//! Drivers written against the `dma-api` traits only: block/NVMe/nvmet, RDMA,
//! dma-buf exporters and importers, HMM. They prove the API is usable by the
//! code it is meant for. Built so far: [`block`], the block layer's DMA side
//! (queue limits from constraints, splitting, per-segment P2P mapping);
//! [`nvme`], an NVMe-like driver (constraints at probe, PRP lists and SGLs
//! in coherent memory, the CMB, a model controller) that also imports
//! shared buffers; [`stack`], striped and mirrored devices with per-peer P2P
//! capability; [`nvmet`], an RDMA target with p2pmem offload; [`wire`], the
//! bus as the device models see it; the buffer-sharing exporters [`dgpu`] (BAR window smaller
//! than VRAM: migrate or refuse), [`apu`] (stolen-RAM carve-out: redirect),
//! [`vfio`] (BAR slices: no pin, revoked on reset) and [`sysram`]
//! (udmabuf-like pages); and the NIC [`rdma`] (revocable and pinned memory
//! regions over imported buffers, physical regions, rw contexts).
//!
//! Who depends on it: the CLI's scenarios and the end-to-end tests. It
//! depends on `dma-api` alone (checked in CI: no simulator, serde, toml or
//! clap reaches it); its tests take whole simulated machines from `dma-sim`,
//! a dev-dependency, so there is no cycle.
//!
//! # Example: the shape of every driver here
//!
//! A driver holds the `DmaDevice` its platform gives it and maps through it;
//! here the platform is the simulated reference server with its IOMMU on.
//!
//! ```
//! use dma_api::{Direction, DmaAttrs, DmaDevice, SegKind};
//! use scatterlist::SgTable;
//! use std::sync::Arc;
//!
//! /// Maps a request's data buffers for the device to read.
//! fn map_request(dev: &Arc<DmaDevice>, t: &mut SgTable) -> Result<usize, dma_api::DmaError> {
//!     dev.map_sgtable(t, Direction::ToDevice, DmaAttrs::empty())
//! }
//!
//! # let a = dma_sim::Assembly::build(
//! #     dma_sim::machine::Machine::reference()?,
//! #     dma_sim::AssemblyOptions::default(),
//! # )?;
//! # let dev = a.find("nvme0").unwrap().device.clone();
//! # let buf = a.layout.scratch.0;
//! let mut t = SgTable::from_ranges(&[(buf, 0x3000)], SegKind::Ram, 0x10_0000)?;
//! assert_eq!(map_request(&dev, &mut t)?, 1);
//! dev.unmap_sgtable(&mut t, Direction::ToDevice, DmaAttrs::empty())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod apu;
pub mod block;
pub mod dgpu;
pub mod hmm;
pub mod nvme;
pub mod nvmet;
pub mod rdma;
pub mod stack;
pub mod sysram;
pub mod udmabuf;
pub mod vfio;
pub mod wire;
pub mod xen_zcopy;
