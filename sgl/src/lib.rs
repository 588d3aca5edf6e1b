//! Scatter-gather tables with the semantics of Linux `lib/scatterlist.c`.
//!
//! A segment carries its CPU side (physical address, length), its DMA side (DMA
//! address, DMA length, DMA flags) and the [`SegKind`] of the memory it covers.
//! The kind is what lets the DMA layer decide per segment instead of per page.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod addr;
pub mod error;
pub mod kind;

pub use addr::{BusAddr, DmaAddr, Iova, Pfn, PhysAddr, PAGE_SHIFT, PAGE_SIZE};
pub use error::SgError;
pub use kind::{ProviderId, SegKind};
