//! Per-architecture DMA backends: CPU→bus translation, coherency, cache
//! maintenance lowered to machine code, and which P2P routes each arch
//! supports. The `conformance` kit (see RFC.md) lets a new arch prove itself.
//!
//! Every backend implements [`dma_api::ArchDma`]. Arch facts live in one
//! table ([`table::ARCH_TABLE`]); the backends add only machine code.
//! [`by_name`] is the one place a backend is picked by name.
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
