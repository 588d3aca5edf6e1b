//! A block request as the driver receives it: what to do and where the data
//! lives (Linux `struct request` with its bio_vecs, reduced to physical
//! ranges).

use dma_api::PhysAddr;

/// The operation: the block layer's (read or write).
pub use crate::block::Op;

/// One request: an operation and its data buffers in order, each
/// `(physical start, length)`. A buffer may be RAM or peer memory (another
/// device's registered p2pmem); the memory map says which.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Request {
    /// Read or write.
    pub op: Op,
    /// The data, in transfer order.
    pub buffers: Vec<(PhysAddr, u64)>,
}

impl Request {
    /// A request for `op` over `buffers`.
    pub fn new(op: Op, buffers: impl Into<Vec<(PhysAddr, u64)>>) -> Self {
        Self {
            op,
            buffers: buffers.into(),
        }
    }

    /// Total bytes (`blk_rq_payload_bytes`), `None` if it overflows.
    pub fn len(&self) -> Option<u64> {
        self.buffers
            .iter()
            .try_fold(0u64, |acc, &(_, l)| acc.checked_add(l))
    }

    /// True without buffers.
    pub fn is_empty(&self) -> bool {
        self.buffers.is_empty()
    }
}
