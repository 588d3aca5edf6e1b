//! What each side brings to an attachment: the importer's accepted
//! placements (in preference order), the access it needs and whether it
//! handles invalidation; the exporter's pin and migrate capabilities.
//!
//! Linux `struct dma_buf_attach_ops` has only `allow_peer2peer` and
//! `move_notify` (dynamic), and a missing `pin` op means "pinned
//! implicitly". Here the placements are explicit and a missing pin
//! capability means the buffer cannot be pinned.

use crate::device::SegmentRoute;
use crate::direction::Direction;
use alloc::vec::Vec;
use core::fmt;

/// Where an importer's device reaches the buffer.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Placement {
    /// Peer memory by bus address (through a switch, no root complex).
    PeerBus,
    /// Peer memory through the host bridge (MMIO, root-complex bytes).
    PeerHostBridge,
    /// System RAM (the buffer's own, a migration copy, or a redirect).
    SystemRam,
}

impl Placement {
    /// The placement a mapped segment's route realises.
    pub const fn of_route(r: SegmentRoute) -> Self {
        match r {
            SegmentRoute::Ram => Placement::SystemRam,
            SegmentRoute::PeerHostBridge => Placement::PeerHostBridge,
            SegmentRoute::PeerBus => Placement::PeerBus,
        }
    }

    /// The wire name (`peer-bus`, `peer-host-bridge`, `system-ram`).
    pub const fn name(self) -> &'static str {
        match self {
            Placement::PeerBus => "peer-bus",
            Placement::PeerHostBridge => "peer-host-bridge",
            Placement::SystemRam => "system-ram",
        }
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The access the importer's device needs to the buffer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ShareAccess {
    /// The device reads the buffer (`DMA_TO_DEVICE`).
    Read,
    /// The device writes the buffer (`DMA_FROM_DEVICE`).
    Write,
    /// Both (`DMA_BIDIRECTIONAL`).
    ReadWrite,
}

impl ShareAccess {
    /// The DMA direction of this access.
    pub const fn direction(self) -> Direction {
        match self {
            ShareAccess::Read => Direction::ToDevice,
            ShareAccess::Write => Direction::FromDevice,
            ShareAccess::ReadWrite => Direction::Bidirectional,
        }
    }

    /// True if a map in `dir` stays within this access.
    pub const fn covers(self, dir: Direction) -> bool {
        matches!(
            (self, dir),
            (ShareAccess::ReadWrite, _)
                | (ShareAccess::Read, Direction::ToDevice)
                | (ShareAccess::Write, Direction::FromDevice)
        )
    }
}

/// What an importer asks for when it attaches.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ImporterCaps {
    /// Placements it can use, most preferred first (empty: none, which no
    /// negotiation can satisfy).
    pub placements: Vec<Placement>,
    /// The access its device needs.
    pub access: ShareAccess,
    /// True if it handles invalidation (a `move_notify` importer); false if
    /// it needs the buffer pinned for as long as it is mapped.
    pub dynamic: bool,
}

impl ImporterCaps {
    /// Accepts every placement, peer by bus address first.
    pub fn any(access: ShareAccess, dynamic: bool) -> Self {
        Self {
            placements: alloc::vec![
                Placement::PeerBus,
                Placement::PeerHostBridge,
                Placement::SystemRam
            ],
            access,
            dynamic,
        }
    }

    /// True if `p` is acceptable.
    pub fn accepts(&self, p: Placement) -> bool {
        self.placements.contains(&p)
    }

    /// Rank of `p` in the preference order (lower is preferred).
    pub fn rank(&self, p: Placement) -> Option<usize> {
        self.placements.iter().position(|&x| x == p)
    }
}

/// What an exporter can do beyond handing out its ranges.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct ExporterCaps {
    /// It can pin the buffer in place (Linux `dma_buf_ops.pin`). Without
    /// it, `pin` is refused and non-dynamic importers cannot attach.
    pub pin: bool,
    /// It can move the buffer to system RAM (`migrate`).
    pub migrate: bool,
}
