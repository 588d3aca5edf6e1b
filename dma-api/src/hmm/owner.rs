//! The owner's side of a device-private range: the callbacks it registers.

use super::error::HmmError;
use crate::bdf::Bdf;
use crate::direction::Direction;
use crate::types::PhysAddr;
use alloc::string::String;

/// What a peer asks of one device-private page: the exact
/// (provider, client, access) triple, never a blanket flag.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PeerAsk {
    /// The owner of the memory (the provider).
    pub provider: Bdf,
    /// The device that wants to map it.
    pub client: Bdf,
    /// The client's access (`ToDevice`: it reads, `FromDevice`: it writes).
    pub access: Direction,
    /// The device-private page (its fake physical address).
    pub page: PhysAddr,
}

/// The owner's answer for one page and one client.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum PeerAnswer {
    /// Map this address of the owner's BAR instead: the same bytes as seen
    /// through the BAR. The mapping is then an ordinary peer mapping, which
    /// the p2pmem registry, the P2P oracle and the arch still judge.
    BarAlias(PhysAddr),
    /// Migrate the page to system RAM and map the RAM copy (Linux's only
    /// answer, mm/hmm.c).
    Migrate,
    /// Do not map; the reason ends up in the typed error.
    Refuse(String),
}

/// A driver that owns device-private memory (Linux: the `dev_pagemap_ops`
/// of a `MEMORY_DEVICE_PRIVATE` pagemap, include/linux/memremap.h).
pub trait DevicePrivateOwner: Send + Sync {
    /// The owning device.
    fn device(&self) -> Bdf;

    /// `dev_pagemap_ops::migrate_to_ram`: copy the page at `page` into the
    /// RAM page at `to` with the device's own DMA. On `Err` the registry
    /// frees `to` and the page stays where it was.
    fn migrate_to_ram(&self, page: PhysAddr, to: PhysAddr) -> Result<(), HmmError>;

    /// The per-pair decision (no Linux counterpart: Linux always migrates).
    fn peer_access(&self, ask: &PeerAsk) -> PeerAnswer;
}
