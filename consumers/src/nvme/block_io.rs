//! The driver under the block layer: its queue limits (drivers/nvme/host/
//! core.c `nvme_set_ctrl_limits`, pci.c `NVME_MAX_SEGS`) and the submission
//! of a block request mapped by [`BlockQueue::map`] (pci.c `nvme_map_data`
//! over `blk_rq_dma_map_iter_start`): PRPs from the mapped segments.

use super::command::{Command, Psdt};
use super::driver::{Nvme, NVME_MAX_KB_SZ};
use super::error::NvmeError;
use crate::block::{BlockQueue, BlockRequest, Features, MappedRequest, QueueLimits};
use dma_api::device::CoherentAllocation;

/// The most segments one command takes (drivers/nvme/host/pci.c
/// `NVME_MAX_SEGS`).
pub const NVME_MAX_SEGS: u16 = 128;

/// The queue's DMA alignment: dword (core.c `nvme_set_ctrl_limits`,
/// `lim->dma_alignment = 3`).
pub const NVME_DMA_ALIGNMENT: u64 = 3;

impl Nvme {
    /// The namespace queue: limits from the device's constraints set at
    /// probe, `NVME_MAX_SEGS`, `NVME_MAX_KB_SZ`, dword alignment; the P2P
    /// feature when the transport supports it (`BLK_FEAT_PCI_P2PDMA` from
    /// `ctrl->ops->supports_pci_p2pdma`), which the caller decides.
    pub fn queue(&self, p2p: bool) -> Result<BlockQueue, NvmeError> {
        let limits = QueueLimits::from_device(
            self.device(),
            NVME_MAX_SEGS,
            NVME_MAX_KB_SZ * 1024,
            NVME_DMA_ALIGNMENT,
            Features { pci_p2pdma: p2p },
        )?;
        Ok(BlockQueue::new(self.device().clone(), limits))
    }

    /// Maps `req` on `q` (which must be this controller's queue) and builds
    /// its command. On any error nothing stays mapped or allocated.
    pub fn submit_block(&self, q: &BlockQueue, req: &BlockRequest) -> Result<BlockIo, NvmeError> {
        self.submit_block_as(q, req, Psdt::Prp)
    }

    /// [`Nvme::submit_block`] with the data named by an SGL: what the
    /// driver does when the controller supports SGLs and the request's
    /// average segment is at least `sgl_threshold` (pci.c
    /// `nvme_pci_use_sgls`; the choice is the caller's here).
    pub fn submit_block_sgl(
        &self,
        q: &BlockQueue,
        req: &BlockRequest,
    ) -> Result<BlockIo, NvmeError> {
        self.submit_block_as(q, req, Psdt::Sgl)
    }

    fn submit_block_as(
        &self,
        q: &BlockQueue,
        req: &BlockRequest,
        psdt: Psdt,
    ) -> Result<BlockIo, NvmeError> {
        if q.device().bdf() != self.device().bdf() {
            return Err(NvmeError::ForeignQueue {
                queue: q.device().bdf(),
            });
        }
        let mapped = q.map(req)?;
        // An error drops `mapped`, which unmaps it.
        let (mut command, lists) = match psdt {
            Psdt::Prp => self.command_for(req.op, mapped.segments())?,
            Psdt::Sgl => self.command_for_sgl(req.op, mapped.segments())?,
        };
        command.slba = req.sector;
        Ok(BlockIo {
            mapped: Some(mapped),
            lists,
            command,
        })
    }
}

/// A submitted block request until it completes.
#[derive(Debug)]
pub struct BlockIo {
    mapped: Option<MappedRequest>,
    lists: Vec<CoherentAllocation>,
    command: Command,
}

impl BlockIo {
    /// The command for the controller.
    pub fn command(&self) -> &Command {
        &self.command
    }

    /// The mapped request the command names.
    pub fn mapped(&self) -> Option<&MappedRequest> {
        self.mapped.as_ref()
    }

    /// The controller finished: unmap, then free the PRP list pages. The
    /// first error is returned; everything is attempted.
    pub fn complete(mut self) -> Result<(), NvmeError> {
        let mut first = self
            .mapped
            .take()
            .and_then(|m| m.unmap().err())
            .map(NvmeError::from);
        for l in self.lists.drain(..) {
            if let Err(e) = l.free() {
                first.get_or_insert(e.into());
            }
        }
        first.map_or(Ok(()), Err)
    }
}
