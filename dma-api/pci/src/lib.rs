//! The PCI model the DMA API decides with: who may reach whom, and what every
//! physical range is.
//!
//! A P2P mapping is only as right as the model of the machine behind it, so
//! the model is its own crate, below the driver API and free of the
//! simulator: a Rust OS kernel fills it from its own enumeration, the
//! simulator fills it from a machine file, and both get the same verdicts.
//!
//! * [`bdf`]: `domain:bus:dev.fn`, parsed and printed like lspci;
//! * [`config`]: PCI configuration space decoded from bytes (headers, BARs,
//!   PCIe capability, ACS);
//! * [`topology`]: host bridges, ports and functions with ACS, the `pci=`
//!   ACS parameters and IOMMU groups;
//! * [`p2p`]: the Linux-exact P2P oracle (drivers/pci/p2pdma.c) with
//!   per-access verdicts, reason chains, the host-bridge allow-list, the
//!   route cache and the p2pmem provider registry;
//! * [`memmap`]: the machine's memory map, the one place a range's kind
//!   comes from;
//! * [`window`] and [`mask`]: `dma-ranges` / host-bridge translation windows
//!   and DMA masks, which the topology records per device.
//!
//! Who depends on it: `dma-api` (which re-exports what drivers see), the
//! simulator and the CLI. It depends only on `scatterlist` (for the address
//! types) and is `no_std + alloc`; `std` adds nothing but `scatterlist/std`.
//!
//! # Example: ask the oracle about a peer route
//!
//! Two NVMe-like endpoints below one PCIe switch whose downstream ports do
//! not redirect: Linux's `calc_map_type_and_dist` says bus-address P2P, two
//! hops each way, reads and writes.
//!
//! ```
//! use dma_pci::p2p::{calc_map_type_and_dist, MapType};
//! use dma_pci::topology::{
//!     CpuInfo, CpuVendor, DeviceRecord, HostBridgeRecord, PortType, Topology,
//! };
//! use dma_pci::Bdf;
//!
//! let b = |s: &str| -> Bdf { s.parse().unwrap() };
//! let rec = |at: &str, port, parent: Option<&str>| DeviceRecord::new(b(at), port, parent.map(b));
//! let cpu = CpuInfo { vendor: CpuVendor::Intel, family: 6, x86: true };
//! let topo = Topology::build(
//!     cpu,
//!     [HostBridgeRecord::new("hb0", 0, 0)],
//!     [
//!         rec("00:01.0", PortType::RootPort, None),
//!         rec("01:00.0", PortType::SwitchUpstream, Some("00:01.0")),
//!         rec("02:00.0", PortType::SwitchDownstream, Some("01:00.0")),
//!         rec("02:01.0", PortType::SwitchDownstream, Some("01:00.0")),
//!         rec("03:00.0", PortType::Endpoint, Some("02:00.0")),
//!         rec("04:00.0", PortType::Endpoint, Some("02:01.0")),
//!     ],
//! )?;
//! let (provider, client) = (topo.require(b("03:00.0"))?, topo.require(b("04:00.0"))?);
//! let route = calc_map_type_and_dist(&topo, provider, client)?;
//! assert_eq!(route.verdict.map_type, MapType::BusAddr);
//! assert_eq!(route.verdict.distance, 4);
//! assert!(route.verdict.read && route.verdict.write);
//! # Ok::<(), dma_pci::topology::TopologyError>(())
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod access;
pub mod bdf;
pub mod config;
pub mod mask;
pub mod memmap;
pub mod p2p;
pub mod topology;
pub mod types;
pub mod window;

pub use access::Access;
pub use bdf::{Bdf, BdfParseError};
pub use mask::{DmaMask, MaskError};
pub use types::*;
pub use window::{AddrWindow, TranslateError, WindowError, WindowMap};
