//! Bios and requests: what to do, where on the device, and the data in
//! physical segments (Linux `struct bio` with its `bio_vec`s and `struct
//! request`, reduced to physical ranges: include/linux/blk_types.h).

use dma_api::{Direction, PhysAddr};

/// The block layer's sector: 512 bytes whatever the device's block size
/// (include/linux/blk_types.h `SECTOR_SIZE`).
pub const SECTOR_SIZE: u64 = 512;

/// The operation, decided at run time by the request.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Op {
    /// Read from the device: the device writes the buffers
    /// (`DMA_FROM_DEVICE`).
    Read,
    /// Write to the device: the device reads the buffers (`DMA_TO_DEVICE`).
    Write,
}

impl Op {
    /// The DMA direction (Linux `rq_dma_dir`).
    pub const fn direction(self) -> Direction {
        match self {
            Op::Read => Direction::FromDevice,
            Op::Write => Direction::ToDevice,
        }
    }
}

/// One data segment of a bio (`struct bio_vec`, with a physical address
/// instead of page + offset). RAM or peer memory: the memory map says which,
/// never the caller.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct BioVec {
    /// First byte.
    pub phys: PhysAddr,
    /// Length in bytes.
    pub len: u64,
}

/// A bio: an operation at a device sector over data segments.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Bio {
    /// Read or write.
    pub op: Op,
    /// First 512-byte sector on the device (`bi_iter.bi_sector`).
    pub sector: u64,
    /// The data, in transfer order.
    pub vecs: Vec<BioVec>,
}

impl Bio {
    /// A bio for `op` at `sector` over `(phys, len)` segments.
    pub fn new(op: Op, sector: u64, vecs: &[(PhysAddr, u64)]) -> Self {
        Self {
            op,
            sector,
            vecs: vecs
                .iter()
                .map(|&(phys, len)| BioVec { phys, len })
                .collect(),
        }
    }
}

/// A request as the driver receives it: one operation over a sector range,
/// its data in segments (`struct request` after the bios were merged).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BlockRequest {
    /// Read or write.
    pub op: Op,
    /// First sector (`blk_rq_pos`).
    pub sector: u64,
    /// The data segments, in transfer order.
    pub segments: Vec<BioVec>,
}

impl BlockRequest {
    /// A request for `op` at `sector` over `(phys, len)` segments.
    pub fn new(op: Op, sector: u64, segments: &[(PhysAddr, u64)]) -> Self {
        let b = Bio::new(op, sector, segments);
        Self::from_bio(b)
    }

    /// The request of one bio (`blk_mq_bio_to_request`).
    pub fn from_bio(bio: Bio) -> Self {
        Self {
            op: bio.op,
            sector: bio.sector,
            segments: bio.vecs,
        }
    }

    /// Total bytes (`blk_rq_bytes`), `None` if the sum overflows.
    pub fn len(&self) -> Option<u64> {
        self.segments
            .iter()
            .try_fold(0u64, |a, v| a.checked_add(v.len))
    }

    /// True without segments.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// The segments as `(phys, len)` pairs.
    pub fn ranges(&self) -> Vec<(PhysAddr, u64)> {
        self.segments.iter().map(|v| (v.phys, v.len)).collect()
    }
}
