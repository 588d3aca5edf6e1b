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
pub mod split;
pub mod table;

pub use addr::{BusAddr, DmaAddr, Iova, Pfn, PhysAddr, PAGE_SHIFT, PAGE_SIZE};
pub use append::{SgAppendTable, MAX_SEGMENT_LIMIT};
pub use entry::{DmaFlags, SgEntry};
pub use error::SgError;
pub use iter::{CpuIter, CpuIterMut, DmaIter, DmaIterMut};
pub use kind::{ProviderId, SegKind};
pub use pages::{PageSource, PagesWithKind};
pub use table::{SgTable, SG_MAX_SINGLE_ALLOC};
