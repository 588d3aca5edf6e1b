//! A submission queue in coherent memory: the driver writes entries at the
//! tail (drivers/nvme/host/pci.c `nvme_sq_copy_cmd`) and rings the
//! doorbell; the controller fetches each entry with a DMA read. Completion
//! queues are not modelled: the controller returns its status directly.

use super::command::Command;
use super::driver::Nvme;
use super::error::NvmeError;
use super::sqe::{self, SQE_SIZE};
use dma_api::device::CoherentAllocation;
use dma_api::DmaAddr;

/// One submission queue.
#[derive(Debug)]
pub struct SubmissionQueue {
    ring: CoherentAllocation,
    depth: u16,
    tail: u16,
    next_cid: u16,
}

impl Nvme {
    /// Allocates a submission queue of `depth` entries (2..=4096 here, one
    /// coherent allocation).
    pub fn create_sq(&self, depth: u16) -> Result<SubmissionQueue, NvmeError> {
        if !(2..=4096).contains(&depth) {
            return Err(NvmeError::BadQueueDepth { depth });
        }
        let ring = self
            .device()
            .alloc_coherent_buf(u64::from(depth) * SQE_SIZE)?;
        Ok(SubmissionQueue {
            ring,
            depth,
            tail: 0,
            next_cid: 0,
        })
    }
}

impl SubmissionQueue {
    /// The ring's DMA address (what `ASQ`/Create I/O SQ gives the
    /// controller).
    pub fn base(&self) -> DmaAddr {
        self.ring.dma_handle()
    }

    /// Entries.
    pub fn depth(&self) -> u16 {
        self.depth
    }

    /// Writes `cmd` for namespace 1 at the tail and advances it (the
    /// doorbell write); returns the slot the controller fetches.
    pub fn submit(&mut self, cmd: &Command) -> Result<u16, NvmeError> {
        let bytes = sqe::encode(cmd, 1, self.next_cid)
            .ok_or(NvmeError::BadCommandLength { len: cmd.len })?;
        let slot = self.tail;
        self.ring.write(u64::from(slot) * SQE_SIZE, &bytes)?;
        self.tail = (self.tail + 1) % self.depth;
        self.next_cid = self.next_cid.wrapping_add(1);
        Ok(slot)
    }

    /// Frees the ring.
    pub fn delete(self) -> Result<(), NvmeError> {
        self.ring.free().map_err(NvmeError::from)
    }
}
