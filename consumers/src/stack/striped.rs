//! A striped device (drivers/md/raid0.c, drivers/md/dm-stripe.c): chunk
//! `k` of the device is chunk `k / n` of member `k % n`.

use super::{capability, unreachable_in, Part, StackError, StackP2p};
use crate::block::{BioVec, BlockQueue, BlockRequest, MappedRequest, SECTOR_SIZE};
use dma_api::{Direction, PhysAddr};

/// A striped device.
#[derive(Clone, Debug)]
pub struct Striped {
    members: Vec<BlockQueue>,
    chunk_sectors: u64,
}

impl Striped {
    /// Stripes over `members` in chunks of `chunk_sectors`.
    pub fn new(members: Vec<BlockQueue>, chunk_sectors: u64) -> Result<Self, StackError> {
        if members.is_empty() || chunk_sectors == 0 {
            return Err(StackError::BadGeometry {
                why: "a stripe needs a member and a chunk of at least one sector",
            });
        }
        Ok(Self {
            members,
            chunk_sectors,
        })
    }

    /// The members.
    pub fn members(&self) -> &[BlockQueue] {
        &self.members
    }

    /// Which members can carry `[phys, phys + len)` in `dir`.
    pub fn p2p_capability(&self, phys: PhysAddr, len: u64, dir: Direction) -> StackP2p {
        capability(&self.members, phys, len, dir)
    }

    /// `(member, member sector)` of device sector `s`.
    fn locate(&self, s: u64) -> (usize, u64) {
        let n = self.members.len() as u64;
        let chunk = s / self.chunk_sectors;
        let within = s % self.chunk_sectors;
        (
            (chunk % n) as usize,
            (chunk / n) * self.chunk_sectors + within,
        )
    }

    /// Splits `req` at chunk boundaries into member parts, in order
    /// (`raid0_make_request` → `bio_split` at the chunk end). The data must
    /// be whole sectors.
    pub fn split(&self, req: &BlockRequest) -> Result<Vec<Part>, StackError> {
        let total = req.len().unwrap_or(u64::MAX);
        if req.is_empty() || !total.is_multiple_of(SECTOR_SIZE) {
            return Err(StackError::Block {
                member: 0,
                error: crate::block::BlockError::OverLimits {
                    index: None,
                    violation: crate::block::LimitViolation::NotSectorMultiple { len: total },
                },
            });
        }
        let mut parts = Vec::new();
        let mut sector = req.sector;
        let mut vecs = req.segments.iter().copied();
        let mut cur: Option<BioVec> = vecs.next();
        while let Some(mut v) = cur {
            let (member, msector) = self.locate(sector);
            let mut room = (self.chunk_sectors - sector % self.chunk_sectors) * SECTOR_SIZE;
            let mut segs = Vec::new();
            let mut taken = 0;
            loop {
                let take = v.len.min(room);
                segs.push(BioVec {
                    phys: v.phys,
                    len: take,
                });
                room -= take;
                taken += take;
                if take < v.len {
                    v = BioVec {
                        phys: PhysAddr::new(v.phys.raw() + take),
                        len: v.len - take,
                    };
                    cur = Some(v);
                    break;
                }
                cur = vecs.next();
                match cur {
                    Some(n) if room > 0 => v = n,
                    _ => break,
                }
            }
            parts.push(Part {
                member,
                request: BlockRequest {
                    op: req.op,
                    sector: msector,
                    segments: segs,
                },
            });
            sector += taken / SECTOR_SIZE;
        }
        Ok(parts)
    }

    /// The parts of `req`, each checked against its own member: a part with
    /// peer memory its member cannot carry refuses the request.
    pub fn plan(&self, req: &BlockRequest) -> Result<Vec<Part>, StackError> {
        let parts = self.split(req)?;
        for p in &parts {
            if let Some((phys, len)) = unreachable_in(&self.members[p.member], &p.request) {
                return Err(StackError::MemberCannotReach {
                    member: p.member,
                    phys,
                    len,
                });
            }
        }
        Ok(parts)
    }

    /// Plans and maps every part for its own member; on any error nothing
    /// stays mapped (the parts mapped so far are dropped, which unmaps).
    pub fn map(&self, req: &BlockRequest) -> Result<Vec<(Part, MappedRequest)>, StackError> {
        let mut out = Vec::new();
        for p in self.plan(req)? {
            let m = self.members[p.member]
                .map(&p.request)
                .map_err(|error| StackError::Block {
                    member: p.member,
                    error,
                })?;
            out.push((p, m));
        }
        Ok(out)
    }
}
