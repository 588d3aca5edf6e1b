//! The data path of one namespace behind an nvmet RDMA port
//! (drivers/nvme/target/rdma.c `nvmet_rdma_map_sgl_keyed` →
//! `rdma_rw_ctx_init`, then the block backend, io-cmd-bdev.c
//! `nvmet_bdev_execute_rw`):
//!
//! Commands go through a submission queue in coherent memory; the
//! controller fetches each entry, then its PRP list, with DMA reads.
//!
//! * host write: a buffer ([`IoBuffer`]), the NIC's RDMA READ of the host's
//!   data completes into it, then block write requests (split at the
//!   queue's limits) take it to the namespace;
//! * host read: block read requests fill a buffer, the NIC's RDMA WRITE
//!   sends it.
//!
//! The buffer is freed after each command; the report says where it was
//! and how every mapping reached it.

use super::buffer::{IoBuffer, Source};
use super::error::NvmetError;
use super::port::{NvmetPort, ProviderChoice};
use crate::block::{split, BlockQueue, BlockRequest, Op};
use crate::nvme::{Namespace, Nvme, NvmeController, SubmissionQueue};
use crate::rdma::RdmaNic;
use crate::wire::Wire;
use dma_api::{Direction, PhysAddr, Segment};

/// What one command did.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct IoReport {
    /// Where the buffer was, and why.
    pub source: Source,
    /// Its first byte.
    pub buffer: PhysAddr,
    /// The NIC's SGEs over it.
    pub nic_sges: Vec<Segment>,
    /// The controller's DMA segments over it (every block request).
    pub nvme_segments: Vec<Segment>,
}

/// One namespace served over the port.
#[derive(Debug)]
pub struct Target {
    port: NvmetPort,
    choice: ProviderChoice,
    nic: RdmaNic,
    nvme: Nvme,
    queue: BlockQueue,
    sq: SubmissionQueue,
    ctrl: NvmeController,
}

impl Target {
    /// Connects: chooses the provider for the port's clients and sets up
    /// the namespace queue (NVMe over PCI carries peer memory,
    /// `nvme_pci_supports_pci_p2pdma`).
    pub fn new(
        port: NvmetPort,
        nic: RdmaNic,
        nvme: Nvme,
        ns: Namespace,
    ) -> Result<Self, NvmetError> {
        let choice = port.choose()?;
        let queue = nvme.queue(true)?;
        let sq = nvme.create_sq(64)?;
        let ctrl = NvmeController::new(nvme.device().bdf(), ns);
        Ok(Self {
            port,
            choice,
            nic,
            nvme,
            queue,
            sq,
            ctrl,
        })
    }

    /// The provider choice made at connect.
    pub fn choice(&self) -> &ProviderChoice {
        &self.choice
    }

    /// The port.
    pub fn port(&self) -> &NvmetPort {
        &self.port
    }

    /// The namespace controller.
    pub fn controller(&self) -> &NvmeController {
        &self.ctrl
    }

    fn block_io(
        &mut self,
        wire: &dyn Wire,
        op: Op,
        sector: u64,
        buf: &IoBuffer,
    ) -> Result<Vec<Segment>, NvmetError> {
        let req = BlockRequest::new(op, sector, &[(buf.phys(), buf.len())]);
        let mut segs = Vec::new();
        for piece in split(&req, self.queue.limits())? {
            let io = self.nvme.submit_block(&self.queue, &piece)?;
            if let Some(m) = io.mapped() {
                segs.extend_from_slice(m.segments());
            }
            // The controller fetches the entry from the submission queue.
            // An error drops `io`, which unmaps and frees.
            let slot = self.sq.submit(io.command())?;
            self.ctrl.fetch_and_execute(wire, self.sq.base(), slot)?;
            io.complete()?;
        }
        Ok(segs)
    }

    /// A host write of `data` at `sector`.
    pub fn host_write(
        &mut self,
        wire: &dyn Wire,
        sector: u64,
        data: &[u8],
    ) -> Result<IoReport, NvmetError> {
        let len = data.len() as u64;
        let buf = IoBuffer::alloc(self.port.context(), &self.choice, len)?;
        let rw = self
            .nic
            .rw_ctx_init(&[(buf.phys(), len)], Direction::FromDevice)?;
        rw.complete_read(wire, data)?;
        let nic_sges = rw.sges().to_vec();
        rw.destroy()?;
        let nvme_segments = self.block_io(wire, Op::Write, sector, &buf)?;
        Ok(IoReport {
            source: buf.source().clone(),
            buffer: buf.phys(),
            nic_sges,
            nvme_segments,
        })
    }

    /// A host read of `len` bytes at `sector`: what the NIC sent.
    pub fn host_read(
        &mut self,
        wire: &dyn Wire,
        sector: u64,
        len: u64,
    ) -> Result<(Vec<u8>, IoReport), NvmetError> {
        let buf = IoBuffer::alloc(self.port.context(), &self.choice, len)?;
        let nvme_segments = self.block_io(wire, Op::Read, sector, &buf)?;
        let rw = self
            .nic
            .rw_ctx_init(&[(buf.phys(), len)], Direction::ToDevice)?;
        let sent = rw.post_write(wire)?;
        let nic_sges = rw.sges().to_vec();
        rw.destroy()?;
        Ok((
            sent,
            IoReport {
                source: buf.source().clone(),
                buffer: buf.phys(),
                nic_sges,
                nvme_segments,
            },
        ))
    }
}
