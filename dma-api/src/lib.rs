//! The unified DMA mapping API.
//!
//! This crate holds the *ports*: the address types, the error taxonomy, the
//! machine model (memory map, PCI topology), the P2P oracle and the traits the
//! arch and IOMMU backends implement. Drivers depend on this crate only.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod arch_port;
pub mod attrs;
pub mod bdf;
#[cfg(feature = "std")]
pub mod debug;
#[cfg(feature = "std")]
pub mod device;
#[cfg(feature = "std")]
pub mod direct;
pub mod direction;
pub mod error;
#[cfg(feature = "std")]
pub mod fabric;
#[cfg(feature = "std")]
pub mod fallback;
pub mod frame_pool;
#[cfg(feature = "std")]
pub mod machine;
pub mod mask;
#[cfg(feature = "std")]
pub mod mem;
pub mod mem_error;
pub mod memmap;
#[cfg(feature = "std")]
pub mod middleware;
pub mod p2p;
pub mod pci;
pub mod port;
#[cfg(feature = "std")]
pub mod swiotlb;
#[cfg(feature = "std")]
pub mod sysfs;
pub mod topology;
pub mod types;
pub mod window;

pub use arch_port::{
    ArchDevice, ArchDma, ArchInfo, CacheEvent, CacheProgram, EdgePolicy, LineOp, P2pSupport,
    PeerRoute, SyncOp, SyncPoint, SyncRules,
};
pub use attrs::DmaAttrs;
pub use bdf::{Bdf, BdfParseError};
pub use direction::Direction;
pub use error::{DmaError, ErrorKind};
pub use mask::DmaMask;
pub use types::*;
pub use window::{AddrWindow, WindowError, WindowMap};
