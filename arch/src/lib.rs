//! Per-architecture DMA backends: CPU→bus translation, coherency, cache
//! maintenance lowered to machine code, and which P2P routes each arch
//! supports.
//!
//! Every backend implements [`dma_api::ArchDma`], the arch port of the DMA
//! API. Arch facts live in one table ([`table::ARCH_TABLE`]); the backends add
//! only machine code. [`by_name`] is the one place a backend is picked by
//! name. Who depends on it: the simulator's machine assembly and the CLI
//! (drivers never name an arch; they get it through their `DmaDevice`).
//!
//! An arch porter's entry point is the bring-up kit in [`conformance`]: add a
//! row to the table, implement `lower`, and run
//! `dma_arch::conformance_tests!(my_arch, || Box::new(MyArch::new()))` — the
//! same checks every built-in backend passes (RFC §6 walks through it).
//!
//! # Example: what arm64 does for a non-coherent device
//!
//! ```
//! use dma_api::arch_port::{ArchDevice, SyncPoint};
//! use dma_api::{Direction, DmaAttrs, DmaMask, PhysAddr, SegKind, WindowMap};
//!
//! let arm64 = dma_arch::by_name("arm64")?;
//! let dev = ArchDevice::new(WindowMap::identity_all(), false, DmaMask::BITS_64);
//! // RAM appears on the bus 1:1 through identity dma-ranges.
//! let phys = PhysAddr::new(0x8000_1010);
//! assert_eq!(arm64.ram_to_bus(&dev, phys, 0x80, DmaAttrs::empty())?.raw(), 0x8000_1010);
//! // Handing a buffer to the device for reading needs a clean to the point of
//! // coherency: the program covers the three 64-byte lines the range touches.
//! let op = arm64.sync_op(SyncPoint::ForDevice, Direction::ToDevice).expect("non-coherent");
//! let program = arm64.cache_program(phys, 0x80, SegKind::Ram, op)?;
//! let code = arm64.lower(&program)?;
//! assert!(!code.is_empty() && code.len() % 4 == 0, "A64 instructions");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod arm64;
pub mod conformance;
pub mod lowering;
pub mod powerpc64;
pub mod registry;
pub mod riscv64;
pub mod s390x;
pub mod table;
pub mod x86_64;

pub use arm64::Arm64;
pub use powerpc64::Powerpc64;
pub use registry::{all, by_name, UnknownArch, NAMES};
pub use riscv64::Riscv64;
pub use s390x::S390x;
pub use x86_64::X86_64;
