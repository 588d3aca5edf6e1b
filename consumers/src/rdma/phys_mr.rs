//! Memory registration of physical ranges — system RAM or a peer's
//! p2pmem — through the generic map path (Linux `ib_reg_mr` over a umem
//! whose pages `ib_umem_get` pinned and `ib_dma_map_sgtable_attrs` mapped;
//! P2P pages are mapped by the same call since 6.2). The dispatcher decides
//! each range: RAM through the IOMMU or directly, peer memory by bus
//! address or through the host bridge, refused where the oracle or the
//! provider says no.

use super::access;
use super::error::RdmaError;
use super::RdmaNic;
use crate::wire::Wire;
use dma_api::{Direction, DmaAttrs, DmaDevice, PhysAddr, Segment};
use scatterlist::SgTable;
use std::sync::Arc;

/// A registered region over physical ranges.
#[derive(Debug)]
pub struct PhysMr {
    dev: Arc<DmaDevice>,
    table: SgTable,
    segs: Vec<Segment>,
    done: bool,
}

impl RdmaNic {
    /// Registers `ranges` for remote reads and writes (`Bidirectional`).
    pub fn reg_mr(&self, ranges: &[(PhysAddr, u64)]) -> Result<PhysMr, RdmaError> {
        let dev = self.device().clone();
        let mut table = dev.table_from_ranges(ranges, u64::from(dev.constraints().max_seg_size))?;
        dev.map_sgtable(&mut table, Direction::Bidirectional, DmaAttrs::empty())?;
        let segs = dma_api::segments(&table).collect();
        Ok(PhysMr {
            dev,
            table,
            segs,
            done: false,
        })
    }
}

impl PhysMr {
    /// The DMA segments the NIC uses, each with its route.
    pub fn segments(&self) -> &[Segment] {
        &self.segs
    }

    /// An incoming RDMA WRITE at `offset`: the NIC writes `data`.
    pub fn nic_write(&self, wire: &dyn Wire, offset: u64, data: &[u8]) -> Result<(), RdmaError> {
        access::write(wire, self.dev.bdf(), &self.segs, offset, data)
    }

    /// An incoming RDMA READ at `offset`: the NIC reads `len` bytes.
    pub fn nic_read(&self, wire: &dyn Wire, offset: u64, len: u64) -> Result<Vec<u8>, RdmaError> {
        access::read(wire, self.dev.bdf(), &self.segs, offset, len)
    }

    /// `ib_dereg_mr`: unmaps.
    pub fn deregister(mut self) -> Result<(), RdmaError> {
        self.done = true;
        self.dev
            .unmap_sgtable(&mut self.table, Direction::Bidirectional, DmaAttrs::empty())
            .map_err(RdmaError::from)
    }
}

impl Drop for PhysMr {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) =
                self.dev
                    .unmap_sgtable(&mut self.table, Direction::Bidirectional, DmaAttrs::empty())
            {
                self.dev.context().report_drop_error(e);
            }
        }
    }
}
