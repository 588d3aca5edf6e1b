//! Stacked block devices over several member queues: a striped device
//! (md raid0 / dm-stripe) and a mirrored one (md raid1 / dm-mirror), with
//! the P2P capability computed **per peer from the members**.
//!
//! Linux clears `BLK_FEAT_PCI_P2PDMA` on md, dm and multipath devices
//! (stacked limits do not carry it), so no stacked device takes peer
//! memory at all. Here the question is asked for the peer memory a request
//! carries: a member can carry a peer range if its queue has the P2P
//! feature and the dispatcher allows the route from that member's device
//! (oracle, arch, the provider's policy). The policy for a request:
//!
//! * striped: the request is split at chunk boundaries into one part per
//!   member run (`raid0_make_request`); every part is checked against its
//!   own member before anything is mapped, and a part carrying peer memory
//!   its member cannot reach refuses the whole request with
//!   [`StackError::MemberCannotReach`] — the caller re-issues it from
//!   system memory. A request touching only capable members goes P2P, each
//!   part mapped for its own member;
//! * mirrored: a write goes to every member, so every member must reach
//!   the peer; a read goes to the first member that can (read balancing by
//!   reachability, where raid1 `read_balance` looks at distance and load).

mod mirrored;
mod striped;

pub use mirrored::Mirrored;
pub use striped::Striped;

use crate::block::{BlockError, BlockQueue, BlockRequest};
use core::fmt;
use dma_api::PhysAddr;

/// One member's part of a stacked request.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Part {
    /// The member's index.
    pub member: usize,
    /// The request for that member (its own sectors).
    pub request: BlockRequest,
}

/// Why a stacked request was refused; nothing was mapped.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum StackError {
    /// A stack needs at least one member (two for a mirror), and a chunk
    /// of at least one sector.
    BadGeometry {
        /// What is wrong.
        why: &'static str,
    },
    /// The request reaches member `member` with a peer range that member
    /// cannot carry.
    MemberCannotReach {
        /// The member.
        member: usize,
        /// The peer range's start.
        phys: PhysAddr,
        /// Its length.
        len: u64,
    },
    /// No member can carry the request's peer memory (mirrored read).
    NoMemberReaches {
        /// The first peer range.
        phys: PhysAddr,
    },
    /// The block layer refused a part.
    Block {
        /// The member.
        member: usize,
        /// Its error.
        error: BlockError,
    },
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadGeometry { why } => write!(f, "bad stack geometry: {why}"),
            Self::MemberCannotReach { member, phys, len } => write!(
                f,
                "member {member} cannot carry peer memory {phys} + {len:#x}; re-issue from system memory"
            ),
            Self::NoMemberReaches { phys } => write!(f, "no member can carry peer memory at {phys}"),
            Self::Block { member, error } => write!(f, "member {member}: {error}"),
        }
    }
}

impl std::error::Error for StackError {}

/// Checks that `q` can carry every segment of `req`: the first peer range
/// it cannot, else `None`.
pub(crate) fn unreachable_in(q: &BlockQueue, req: &BlockRequest) -> Option<(PhysAddr, u64)> {
    let dir = req.op.direction();
    req.segments
        .iter()
        .find(|v| !q.can_carry(v.phys, v.len, dir))
        .map(|v| (v.phys, v.len))
}

/// The P2P capability of a stack for one peer range: per member, whether
/// it can carry it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StackP2p {
    /// One verdict per member.
    pub members: Vec<bool>,
}

impl StackP2p {
    /// True if every member can (what a request reaching all of them needs).
    pub fn all(&self) -> bool {
        self.members.iter().all(|&m| m)
    }

    /// True if some member can.
    pub fn any(&self) -> bool {
        self.members.iter().any(|&m| m)
    }
}

pub(crate) fn capability(
    members: &[BlockQueue],
    phys: PhysAddr,
    len: u64,
    dir: dma_api::Direction,
) -> StackP2p {
    StackP2p {
        members: members
            .iter()
            .map(|q| q.can_carry(phys, len, dir))
            .collect(),
    }
}
