//! The simulator: a whole machine in memory, so every DMA decision is checked
//! by moving real bytes.
//!
//! * [`machine`]: machine files (TOML, docs/machine-format.md) into a
//!   validated [`machine::Machine`] (topology, memory map, p2pmem providers);
//! * [`sysfs`]: the same from a live or copied `/sys`;
//! * [`ram`]: the machine's RAM, implementing `dma-api`'s CPU-memory port
//!   over the store the IOMMU page tables live in;
//! * [`fabric`]: PCIe transactions routed through switches, ACS, the root
//!   complex's IOMMU ([`fabric::RootComplexIommu`], implemented for
//!   `dma-iommu` by [`iommu_adapter`]) and host-bridge P2P, with a fault log
//!   and per-link byte counters;
//! * [`assembly`]: a machine turned into live `DmaDevice`s, each with the
//!   backend its IOMMU mode calls for, over one fabric.
//!
//! Who depends on it: the `unidma` CLI and scenarios, the end-to-end tests,
//! and (as a dev-dependency) drivers' tests. Nothing below it does: drivers
//! depend on `dma-api` alone, and the IOMMU takes its table memory through
//! `dma-iommu`'s own ports. It needs `std` and brings serde and toml.
//!
//! # Example: assemble a machine and move bytes
//!
//! The reference server with a strict IOMMU: `nvme0` gets an IOVA for a RAM
//! buffer, writes through the fabric, and the bytes land in RAM.
//!
//! ```
//! use dma_api::{Direction, DmaAttrs, PhysAddr};
//! use dma_sim::machine::Machine;
//! use dma_sim::{Assembly, AssemblyOptions, IommuMode};
//!
//! let opts = AssemblyOptions { iommu: IommuMode::Strict, ..Default::default() };
//! let a = Assembly::build(Machine::reference()?, opts)?;
//! let nvme = a.find("nvme0").expect("the reference server has nvme0");
//! let buf = a.layout.scratch.0;
//! let dma = nvme.device.map_phys(buf, 4096, Direction::FromDevice, DmaAttrs::empty())?;
//!
//! a.fabric.dma_write(nvme.bdf, dma, b"completion")?;
//! let mut got = [0u8; 10];
//! a.fabric.cpu_read(buf, &mut got)?;
//! assert_eq!(&got, b"completion");
//!
//! nvme.device.unmap_phys(dma, 4096, Direction::FromDevice, DmaAttrs::empty())?;
//! // Strict invalidation: the device's next write faults and is logged.
//! assert!(a.fabric.dma_write(nvme.bdf, dma, b"late").is_err());
//! # let _ = PhysAddr::ZERO;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod assembly;
pub mod engine;
pub mod fabric;
pub mod iommu_adapter;
pub mod machine;
pub mod mm;
pub mod ram;
pub mod sysfs;
pub mod xen;

pub use assembly::{Assembly, AssemblyOptions, IommuMode};
pub use iommu_adapter::RcIommu;
pub use ram::{SimCpu, SimRam};
#[cfg(feature = "arbitrary")]
pub mod fuzzing;
