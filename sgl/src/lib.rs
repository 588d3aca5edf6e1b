//! Scatter-gather tables with the semantics of Linux `lib/scatterlist.c`.
//!
//! # Model
//!
//! An [`SgTable`] is a list of [`SgEntry`]s. Each entry has a **CPU side**
//! (physical address, 32-bit length), a **DMA side** (DMA address, 32-bit DMA
//! length, [`DmaFlags`]) and the [`SegKind`] of the memory it covers (RAM, a
//! peer device's BAR, stolen RAM, device-private memory, with the owning
//! provider). The kind is fixed when the entry is built, so a DMA mapper
//! decides per segment with one test instead of looking pages up.
//!
//! Counts follow Linux: `orig_nents` CPU entries (what a builder produced) and
//! `nents` DMA entries (what a mapping produced). The [`SgTable::iter`] CPU
//! view walks `orig_nents` entries, the [`SgTable::dma_iter`] DMA view walks
//! `nents`. Entries live in chunks of [`SG_MAX_SINGLE_ALLOC`] (128) slots
//! joined by chain links, laid out exactly like `__sg_alloc_table` /
//! `get_next_sg`, so allocation counts match the kernel's.
//!
//! # Building
//!
//! - [`SgTable::from_pages`] = `sg_alloc_table_from_pages_segment`;
//!   [`SgAppendTable::append_pages`] = `sg_alloc_append_table_from_pages`.
//!   Neighbouring pages merge when their frame numbers are consecutive **and**
//!   their kinds are equal (Linux's same-pgmap rule), up to `max_segment`.
//! - [`SgTable::from_ranges`] builds from physical byte ranges of one kind.
//! - [`SgTable::dma_only`] builds a dma-buf style table with only DMA fields.
//! - [`SgTable::chain`] concatenates, [`split`](SgTable::split) is `sg_split`.
//!
//! Bad input is a typed [`SgError`] naming the offending values; nothing in
//! this crate panics on caller input, and lengths are never truncated.
//!
//! # Example
//!
//! ```
//! use scatterlist::{DmaAddr, DmaFlags, Pfn, ProviderId, SegKind, SgTable, PAGE_SIZE};
//!
//! // Pages 10, 11 are RAM; 12, 13 are a peer device's BAR: two entries,
//! // because pages of different kinds never merge.
//! let bar = SegKind::PeerBar(ProviderId::new(1));
//! let pages = [
//!     (Pfn::new(10), SegKind::Ram),
//!     (Pfn::new(11), SegKind::Ram),
//!     (Pfn::new(12), bar),
//!     (Pfn::new(13), bar),
//! ];
//! let mut t = SgTable::from_pages_kinds(&pages, 0x100, 3 * PAGE_SIZE, u64::MAX)?;
//! assert_eq!(t.orig_nents(), 2);
//! let first = t.iter().next().unwrap();
//! assert_eq!((first.phys().raw(), first.len()), (10 * PAGE_SIZE + 0x100, 0x1f00));
//!
//! // A mapper fills the DMA side and records how many DMA segments it made.
//! for (i, e) in t.iter_mut().enumerate() {
//!     let flags = if e.kind().is_mmio() { DmaFlags::BUS_ADDRESS } else { DmaFlags::EMPTY };
//!     e.set_dma(DmaAddr::new(0x8000_0000 + i as u64 * 0x10_0000), u64::from(e.len()), flags)?;
//! }
//! t.set_nents(2)?;
//! assert_eq!(t.total_dma_len(), 3 * PAGE_SIZE);
//! # Ok::<(), scatterlist::SgError>(())
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod addr;
pub mod append;
pub mod entry;
pub mod error;
pub mod iter;
pub mod kind;
pub mod pages;
pub mod ranges;
mod run_breaks;
pub mod split;
pub mod table;

pub use addr::{BusAddr, DmaAddr, Iova, Pfn, PhysAddr, PAGE_SHIFT, PAGE_SIZE};
pub use append::{SgAppendTable, MAX_SEGMENT_LIMIT};
pub use entry::{DmaFlags, DmaLen, SgEntry};
pub use error::SgError;
pub use iter::{CpuIter, CpuIterMut, DmaIter, DmaIterMut};
pub use kind::{ProviderId, SegKind};
pub use pages::{PageSource, PagesWithKind};
pub use split::sg_split;
pub use table::{SgTable, SG_MAX_SINGLE_ALLOC};
