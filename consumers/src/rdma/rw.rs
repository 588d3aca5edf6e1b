//! The rw context: a target's local buffer mapped for the NIC, one SGE per
//! DMA segment (drivers/infiniband/core/rw.c `rdma_rw_ctx_init`, which maps
//! the scatterlist with `ib_dma_map_sgtable_attrs` — here the generic
//! `map_sgtable`, so peer memory goes through the same dispatcher as RAM
//! and each SGE keeps its route — and `rdma_rw_ctx_destroy`).
//!
//! The NIC's side is modelled too: an RDMA READ from the host completes
//! into the SGEs (the NIC writes them), an RDMA WRITE to the host reads
//! them, each a DMA access on the [`Wire`].

use super::error::RdmaError;
use super::RdmaNic;
use crate::wire::Wire;
use dma_api::{Direction, DmaAttrs, DmaDevice, PhysAddr, Segment};
use scatterlist::SgTable;
use std::sync::Arc;

/// A mapped rw context.
#[derive(Debug)]
pub struct RwCtx {
    dev: Arc<DmaDevice>,
    table: SgTable,
    dir: Direction,
    sges: Vec<Segment>,
    len: u64,
    done: bool,
}

impl RdmaNic {
    /// `rdma_rw_ctx_init` over `ranges` (RAM or peer memory; the memory
    /// map says which): `FromDevice` for an RDMA READ into them, `ToDevice`
    /// for an RDMA WRITE out of them.
    pub fn rw_ctx_init(
        &self,
        ranges: &[(PhysAddr, u64)],
        dir: Direction,
    ) -> Result<RwCtx, RdmaError> {
        let dev = self.device().clone();
        let mut table = dev.table_from_ranges(ranges, u64::from(dev.constraints().max_seg_size))?;
        dev.map_sgtable(&mut table, dir, DmaAttrs::empty())?;
        let sges: Vec<Segment> = dma_api::segments(&table).collect();
        let len = sges.iter().map(|s| s.len).sum();
        Ok(RwCtx {
            dev,
            table,
            dir,
            sges,
            len,
            done: false,
        })
    }
}

impl RwCtx {
    /// The SGEs, in order, each with its route.
    pub fn sges(&self) -> &[Segment] {
        &self.sges
    }

    /// Bytes covered.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// An RDMA READ completing: the NIC writes `data` (from the host) into
    /// the SGEs, in order.
    pub fn complete_read(&self, wire: &dyn Wire, data: &[u8]) -> Result<(), RdmaError> {
        if data.len() as u64 != self.len {
            return Err(RdmaError::Length {
                expected: self.len,
                got: data.len() as u64,
            });
        }
        let mut at = 0usize;
        for s in &self.sges {
            let n = s.len as usize;
            wire.dma_write(self.dev.bdf(), s.dma, &data[at..at + n])
                .map_err(RdmaError::Bus)?;
            at += n;
        }
        Ok(())
    }

    /// An RDMA WRITE: the NIC reads the SGEs, in order, and returns what it
    /// sends to the host.
    pub fn post_write(&self, wire: &dyn Wire) -> Result<Vec<u8>, RdmaError> {
        let mut out = Vec::with_capacity(self.len as usize);
        for s in &self.sges {
            let mut b = vec![0u8; s.len as usize];
            wire.dma_read(self.dev.bdf(), s.dma, &mut b)
                .map_err(RdmaError::Bus)?;
            out.extend_from_slice(&b);
        }
        Ok(out)
    }

    /// `rdma_rw_ctx_destroy`: unmaps.
    pub fn destroy(mut self) -> Result<(), RdmaError> {
        self.done = true;
        self.dev
            .unmap_sgtable(&mut self.table, self.dir, DmaAttrs::empty())
            .map_err(RdmaError::from)
    }
}

impl Drop for RwCtx {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) = self
                .dev
                .unmap_sgtable(&mut self.table, self.dir, DmaAttrs::empty())
            {
                self.dev.context().report_drop_error(e);
            }
        }
    }
}
