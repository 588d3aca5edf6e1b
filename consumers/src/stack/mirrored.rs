//! A mirrored device (drivers/md/raid1.c, drivers/md/dm-raid1.c): every
//! member holds the same sectors; writes go to all, reads to one.

use super::{capability, unreachable_in, Part, StackError, StackP2p};
use crate::block::{BlockQueue, BlockRequest, Op};
use dma_api::{Direction, PhysAddr};

/// A mirrored device.
#[derive(Clone, Debug)]
pub struct Mirrored {
    members: Vec<BlockQueue>,
}

impl Mirrored {
    /// Mirrors over `members` (at least two).
    pub fn new(members: Vec<BlockQueue>) -> Result<Self, StackError> {
        if members.len() < 2 {
            return Err(StackError::BadGeometry {
                why: "a mirror needs two members",
            });
        }
        Ok(Self { members })
    }

    /// The members.
    pub fn members(&self) -> &[BlockQueue] {
        &self.members
    }

    /// Which members can carry `[phys, phys + len)` in `dir`.
    pub fn p2p_capability(&self, phys: PhysAddr, len: u64, dir: Direction) -> StackP2p {
        capability(&self.members, phys, len, dir)
    }

    /// The parts of `req`: a write, one per member, each member able to
    /// carry every segment (else [`StackError::MemberCannotReach`]); a read,
    /// one part for the first member that can carry it (else
    /// [`StackError::NoMemberReaches`]).
    pub fn plan(&self, req: &BlockRequest) -> Result<Vec<Part>, StackError> {
        match req.op {
            Op::Write => {
                for (member, q) in self.members.iter().enumerate() {
                    if let Some((phys, len)) = unreachable_in(q, req) {
                        return Err(StackError::MemberCannotReach { member, phys, len });
                    }
                }
                Ok((0..self.members.len())
                    .map(|member| Part {
                        member,
                        request: req.clone(),
                    })
                    .collect())
            }
            Op::Read => {
                let member = self
                    .members
                    .iter()
                    .position(|q| unreachable_in(q, req).is_none())
                    .ok_or(StackError::NoMemberReaches {
                        phys: req.segments.first().map_or(PhysAddr::new(0), |v| v.phys),
                    })?;
                Ok(vec![Part {
                    member,
                    request: req.clone(),
                }])
            }
        }
    }
}
