//! HMM device-private memory with per-pair peer decisions.
//!
//! Linux (mm/memremap.c, include/linux/memremap.h `MEMORY_DEVICE_PRIVATE`)
//! lets a driver back a free physical range with `struct page`s whose data
//! lives in device memory the CPU cannot address. A CPU fault on such a page
//! calls the owner's `dev_pagemap_ops::migrate_to_ram`, which copies it to a
//! fresh RAM page with the device's own DMA engine (mm/migrate_device.c
//! `migrate_vma_setup` / `migrate_vma_pages` / `migrate_vma_finalize`);
//! a peer device never gets the page at all: mm/hmm.c `hmm_range_fault`
//! faults it back to RAM for everyone but its owner.
//!
//! Here the owner ([`DevicePrivateOwner`]) registers the range with
//! [`DevicePrivateMemory::register`] and keeps the two callbacks, plus one
//! Linux lacks: [`DevicePrivateOwner::peer_access`], asked for the exact
//! (provider, client, access) triple of every peer map, answering with its
//! BAR alias (then checked by the P2P oracle like any peer memory), a
//! migration to RAM, or a refusal. Every answer lands in the per-page reason
//! chain ([`PageDecision`]). RFC §5.10 says why this differs from the
//! rejected 2024–25 proposal (a flag that named no pair).
//!
//! What a device does on the wire is behind [`DeviceEngine`], so the owner's
//! copy runs on the simulated fabric in tests and on a real engine in a
//! kernel.

mod engine;
mod error;
mod owner;
mod peer;
mod region;
mod registry;
mod vma;

pub use engine::DeviceEngine;
pub use error::HmmError;
pub use owner::{DevicePrivateOwner, PeerAnswer, PeerAsk};
pub use peer::{PageDecision, PeerExplanation, PeerMapping};
pub use region::{release_region, request_free_region};
pub use registry::{DevicePrivateMemory, MigrationObserver};
pub use vma::{Backing, HmmPfn, VirtAddr};
